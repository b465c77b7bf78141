// The kiosk's answer: up to five product cards with live stock, a "did you mean" row when the
// search is unsure, or a clear "not in this store". Every search mode ends here.

import { api } from "./api.js";
import { language, objectParticle, t } from "./i18n.js";
import { isOffered, speak, stopSpeaking } from "./speech.js";

const MAX_RESULTS = 5;
// Scores of the text matcher (typed text and voice transcripts): below MATCH_FLOOR a name is
// not a match at all; a best match below SURE_SCORE is offered as "did you mean".
const MATCH_FLOOR = 0.7;
const SURE_SCORE = 0.85;

const answer = document.getElementById("answer");
const title = document.getElementById("answer-title");
const text = document.getElementById("answer-text");
const choices = document.getElementById("choices");
const list = document.getElementById("results");
const announce = document.getElementById("announce");
const cardTemplate = document.getElementById("card");
const hear = document.getElementById("hear");

let state = null; // what is shown: {kind, query, products}, re-rendered on language change
// Bumped whenever the answer is cleared (start over, another search mode): a search that was
// still running then must not show its answer to the next customer.
let generation = 0;

// The current answer slot; pass it back to showOutcome/showMessage when the search ends.
export function ticket() {
  return generation;
}

// Photo and voice results carry only a few fields; fetch the rest of each product.
async function complete(items) {
  return Promise.all(items.slice(0, MAX_RESULTS).map(async (item) => {
    if (item.names && item.stock && item.elsewhere) return item;
    const product = await api(`/api/products/${encodeURIComponent(item.sku)}`);
    return { ...product, score: item.score };
  }));
}

// Text-matcher results judged by score: the real matches, and whether the best one is sure.
export function judgeMatches(results) {
  const items = results.filter((item) => item.score >= MATCH_FLOOR);
  return { items, confident: items.length > 0 && items[0].score >= SURE_SCORE };
}

// Shows a search's outcome: no items is "not in this store" ("not sure what this is" for a
// photo), with `suggestions` offered below it; unsure items are offered as "did you mean".
// `query` is what the customer asked (null for a photo).
// Returns false, showing nothing, when the answer slot has moved on since `slot` was taken.
export async function showOutcome({ query, items, confident, suggestions = [], focus = false,
  slot = generation }) {
  let next;
  if (items.length === 0) {
    next = { kind: "none", query, products: await complete(suggestions.slice(0, 3)) };
  } else {
    const products = await complete(items);
    next = { kind: confident ? "results" : "choices", query, products };
  }
  if (slot !== generation) return false;
  stopSpeaking();
  state = next;
  render();
  if (focus) title.focus({ preventScroll: true });
  reveal();
  return true;
}

export function showMessage(message, slot = generation) {
  if (slot !== generation) return false;
  stopSpeaking();
  state = { kind: "message", message, products: [] };
  render();
  reveal();
  return true;
}

// Scrolls the answer on screen as far as needed: the top result's name, shelf and stock, or the
// choices, or the message (on a 1280 x 800 screen the top result's stock was below the edge).
// Smooth, unless the customer's device asks for reduced motion.
function reveal() {
  const target = list.firstElementChild ?? (choices.hidden ? answer : choices);
  const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
  target.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
}

export function clearAnswer() {
  generation += 1;
  stopSpeaking();
  state = null;
  render();
}

// The answer in words, as it is read aloud: the product, its shelf and its stock (quotation
// marks left out: they are not said).
function spokenText() {
  return answerWords().replace(/[“”]/g, "");
}

function answerWords() {
  if (state === null) return "";
  const products = state.products;
  const names = products.slice(0, 3).map(productName).join(", ");
  if (state.kind === "message") return state.message;
  if (state.kind === "none") return `${text.textContent} ${names}`.trim();
  if (state.kind === "choices") return `${title.textContent} ${names}?`;
  const best = products[0];
  const shelf = best.shelf ? ` ${t("shelf")} ${best.shelf}.` : "";
  return `${productName(best)}.${shelf} ${stockText(best)}.`;
}

// Reads the answer shown aloud (after a spoken question, or when the customer asks to hear it);
// a product then chosen from "did you mean" is read aloud too.
export function speakAnswer() {
  if (state !== null) state.spoken = true;
  speak(spokenText());
}

// Whether the answer on screen was read aloud: its customer may be listening rather than
// reading, so the kiosk's warning before it clears is read aloud too.
export function answerWasSpoken() {
  return state?.spoken === true;
}

hear.addEventListener("click", speakAnswer);

export function render() {
  answer.hidden = state === null;
  choices.replaceChildren();
  list.replaceChildren();
  text.hidden = true;
  choices.hidden = true;
  announce.textContent = "";
  hear.hidden = state === null || !isOffered();
  if (state === null) return;
  const products = state.products;
  if (state.kind === "message") {
    title.textContent = state.message;
  } else if (state.kind === "none") {
    title.textContent = state.query === null ? t("photo_unsure") : t("not_in_store");
    text.textContent = state.query === null ? t("not_in_store_photo")
      : t("not_in_store_text", { q: state.query, q_object: objectParticle(state.query) });
    if (products.length > 0) {
      text.textContent += ` ${t("maybe")}`;
      choices.append(...products.map(choiceButton));
      choices.hidden = false;
    }
    text.hidden = false;
  } else if (state.kind === "choices") {
    title.textContent = t("did_you_mean");
    choices.append(...products.slice(0, 3).map(choiceButton));
    choices.hidden = false;
  } else {
    title.textContent = state.kind === "chosen" ? t("chosen")
      : state.query === null ? t("photo_results") : t("results_for", { q: state.query });
    list.append(...products.map(card));
  }
  announce.textContent = `${title.textContent} ${text.hidden ? "" : text.textContent}`.trim();
  if (state.kind === "results" || state.kind === "chosen") {
    // the first product in words, as it is read aloud, then how many were found
    announce.textContent = `${title.textContent} ${spokenText()} `
      + t("found", { n: products.length });
  } else if (state.kind === "choices" || (state.kind === "none" && products.length > 0)) {
    announce.textContent += ` ${products.slice(0, 3).map(productName).join(", ")}`;
  }
}

function productName(product) {
  return product.names[language()] ?? product.name;
}

// An element with the product's name, marked with the language the name is in when it has none
// in the kiosk's: a screen reader then reads "Oat Milk" with an English voice on a Korean page.
function nameElement(tag, product, className = "") {
  const element = document.createElement(tag);
  if (className) element.className = className;
  element.textContent = productName(product);
  const lang = product.names[language()] ? language()
    : Object.keys(product.names).find((code) => product.names[code] === product.name);
  if (lang) element.lang = lang;
  return element;
}

function choiceButton(product) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  if (product.image) {
    const img = document.createElement("img");
    img.src = product.image;
    img.alt = "";
    button.append(img);
  }
  button.append(nameElement("span", product));
  button.addEventListener("click", () => {
    const spoken = state.spoken;
    stopSpeaking();
    state = { kind: "chosen", query: state.query, products: [product] };
    render();
    title.focus({ preventScroll: true });
    reveal();
    if (spoken) speakAnswer();
  });
  item.append(button);
  return item;
}

function card(product) {
  const item = cardTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.sku = product.sku;
  const img = item.querySelector("img");
  if (product.image) img.src = product.image;
  else img.remove();
  item.querySelector(".name").replaceWith(nameElement("h3", product, "name"));
  item.querySelector(".price").textContent = product.price
    ? new Intl.NumberFormat(language(), { style: "currency", currency: product.price.currency })
      .format(Number(product.price.amount))
    : "";
  item.querySelector(".shelf-label").textContent = t("shelf");
  item.querySelector(".shelf-code").textContent = product.shelf;
  item.querySelector(".shelf").hidden = !product.shelf;
  setStock(item.querySelector(".stock"), product);
  return item;
}

// "3 left", or when none is left here the nearest store that has it (from the hub's sync).
function stockText(product) {
  const available = product.stock.available;
  const nearby = product.elsewhere?.[0];
  return available > 0 ? t("left", { n: available })
    : nearby ? t("out_here_elsewhere", { store: nearby.name }) : t("out_here");
}

function setStock(element, product) {
  element.textContent = stockText(product);
  element.className = `stock ${product.stock.available > 0 ? "ok" : "out"}`;
}

// A stock change pushed by the hub: update the product wherever it is shown.
export function updateStock(level) {
  const shown = (state?.products ?? []).filter((product) => product.sku === level.sku);
  for (const product of shown) product.stock = { ...product.stock, ...level };
  for (const item of list.querySelectorAll(".card")) {
    if (item.dataset.sku === level.sku && shown[0]) setStock(item.querySelector(".stock"), shown[0]);
  }
}

// After the live feed reconnects, changes may have been missed: reload what is shown.
export async function refreshStock() {
  for (const product of state?.products ?? []) {
    updateStock(await api(`/api/stock/${encodeURIComponent(product.sku)}`));
  }
}
