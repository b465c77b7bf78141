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

export function formatTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "—";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "short" })
    .format(new Date(unixSeconds * 1000));
}

// Creates an element with text, for building rows without innerHTML.
export function el(tag, text = "", className = "") {
  const element = document.createElement(tag);
  if (text !== "") element.textContent = text;
  if (className) element.className = className;
  return element;
}
