// The staff page: sign-in, the three sections (#orders, #stock, #health), the live feed of hub
// events over one authenticated WebSocket, and the arrival banners (from the live feed, and
// rebuilt from GET /api/arrivals when the page is opened or reloaded).

import { api } from "./api.js";
import { connectLive } from "./live.js";
import * as health from "./staff-health.js";
import * as orders from "./staff-orders.js";
import { el, signIn, signOut, staffApi, token, whenSignedOut } from "./staff-session.js";
import * as stock from "./staff-stock.js";

const SECTIONS = ["orders", "stock", "health"];
const UNAUTHORIZED = 4401;

const login = document.getElementById("login");
const loginError = document.getElementById("login-error");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
const live = document.getElementById("live");
const arrivals = document.getElementById("arrivals");
const visits = new Map(); // "member@visit time" -> {banner, name, orders} of the arrival banners
// The arrival alerts dismissed on this tablet, each as "member@visit time#order", so a dismissed
// banner stays dismissed when the page is reloaded (a later order of the same visit shows again).
const DISMISSED = "staff-dismissed-arrivals";
let feed = null;

function section() {
  const name = location.hash.slice(1);
  return SECTIONS.includes(name) ? name : "orders";
}

function showSection() {
  const name = section();
  for (const id of SECTIONS) document.getElementById(id).hidden = id !== name;
  for (const link of nav.querySelectorAll("a")) {
    if (link.hash === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name === "health") health.load();
}

function dismissed() {
  try {
    return new Set(JSON.parse(localStorage.getItem(DISMISSED)) ?? []);
  } catch {
    return new Set(); // unreadable: the banners show again, nothing worse
  }
}

function keepDismissed(keys) {
  localStorage.setItem(DISMISSED, JSON.stringify([...keys]));
}

const alertKey = (member, time, order) => `${member}@${time}#${order}`;

// After a banner goes, the focus goes to the next banner's button, or to the section shown (it
// was left on nothing, and a screen reader said nothing).
function focusAfterBanner(banner) {
  const next = banner.nextElementSibling ?? banner.previousElementSibling;
  const target = next?.querySelector(".dismiss") ?? document.getElementById(`${section()}-title`);
  target.focus();
}

function removeBanner(key) {
  const { banner } = visits.get(key);
  if (banner.contains(document.activeElement)) focusAfterBanner(banner);
  banner.remove();
  visits.delete(key);
  orders.settle(); // the queue below moved up
}

// One banner per member and visit; each ready order of theirs arrives as its own alert.
function showArrival({ member_id: member, visit_at: time, order_id: order }) {
  if (dismissed().has(alertKey(member, time, order))) return;
  const key = `${member}@${time}`;
  if (!visits.has(key)) {
    const banner = el("div", "", "arrival");
    const name = orders.memberName(member);
    // Straight to their orders in the queue: the banner had only "Dismiss", and staff went
    // looking for the order by eye.
    const show = el("button", "Show orders", "primary");
    show.type = "button";
    show.setAttribute("aria-label", `Show the orders of ${name}`);
    show.addEventListener("click", () => {
      if (section() !== "orders") {
        history.pushState(null, "", "#orders");
        showSection();
      }
      orders.findMember(member);
    });
    const dismiss = el("button", "Dismiss", "dismiss");
    dismiss.type = "button";
    dismiss.setAttribute("aria-label", `Dismiss: ${name} has arrived`);
    dismiss.addEventListener("click", () => {
      const keys = dismissed();
      for (const id of visits.get(key).orders) keys.add(alertKey(member, time, id));
      keepDismissed(keys);
      removeBanner(key);
    });
    const buttons = el("div", "", "arrival-actions");
    buttons.append(show, dismiss);
    banner.append(el("p"), buttons);
    arrivals.prepend(banner);
    visits.set(key, { banner, name, orders: [] });
    orders.settle();
  }
  const visit = visits.get(key);
  if (visit.orders.includes(order)) return; // already shown (the live feed and a reload met)
  visit.orders.push(order);
  describeVisit(visit);
}

function describeVisit(visit) {
  const ids = visit.orders.join(", ");
  visit.banner.firstChild.textContent = `${visit.name} has arrived. ` + (visit.orders.length === 1
    ? `Order ${ids} is ready for pickup.` : `Orders ${ids} are ready for pickup.`);
}

// An order no longer ready (collected, cancelled, expired) leaves its banner, and a banner with
// no order left goes: it had gone on saying "ready for pickup" after the hand-over.
function forgetOrder({ id, state }) {
  if (state === "ready") return;
  for (const [key, visit] of visits) {
    if (!visit.orders.includes(id)) continue;
    visit.orders = visit.orders.filter((other) => other !== id);
    if (visit.orders.length === 0) removeBanner(key);
    else describeVisit(visit);
  }
}

// The alerts still standing on the hub (members in the store now, orders still ready): a page
// opened or reloaded after they came shows them too. Dismissals of alerts no longer standing
// are forgotten, so the list stays as short as the banners.
async function loadArrivals() {
  const { arrivals: standing } = await staffApi("/api/arrivals");
  const keys = new Set(standing.flatMap(({ member_id: member, visit_at: time, order_ids: ids }) =>
    ids.map((id) => alertKey(member, time, id))));
  keepDismissed([...dismissed()].filter((key) => keys.has(key)));
  for (const { member_id: member, visit_at: time, order_ids: ids } of [...standing].reverse()) {
    for (const id of ids) showArrival({ member_id: member, visit_at: time, order_id: id });
  }
}

function onEvent(message) {
  const { type, data } = message;
  if (type === "order.status") {
    orders.onOrder(data);
    forgetOrder(data);
  }
  else if (type === "stock.changed") stock.onStock(data);
  else if (type === "members.changed") orders.reloadMembers().catch(() => {});
  else if (type === "arrival.alert") orders.knowMember(data.member_id).catch(() => {}).then(() => showArrival(data));
  else if (type === "presence") orders.onPresence(data);
  else if (type === "resync") reloadAll();
  if (section() === "health") health.reloadSoon();
}

function reloadAll() {
  orders.load()
    .catch((err) => { document.getElementById("orders-error").textContent = err.message; })
    .then(loadArrivals) // after the members' names are known
    .catch(() => {}); // the live feed still brings new arrivals
  stock.reload().catch(() => {});
}

function startFeed() {
  let readyBefore = false;
  feed = connectLive("/api/staff/events", {
    onOpen(socket) {
      socket.send(JSON.stringify({ token: token() }));
    },
    onMessage(message) {
      if (message.type === "ready") {
        live.textContent = "Live";
        live.classList.remove("offline");
        if (readyBefore) reloadAll(); // events may have been missed while disconnected
        readyBefore = true;
      } else if (message.type === "error" && message.error.code === "busy") {
        live.textContent = "Not live: too many pages are open on the hub; close some";
        live.classList.add("offline");
      } else if (message.type !== "error") {
        onEvent(message);
      }
    },
    onState(state) {
      if (state === "closed" && !live.textContent.startsWith("Not live")) {
        live.textContent = "Reconnecting…";
        live.classList.add("offline");
      }
    },
    onClose(event) {
      if (event.code !== UNAUTHORIZED) return true; // busy too: it retries, the message stays
      signOut("Your sign-in is no longer valid. Sign in again.");
      return false;
    },
  });
}

function showSignedIn() {
  login.hidden = true;
  nav.hidden = false;
  signOutButton.hidden = false;
  showSection();
  reloadAll();
  startFeed();
  health.watchLink();
}

whenSignedOut((message) => {
  feed?.stop();
  feed = null;
  health.stopWatchingLink();
  for (const id of SECTIONS) document.getElementById(id).hidden = true;
  nav.hidden = true;
  signOutButton.hidden = true;
  arrivals.replaceChildren();
  visits.clear();
  live.textContent = "";
  login.hidden = false;
  loginError.textContent = message;
  document.getElementById("token").focus();
});

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = document.getElementById("token");
  loginError.textContent = "";
  try {
    await signIn(field.value.trim());
    field.value = "";
    showSignedIn();
  } catch (err) {
    if (err.status === 401) loginError.textContent = "That staff token is not valid.";
    else if (err.code === "too_many_attempts") loginError.textContent = `${err.message[0].toUpperCase()}${err.message.slice(1)}.`;
    else loginError.textContent = err.message;
  }
});
signOutButton.addEventListener("click", () => signOut());
// A section chosen from the menu takes the focus to its heading: the focus stayed on the menu
// link and a screen reader said nothing of the page that had changed under it.
window.addEventListener("hashchange", () => {
  if (!token()) return;
  showSection();
  document.getElementById(`${section()}-title`).focus();
});

api("/api/kiosk").then((config) => {
  document.getElementById("store-name").textContent = config.store.name;
}, () => {});
if (token()) showSignedIn();
else document.getElementById("token").focus();
document.documentElement.dataset.ready = "true";
