// Stock: find a product by name or SKU, see its levels (live), record a movement with a reason
// or a count (the hub works out the difference), see its recent movements and its photos for photo search. Each movement form carries a fresh reference, so a double submit
// is recorded once.

import { ApiError } from "./api.js";
import { el, staffApi, timeElement } from "./staff-session.js";
import * as photos from "./staff-photos.js";

const KIND_LABELS = {
  receipt: "Receipt", sale: "Sale", return: "Return", adjustment: "Adjustment",
  write_off: "Write-off", reservation: "Reserved for order", release: "Released from order",
  pickup: "Collected order",
};

const find = document.getElementById("stock-find");
const query = document.getElementById("stock-query");
const status = document.getElementById("stock-status");
const matches = document.getElementById("stock-matches");
const panel = document.getElementById("stock-product");
const form = document.getElementById("movement-form");
const reason = document.getElementById("movement-reason");
const qty = document.getElementById("movement-qty");
const note = document.getElementById("movement-note");
const result = document.getElementById("movement-result");
const qtyLabel = document.querySelector("label[for=movement-qty]");
const history = document.getElementById("movement-rows");
const negative = document.getElementById("stock-negative");
const negativeList = document.getElementById("negative-list");
const below = new Map(); // sku -> level of the products whose available stock is below zero
// sku -> seq of the newest level shown: the live feed's change may come before a reload's
// answer taken before it, which then must not undo it (a sale below zero vanished from the list)
const newest = new Map();

let current = null; // the product shown
let ref = null;

function newRef() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  ref = `staff:${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function lookUp(text) {
  status.textContent = "Searching…";
  matches.replaceChildren();
  panel.hidden = true;
  try {
    const exact = await staffApi(`/api/products/${encodeURIComponent(text)}`);
    status.textContent = "";
    return show(exact);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  const found = await staffApi(`/api/products?q=${encodeURIComponent(text)}&limit=8`);
  status.textContent = found.results.length ? `${found.results.length} matching products` : "No product matches.";
  for (const product of found.results) {
    const button = el("button", `${product.name} (${product.sku}, shelf ${product.shelf || "—"})`);
    button.type = "button";
    button.addEventListener("click", () => show(product));
    const item = el("li");
    item.append(button);
    matches.append(item);
  }
}

async function show(product) {
  current = product;
  matches.replaceChildren();
  panel.hidden = false;
  document.getElementById("stock-name").textContent = product.name;
  document.getElementById("stock-sku").textContent = product.sku;
  document.getElementById("stock-shelf").textContent = product.shelf || "—";
  result.textContent = "";
  form.reset();
  setQtyRange();
  newRef();
  onStock(await staffApi(`/api/stock/${encodeURIComponent(product.sku)}`));
  await Promise.all([loadHistory(), photos.showFor(product)]);
  document.getElementById("stock-name").focus();
}

async function loadHistory() {
  const { movements } = await staffApi(`/api/stock/movements?sku=${encodeURIComponent(current.sku)}&limit=10`);
  history.replaceChildren(...movements.map((m) => {
    const row = el("tr");
    const when = el("td");
    when.append(timeElement(m.ts));
    row.append(when, el("td", KIND_LABELS[m.reason] ?? m.reason),
      el("td", unitsMoved(m), m.flagged ? "flagged" : ""),
      el("td", m.note ?? (m.order_id ? `Order ${m.order_id}` : "")));
    return row;
  }));
}

// A reservation or its release moves no units on the shelf, only units held for an order:
// "+0" told staff nothing.
function unitsMoved(m) {
  if (m.qty === 0 && m.reserved_qty !== 0) {
    return `${Math.abs(m.reserved_qty)} ${m.reserved_qty > 0 ? "held" : "no longer held"}`;
  }
  return (m.qty > 0 ? "+" : "") + m.qty;
}

// Whether ``level`` is as new as any level of its product shown since the last reload began.
function isNewest(level) {
  if ((newest.get(level.sku) ?? -1) > level.seq) return false;
  newest.set(level.sku, level.seq);
  return true;
}

// A stock level from the live feed or a lookup: shown when it is the current product's.
export function onStock(level) {
  if (!isNewest(level)) return;
  if (setBelow(level)) showBelowZero();
  if (current === null || level.sku !== current.sku) return;
  document.getElementById("level-on-hand").textContent = level.on_hand;
  document.getElementById("level-reserved").textContent = level.reserved;
  document.getElementById("level-available").textContent = level.available;
}

// Products whose available stock went below zero (a sale recorded more than the hub had, or
// orders hold more than is there), listed to be counted: a sale was "flagged for review" with
// nowhere on the page to review it, and the online shop went on showing what was not there.
// Returns whether the list changes.
function setBelow(level) {
  if (level.available < 0) {
    below.set(level.sku, level);
    return true;
  }
  return below.delete(level.sku);
}

function showBelowZero() {
  negative.hidden = below.size === 0;
  negativeList.replaceChildren(...[...below.values()].map((level) => {
    const button = el("button", `${level.sku}: ${level.available} available`);
    button.type = "button";
    staffApi(`/api/products/${encodeURIComponent(level.sku)}`).then((product) => {
      button.textContent = `${product.name} (${product.sku}, shelf ${product.shelf || "—"}): `
        + `${level.available} available`;
      button.onclick = () => show(product).then(() => {
        reason.value = "count";
        setQtyRange();
      });
    }, () => {});
    const item = el("li");
    item.append(button);
    return item;
  }));
}

export async function reload() {
  newest.clear(); // a hub restored from a backup numbers its rows from lower seqs again
  const { stock } = await staffApi("/api/stock");
  const listed = new Set(stock.map((level) => level.sku));
  for (const sku of below.keys()) if (!listed.has(sku)) below.delete(sku);
  for (const level of stock) if (isNewest(level)) setBelow(level);
  showBelowZero();
  if (current !== null) {
    onStock(await staffApi(`/api/stock/${encodeURIComponent(current.sku)}`));
    await loadHistory();
  }
}

function setQtyRange() {
  qty.min = { adjustment: "-100000", count: "0" }[reason.value] ?? "1";
  qtyLabel.textContent = reason.value === "count" ? "Units counted" : "Units";
}

find.addEventListener("submit", (event) => {
  event.preventDefault();
  lookUp(query.value.trim()).catch((err) => { status.textContent = err.message; });
});
reason.addEventListener("change", setQtyRange);
// What is wrong with the form, or null. A number field takes "1e3" as 1000 and the browser's
// "required" takes a reason of spaces: units are digits only, and a reason has words. The
// form is checked here alone (novalidate): the browser's bubble for "-2" vanished after a few
// seconds while the last "Recorded: ..." stayed, so it looked as if it had been saved.
function formProblem(units, why) {
  if (!/^[+-]?\d+$/.test(units)) return [qty, "Enter the units as a whole number, such as 12."];
  if (reason.value === "count") {
    if (Number(units) < 0) return [qty, "Enter the units counted: 0 or more."];
  } else if (Number(units) === 0) return [qty, "Enter a number of units other than 0."];
  if (Number(units) < 0 && reason.value !== "adjustment") {
    return [qty, `Enter the units without a minus sign: "${KIND_LABELS[reason.value]}" already `
      + "says whether they come in or go out."];
  }
  if (Math.abs(Number(units)) > Number(qty.max)) return [qty, `Enter at most ${qty.max} units.`];
  if (why === "") return [note, "Enter the reason for this movement."];
  return null;
}

async function recordMovement(why) {
  const movement = await staffApi("/api/stock/movements", {
    method: "POST", json: { sku: current.sku, qty: Number(qty.value), reason: reason.value, ref, note: why },
  });
  result.textContent = `Recorded: ${KIND_LABELS[movement.reason]} ${signed(movement.qty)}. `
    + `Available now ${movement.stock.available}.` + flaggedText(movement);
  return movement.stock;
}

async function recordCount(why) {
  const count = await staffApi("/api/stock/counts", {
    method: "POST", json: { sku: current.sku, counted: Number(qty.value), ref, note: why },
  });
  result.textContent = count.movement
    ? `Counted ${count.counted}: adjusted by ${signed(count.change)}. Available now ${count.stock.available}.`
      + flaggedText(count.movement)
    : `Counted ${count.counted}: the same as the hub had; nothing recorded.`;
  return count.stock;
}

const signed = (n) => (n > 0 ? `+${n}` : String(n));
const flaggedText = (movement) => (movement.flagged ? " Flagged for review: stock went below zero." : "");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const why = note.value.trim();
  const problem = formProblem(qty.value.trim(), why);
  if (problem) {
    const [field, message] = problem;
    result.textContent = message;
    field.focus();
    return;
  }
  try {
    const level = reason.value === "count" ? await recordCount(why) : await recordMovement(why);
    onStock(level);
    form.reset();
    setQtyRange();
    newRef();
    await loadHistory();
  } catch (err) {
    result.textContent = `Not recorded: ${err.message}`;
  }
});
