// The pickup queue: orders newest first with their status and the next steps staff can take.
// Rows update in place from the live feed ('order.status' events). A ready order whose member is
// in the store now is marked so: the arrival alert is shown only to a page open when it came.

import { el, staffApi, timeElement } from "./staff-session.js";

const OPEN = new Set(["pending", "accepted", "ready"]);
const LABELS = {
  pending: "Waiting to be accepted", accepted: "Accepted, to pick", ready: "Ready for pickup",
  collected: "Collected", cancelled: "Cancelled", rejected: "Rejected", expired: "Expired",
};
const ACTIONS = {
  pending: [["accepted", "Accept"], ["rejected", "Reject"]],
  accepted: [["ready", "Mark ready"], ["cancelled", "Cancel"]],
  ready: [["collected", "Mark collected"], ["cancelled", "Cancel"]],
};
const NEEDS_REASON = new Set(["rejected", "cancelled"]);
// After the queue changes under the staff's finger its buttons wait this long before they act:
// "Mark ready" turns into "Mark collected" in its place, and a row that leaves lets the next
// slide up, so a double tap collected an order nobody had come for (tried as a new user would).
const SETTLE_MS = 800;

const rows = document.getElementById("order-rows");
const filter = document.getElementById("order-filter");
const empty = document.getElementById("orders-empty");
const error = document.getElementById("orders-error");
const done = document.getElementById("orders-done");
const heading = document.getElementById("orders-title");
const search = document.getElementById("order-search");
const dialog = document.getElementById("reason-dialog");
const reasonText = document.getElementById("reason-text");

const orders = new Map();
const members = new Map();
const inStore = new Set(); // ids of the members in the store now (beacons; GET /api/presence)
const products = new Map(); // sku -> Promise of how the product is named in the queue
const busy = new Set(); // ids of the orders with a step on its way to the hub
let settling = null;
let onlyMember = null; // the member chosen from an arrival banner, until the search is edited
let changes = 0; // orders changed on this page so far (live events, steps taken here)
const changedAt = new Map(); // order id -> the count when it last changed, while a load needs it
const loading = []; // the counts at which the loads on their way were asked for

export async function load() {
  error.textContent = "";
  const asked = changes;
  loading.push(asked);
  let fetched;
  try { // every open order, however many newer ones there are, and the newest of the rest
    fetched = await Promise.all([
      staffApi("/api/orders?state=pending,accepted,ready&limit=1000"),
      staffApi("/api/orders?limit=500"), staffApi("/api/members"),
      staffApi("/api/presence").catch(() => ({ present: [] }))]);
  } finally {
    loading.splice(loading.indexOf(asked), 1);
  }
  const [open, recent, known, present] = fetched;
  const list = { orders: [...recent.orders, ...open.orders] };
  // The live feed may have brought orders while the list was on its way: such a copy is kept
  // unless the list's is newer (else a new order would vanish). Every other copy gives way to
  // the list's, whatever its times say: the hub's clock may have been set back since.
  const live = new Map(orders);
  orders.clear();
  for (const order of list.orders) orders.set(order.id, order);
  for (const [id, order] of live) {
    const listed = orders.get(id);
    if ((changedAt.get(id) ?? 0) > asked && (!listed || order.updated_at >= listed.updated_at)) {
      orders.set(id, order);
    }
  }
  // Marks a load still on its way needs are kept (two loads overlap after a reconnect).
  const needed = Math.min(...loading, changes);
  for (const [id, count] of changedAt) if (count <= needed) changedAt.delete(id);
  setMembers(known.members);
  inStore.clear();
  for (const view of present.present) inStore.add(view.member); // none without beacons
  renderAll();
}

// A presence event from the live feed: the member's ready orders gain or lose their mark.
export function onPresence({ member, event }) {
  if (event === "left") inStore.delete(member);
  else inStore.add(member); // arrived, or moved to another zone
  for (const order of orders.values()) {
    if (order.member_id === member) onOrder(order);
  }
}

let membersLoading = null; // the request on its way
let membersNext = null; // one more after it, shared by the callers that came meanwhile

// Reloads the member names, one request at a time. A caller that comes while one is on its way
// waits for the next: the one on its way may have left before the member it needs was added
// (a member who joined and walked in at once was shown by id).
export function reloadMembers() {
  if (membersLoading === null) {
    membersLoading = staffApi("/api/members").then((known) => {
      setMembers(known.members);
      renderAll();
    }).finally(() => { membersLoading = null; });
    return membersLoading;
  }
  membersNext ??= membersLoading.catch(() => {}).then(() => {
    membersNext = null;
    return reloadMembers();
  });
  return membersNext;
}

// Makes sure a member's name is known (a member may arrive right after joining).
export async function knowMember(id) {
  if (!members.has(id)) await reloadMembers();
}

export function memberName(id) {
  return members.get(id) || id;
}

export function onOrder(order) {
  orders.set(order.id, order);
  changedAt.set(order.id, ++changes);
  const row = rows.querySelector(`tr[data-order="${CSS.escape(order.id)}"]`);
  const shown = isShown(order);
  if (row && shown) {
    const hadFocus = row.contains(document.activeElement);
    const fresh = orderRow(order);
    row.replaceWith(fresh);
    if (hadFocus) (fresh.querySelector("button") ?? fresh.querySelector("th")).focus();
  } else if (row) {
    // The focus goes on to the next order (or the one before, or the queue's heading): it was
    // left on nothing when a collected order's row went, and a screen reader said nothing.
    const next = row.nextElementSibling ?? row.previousElementSibling;
    const hadFocus = row.contains(document.activeElement);
    row.remove();
    if (hadFocus) (next?.querySelector("button") ?? next?.querySelector("th") ?? heading).focus();
  } else if (shown) {
    const later = [...rows.children].find((r) => orders.get(r.dataset.order).created_at < order.created_at);
    rows.insertBefore(orderRow(order), later ?? null);
  } else {
    return; // not in the queue shown: nothing on the screen moved
  }
  empty.hidden = rows.children.length > 0;
  settle();
}

// The queue's layout just changed (a row came, went or changed, a banner above it came or
// went): its buttons are held for SETTLE_MS, each read as unavailable meanwhile.
export function settle() {
  for (const button of rows.querySelectorAll("button")) button.setAttribute("aria-disabled", "true");
  clearTimeout(settling);
  settling = setTimeout(() => {
    for (const row of rows.children) {
      if (busy.has(row.dataset.order)) continue;
      for (const button of row.querySelectorAll("button")) button.removeAttribute("aria-disabled");
    }
  }, SETTLE_MS);
}

// A member's orders found in the queue (from an arrival banner), the first one focused.
export function findMember(id) {
  search.value = memberName(id);
  onlyMember = id; // their orders only, not every name the text is part of
  renderAll();
  const row = rows.firstElementChild;
  if (!row) return;
  row.scrollIntoView({ block: "center" });
  row.querySelector("th").focus();
}

function setMembers(list) {
  members.clear();
  for (const member of list) members.set(member.id, member.display_name);
}

// Staff find an order by any part of its id or of the member's name or id.
function matches(order) {
  if (onlyMember !== null) return order.member_id === onlyMember;
  const wanted = search.value.trim().toLowerCase();
  if (!wanted) return true;
  const member = order.member_id ?? "";
  return [order.id, member, memberName(member)].some((text) => text.toLowerCase().includes(wanted));
}

function isShown(order) {
  return (filter.value === "all" || OPEN.has(order.state)) && matches(order);
}

function renderAll() {
  const shown = [...orders.values()].filter(isShown).sort((a, b) => b.created_at - a.created_at);
  rows.replaceChildren(...shown.map(orderRow));
  empty.hidden = shown.length > 0;
  empty.textContent = search.value.trim() ? "No order matches that search." : "No orders to show.";
  settle();
}

// The product's name and shelf: staff pick an accepted order shelf by shelf.
function productLabel(sku) {
  if (!products.has(sku)) {
    products.set(sku, staffApi(`/api/products/${encodeURIComponent(sku)}`).then(
      (p) => (p.shelf ? `${p.name} (shelf ${p.shelf})` : p.name), () => sku));
  }
  return products.get(sku);
}

// A cell named as its column is, for the phone's layout (one card per order).
function cell(label, text = "", className = "") {
  const td = el("td", text, className);
  td.dataset.label = label;
  return td;
}

function orderRow(order) {
  const row = el("tr");
  row.dataset.order = order.id;
  const id = el("th", order.id, "order-id");
  id.scope = "row";
  id.tabIndex = -1;
  const items = cell("Items");
  for (const line of order.lines) {
    const item = el("div", `${line.qty} × ${line.sku}`);
    productLabel(line.sku).then((label) => { item.textContent = `${line.qty} × ${label}`; });
    items.append(item);
  }
  const actions = el("td", "", "actions");
  for (const [to, label] of ACTIONS[order.state] ?? []) {
    const button = el("button", label, to === "ready" || to === "collected" || to === "accepted" ? "primary" : "danger");
    button.type = "button";
    button.setAttribute("aria-label", `${label}: order ${order.id}`);
    button.addEventListener("click", () => {
      if (button.getAttribute("aria-disabled") !== "true") move(order, to, label);
    });
    actions.append(button);
  }
  const timeCell = cell("Pick up by");
  timeCell.append(timeElement(order.pickup_by));
  const member = cell("Member", order.member_id ? memberName(order.member_id) : "—");
  if (order.state === "ready" && inStore.has(order.member_id)) {
    member.append(el("strong", "In the store now", "in-store"));
  }
  row.append(id, member, items,
    cell("Status", LABELS[order.state] + (order.reason ? ` (${order.reason})` : ""), `state state-${order.state}`),
    timeCell, actions);
  return row;
}

function askReason(title) {
  document.getElementById("reason-title").textContent = title;
  reasonText.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm" ? reasonText.value.trim() : null);
    }, { once: true });
  });
}

async function move(order, to, label) {
  error.textContent = "";
  done.textContent = "";
  let reason = null;
  if (NEEDS_REASON.has(to)) {
    reason = await askReason(`${label} order ${order.id}`);
    if (reason === null) return;
  }
  busy.add(order.id);
  const row = rows.querySelector(`tr[data-order="${CSS.escape(order.id)}"]`);
  for (const button of row?.querySelectorAll("button") ?? []) button.setAttribute("aria-disabled", "true");
  try {
    const moved = await staffApi(`/api/orders/${encodeURIComponent(order.id)}/transition`,
      { method: "POST", json: { to, reason } });
    onOrder(moved);
    // Said, as well as shown: the row may have left the queue (collected, cancelled).
    done.textContent = `Order ${moved.id}: ${LABELS[moved.state]}.`;
  } catch (err) {
    error.textContent = `Order ${order.id}: ${err.message}`;
  } finally {
    busy.delete(order.id);
    settle();
  }
}

filter.addEventListener("change", renderAll);
search.addEventListener("input", () => {
  onlyMember = null;
  renderAll();
});
document.getElementById("reason-back").addEventListener("click", () => dialog.close());
