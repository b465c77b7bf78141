// The staff sign-in: the token lives in sessionStorage (gone when the tab closes), goes out only
// in the Authorization header (and the event socket's first message), never in a URL.

import { api, ApiError } from "./api.js";

const KEY = "staff-token";
let onSignedOut = () => {};

export function token() {
  return sessionStorage.getItem(KEY);
}

export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export async function signIn(candidate) {
  await api("/api/orders?limit=1", { token: candidate });
  sessionStorage.setItem(KEY, candidate);
}

export function signOut(message = "") {
  sessionStorage.removeItem(KEY);
  onSignedOut(message);
}

// A staff API call; a refused token signs the page out.
export async function staffApi(path, options = {}) {
  try {
    return await api(path, { ...options, token: token() });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut("Your sign-in is no longer valid. Sign in again.");
    throw err;
  }
}

// A time as "2026-11-29 23:02" (the tablet's clock, 24-hour), read the same way everywhere: the
// browser's own locale had written a Stockholm store's times as "11/29/26, 11:02 PM". The page
// knows no locale of the store (store.language is the kiosk's catalogue language, and "en"
// names no country), and its own words are English.
export function formatTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "—";
  const time = new Date(unixSeconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${time.getFullYear()}-${two(time.getMonth() + 1)}-${two(time.getDate())} `
    + `${two(time.getHours())}:${two(time.getMinutes())}`;
}

// The same time as a <time> element whose date and clock time each stay whole: a narrow
// column had broken "2026-11-30" at its hyphens.
export function timeElement(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return document.createTextNode("—");
  const [day, clock] = formatTime(unixSeconds).split(" ");
  const time = el("time");
  time.dateTime = new Date(unixSeconds * 1000).toISOString();
  time.append(el("span", day, "nowrap"), " ", el("span", clock, "nowrap"));
  return time;
}

// Creates an element with text, for building rows without innerHTML.
export function el(tag, text = "", className = "") {
  const element = document.createElement(tag);
  if (text !== "") element.textContent = text;
  if (className) element.className = className;
  return element;
}
