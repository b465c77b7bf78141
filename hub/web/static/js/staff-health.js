// Store health: the sync link, the search models, disk space and the beacon fleet, from
// GET /api/staff/health. Reloaded when shown, on demand, and (at most every few seconds) when
// the live feed reports something that changes it.

import { settle } from "./staff-orders.js";
import { el, formatTime, staffApi, timeElement } from "./staff-session.js";

const SOON_MS = 3000;
const STATE_WORDS = {
  online: "Online", offline: "Offline", disabled: "Turned off", ready: "Ready",
  unavailable: "Not working", absent: "Not installed", ok: "OK",
};
const GOOD = new Set(["online", "ready", "ok"]);
const BAD = new Set(["offline", "unavailable"]);

const error = document.getElementById("health-error");
const link = document.getElementById("shop-link");
const storage = document.getElementById("storage-problem");
// How often a signed-in page asks whether the link to the online shop is up.
const LINK_MS = 15000;
let timer = null;
let linkTimer = null;

// The link to the online shop, said above every section while it is down: staff had seen "Live"
// and a normal queue, and only Store health said "Offline" (tried as a new user would).
function showLink(sync) {
  const hidden = sync.state !== "offline";
  if (link.hidden !== hidden) settle(); // the queue below moves
  link.hidden = hidden;
  link.textContent = "The online shop cannot be reached. Your work here is kept and sent when "
    + "it is back; new online orders arrive then.";
}

// A disk that refuses changes (full, read-only, the database file gone), said above every
// section too: each refused change said only "Not recorded" where it was made.
function showStorage(disk) {
  const hidden = disk.problem === null;
  if (storage.hidden !== hidden) settle();
  storage.hidden = hidden;
  storage.textContent = hidden ? "" : `The hub cannot save changes: ${disk.problem}`;
}

function showNotices(health) {
  showLink(health.sync);
  showStorage(health.disk);
}

export function watchLink() {
  clearInterval(linkTimer);
  const poll = () => staffApi("/api/staff/health").then(showNotices, () => {});
  poll();
  linkTimer = setInterval(poll, LINK_MS);
}

export function stopWatchingLink() {
  clearInterval(linkTimer);
  link.hidden = true;
  storage.hidden = true;
}

function facts(id, pairs) {
  document.getElementById(id).replaceChildren(...pairs.flatMap(([term, value, tone = ""]) =>
    [el("dt", term), el("dd", String(value), tone)]));
}

function stateFact(term, state, detail) {
  const tone = GOOD.has(state) ? "good" : BAD.has(state) ? "bad" : "";
  return [term, (STATE_WORDS[state] ?? state) + (detail ? ` — ${detail}` : ""), tone];
}

function bytes(n) {
  return `${(n / 2 ** 30).toFixed(1)} GiB`;
}

function render(health) {
  const sync = health.sync;
  showNotices(health);
  facts("sync-facts", [
    stateFact("Link", sync.state),
    ["Waiting to send", `${sync.outbox_depth} changes`, sync.outbox_depth > 0 && sync.state === "offline" ? "bad" : ""],
    ["Oldest waiting", formatTime(sync.oldest_pending_ts)],
    // numbers for whoever supports the store, in words staff can read out to them
    ["For support", `change ${sync.last_seq} recorded, ${sync.last_acked_seq ?? "none"} confirmed by the shop`],
    // After a restore the shop hands back what the backup lacked; what could not be applied
    // again is for staff to put right, so it is said here and not only in the hub's log.
    ...sync.recovered.flatMap((batch) => [
      ["Recovered after a restore", `${batch.summary} (${new Date(batch.at * 1000).toLocaleString()})`,
        batch.skipped ? "bad" : "good"],
      ...(batch.skipped ? [["Put right by hand", batch.skipped, "bad"]] : []),
    ]),
  ]);
  facts("model-facts", Object.entries(health.models).map(([name, model]) =>
    stateFact(name === "vision" ? "Photo search" : name === "voice" ? "Voice search" : name, model.state, model.detail)));
  const disk = health.disk;
  facts("disk-facts", [
    ["Free", `${bytes(disk.free_bytes)} of ${bytes(disk.total_bytes)}`, disk.low ? "bad" : "good"],
    ["Database", `${(disk.database_bytes / 2 ** 20).toFixed(1)} MiB`],
    ["Saving", disk.problem ?? (disk.read_only ? "Read-only" : "OK"),
      disk.problem || disk.read_only ? "bad" : "good"],
  ]);
  const fleet = health.beacons;
  document.getElementById("beacon-summary").textContent = fleet.state === "ok"
    ? `${fleet.beacons.length} beacons, ${fleet.missing} missing, `
      + `${fleet.beacons.filter((beacon) => beacon.battery_low).length} with a low battery`
    : `${STATE_WORDS[fleet.state] ?? fleet.state}${fleet.detail ? ` — ${fleet.detail}` : ""}`;
  document.getElementById("beacon-rows").replaceChildren(...fleet.beacons.map((beacon) => {
    const row = el("tr");
    const seen = el("td");
    seen.append(timeElement(beacon.last_seen));
    row.append(el("td", beacon.zone ? `${beacon.id} (${beacon.zone})` : beacon.id), seen,
      el("td", beacon.battery_mv === null ? "—" : `${(beacon.battery_mv / 1000).toFixed(2)} V`,
        beacon.battery_low ? "bad" : ""),
      beaconState(beacon));
    return row;
  }));
}

// What staff should do about a beacon, in its row: a low battery had read "OK" beside it.
function beaconState(beacon) {
  if (beacon.missing) return el("td", "Missing: check it is in its place and has power", "bad");
  if (beacon.battery_low) return el("td", "Battery low: change it soon", "bad");
  return el("td", "OK", "good");
}

export async function load() {
  clearTimeout(timer);
  timer = null;
  try {
    render(await staffApi("/api/staff/health"));
    error.textContent = "";
  } catch (err) {
    error.textContent = `Store health could not be read: ${err.message}`;
  }
}

// Something changed that health shows: reload soon, once for a burst of events.
export function reloadSoon() {
  if (timer === null) timer = setTimeout(load, SOON_MS);
}

document.getElementById("health-refresh").addEventListener("click", load);
