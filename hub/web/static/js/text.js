// Text search: results as you type (after a short pause), the newest query always winning.
// A search that takes a moment says "Searching…" (read out politely), as photo search says
// "Looking…".

import { api } from "./api.js";
import { language, t } from "./i18n.js";
import { clearAnswer, judgeMatches, showMessage, showOutcome } from "./results.js";

const PAUSE_MS = 150;
// A quicker answer is shown without it: the word would only flicker at each pause in typing.
const SEARCHING_MS = 300;

const input = document.getElementById("query");
const status = document.getElementById("text-status");
let timer = null;
let pending = null; // AbortController of the request in flight
let slow = null; // the timer that shows "Searching…"

function searching(on) {
  clearTimeout(slow);
  if (on) slow = setTimeout(() => { status.textContent = t("searching"); }, SEARCHING_MS);
  else status.textContent = "";
}

export function isBusy() {
  return pending !== null;
}

export function reset() {
  clearTimeout(timer);
  pending?.abort();
  pending = null;
  searching(false);
  input.value = "";
}

async function search() {
  const query = input.value.trim();
  pending?.abort();
  pending = null;
  if (!query) {
    searching(false);
    clearAnswer();
    return;
  }
  const controller = new AbortController();
  pending = controller;
  searching(true);
  try {
    const found = await api(
      `/api/products?q=${encodeURIComponent(query)}&limit=5&lang=${encodeURIComponent(language())}`,
      { signal: controller.signal });
    if (!controller.signal.aborted) await showOutcome({ query, ...judgeMatches(found.results) });
  } catch (err) {
    // The hub's own words are for developers: a customer is told to ask a member of staff.
    if (err.name !== "AbortError") showMessage(t("search_down"));
  } finally {
    if (pending === controller) {
      pending = null;
      searching(false);
    }
  }
}

input.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(search, PAUSE_MS);
});
document.getElementById("clear-query").addEventListener("click", () => {
  reset();
  clearAnswer();
  input.focus();
});
input.addEventListener("keydown", (event) => {
  if (event.key !== "Enter") return;
  clearTimeout(timer);
  search();
});
