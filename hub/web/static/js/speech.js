// Spoken answers: the hub reads the answer's words aloud (GET /api/speech, espeak-ng on the hub,
// offline), for customers who cannot read the screen well. One answer plays at a time; a new
// answer or the next customer stops the last one.

import { language } from "./i18n.js";

let offered = false;
let playing = null;

export function setOffered(on) {
  offered = on;
}

export function isOffered() {
  return offered;
}

// `lang` is the language the words are in: the chosen one for an answer (it names products in
// it), the kiosk's own words' for its messages (English where it has none in the chosen one).
export function speak(text, lang = language()) {
  stopSpeaking();
  if (!offered || !text) return;
  const params = new URLSearchParams({ text: text.slice(0, 300), lang });
  playing = new Audio(`/api/speech?${params}`);
  // A browser that refuses to play without a tap (autoplay policy) leaves the "Hear" button.
  playing.play().catch(() => {});
}

export function stopSpeaking() {
  playing?.pause();
  playing = null;
}
