// The kiosk: three equal ways to search (photo, voice, text), a language switch, larger text,
// live stock, and a return to the home screen after a period without use.
//
// The language switch is one button in the top bar, with the language now in use, that opens a
// list of every catalogue language in its own name: one button per language had wrapped the
// bar onto two or three rows with four languages, pushing the search down off a small screen.

import { api } from "./api.js";
import { watchIdle } from "./idle.js";
import { autonym, language, setLanguage, t, tn, translatePage, wordsLanguage } from "./i18n.js";
import { connectLive } from "./live.js";
import * as photo from "./photo.js";
import { answerWasSpoken, clearAnswer, refreshStock, render, updateStock } from "./results.js";
import { setOffered, speak, stopSpeaking } from "./speech.js";
import * as text from "./text.js";
import * as voice from "./voice.js";

const IDLE_MS = 90000;
const WARN_MS = 20000;
// How often a kiosk waiting for its next customer asks which searches the hub offers now.
const MODES_MS = 30000;

const root = document.documentElement;
const bar = document.querySelector(".bar");
// The bar's height, for the room kiosk.css leaves above an answer scrolled to (it changes with
// the text size and the screen).
new ResizeObserver(() => root.style.setProperty("--bar-height", `${bar.offsetHeight}px`)).observe(bar);
const main = document.getElementById("main");
// On a tall upright screen kiosk.css shows the bar at the bottom (the same media query): it is
// moved after the search in the page too, so that Tab, a switch and a screen reader meet
// everything in the order it is seen (focus had gone from the bar at the bottom to the top).
// Elsewhere it is first, at the top. A button of the bar keeps the focus when it moves.
const upright = matchMedia("(orientation: portrait) and (min-height: 1500px)");
function placeBar() {
  const focused = bar.contains(document.activeElement) ? document.activeElement : null;
  if (upright.matches) main.after(bar);
  else main.before(bar);
  focused?.focus({ preventScroll: true });
}
placeBar();
upright.addEventListener("change", placeBar);
const modeButtons = [...document.querySelectorAll(".mode")];
const languageButton = document.getElementById("language");
const languageName = document.getElementById("language-name");
const languageDialog = document.getElementById("languages");
const languageList = document.getElementById("language-list");
const voiceButton = document.getElementById("mode-voice");
const voiceHint = voiceButton.querySelector(".mode-hint");
const largeText = document.getElementById("large-text");
let defaultLanguage = "en";

function setMode(mode) {
  const previous = main.dataset.mode;
  if (previous === mode) return;
  if (previous === "photo") photo.closeCamera();
  if (previous === "voice") voice.cancel();
  text.reset();
  clearAnswer();
  main.dataset.mode = mode;
  // Once a way is chosen the question is only read out, to leave the screen to the search.
  document.getElementById("prompt").classList.toggle("visually-hidden", mode !== "");
  for (const button of modeButtons) {
    const chosen = button.dataset.mode === mode;
    button.setAttribute("aria-expanded", String(chosen));
    document.getElementById(button.getAttribute("aria-controls")).hidden = !chosen;
  }
  const from = document.activeElement;
  if (mode === "photo") photo.openCamera().then(() => focusPanel("photo", from));
  if (mode === "voice") focusPanel("voice", from);
  if (mode === "text") document.getElementById("query").focus();
}

// A way that cannot be used here (voice without a microphone) opens typing, which its hint
// offers, and says why there.
function chooseMode(button) {
  if (button.getAttribute("aria-disabled") !== "true") {
    setMode(button.dataset.mode);
    return;
  }
  setMode("text");
  document.getElementById("text-status").textContent = t("mic_off");
}

// The chosen way's first button takes the focus from the button that chose it: for a keyboard or
// a screen reader the other ways' buttons stood between them. Not when the customer has moved on
// meanwhile (the camera takes a moment).
function focusPanel(mode, from) {
  if (main.dataset.mode !== mode || document.activeElement !== from) return;
  const panel = document.getElementById(`panel-${mode}`);
  [...panel.querySelectorAll("button")].find((button) => !button.hidden)?.focus();
}

function chooseLanguage(lang) {
  stopSpeaking();
  setLanguage(lang);
  root.lang = wordsLanguage();
  document.title = t("title");
  translatePage();
  voice.translateTranscript();
  for (const button of languageList.children) {
    button.setAttribute("aria-pressed", String(button.lang === lang));
  }
  languageName.lang = lang;
  languageName.textContent = autonym(lang);
  render();
}

function setLargeText(on) {
  root.classList.toggle("large", on);
  largeText.setAttribute("aria-pressed", String(on));
}

// An open language list counts as something to clear: left open on the start screen it would
// wait there for the next customer.
function isClear() {
  return main.dataset.mode === "" && language() === defaultLanguage && !root.classList.contains("large")
    && !languageDialog.open;
}

// The search modes this hub offers now: a search whose model failed to load is not offered
// (a customer would tap it only to hear it does not work).
function showModes(config) {
  document.getElementById("mode-photo").hidden = !config.search.photo;
  document.getElementById("mode-voice").hidden = !config.search.voice_stream;
  voice.setMaxSeconds(config.voice_max_seconds);
}

// Without a microphone (none, or refused) voice search is shown as not available, with a word
// to type instead, as the photo panel offers a picture where there is no camera: a customer
// had learnt it only after pressing. aria-disabled rather than disabled: Tab skips a disabled
// button, so a keyboard or screen-reader user never heard that voice was out or what to do.
async function checkMicrophone() {
  const present = await voice.microphoneAvailable();
  voiceButton.setAttribute("aria-disabled", String(!present));
  voiceHint.dataset.i18n = present ? "mode_voice_hint" : "mic_off";
  voiceHint.textContent = t(voiceHint.dataset.i18n);
}

// Asked again for each new customer, while the kiosk waits on its start screen and when the
// hub is back after a restart; kept as they were while the hub cannot be reached.
function refreshModes() {
  api("/api/kiosk").then(showModes, () => {});
  checkMicrophone();
}

function startOver() {
  if (languageDialog.open) languageDialog.close();
  setMode("");
  refreshModes();
  voice.cancel();
  clearAnswer(); // also an answer that arrived after the last search was left
  setLargeText(false);
  chooseLanguage(defaultLanguage);
  window.scrollTo(0, 0);
  document.activeElement?.blur();
}

// The list opens on the language in use, for a keyboard as for a screen reader; choosing one
// (or the same again), "Close", Escape or a tap beside the list closes it, and the focus is back
// on the button that opened it.
function openLanguages() {
  languageDialog.showModal();
  [...languageList.children].find((button) => button.lang === language())?.focus();
}

function closeLanguages() {
  languageDialog.close();
  languageButton.focus();
}

function languageButtons(languages) {
  for (const lang of languages) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "tool";
    button.lang = lang;
    button.textContent = autonym(lang);
    button.addEventListener("click", () => {
      chooseLanguage(lang);
      closeLanguages();
    });
    languageList.append(button);
  }
  languageButton.hidden = languages.length < 2;
  languageButton.addEventListener("click", openLanguages);
  document.getElementById("languages-close").addEventListener("click", closeLanguages);
  languageDialog.addEventListener("click", (event) => {
    const box = languageDialog.getBoundingClientRect();
    const outside = event.clientX < box.left || event.clientX > box.right
      || event.clientY < box.top || event.clientY > box.bottom;
    if (event.target === languageDialog && outside) closeLanguages();
  });
}

async function init() {
  const config = await api("/api/kiosk");
  document.getElementById("store-name").textContent = config.store.name;
  showModes(config);
  await checkMicrophone();
  voice.whenMicrophoneChanges(checkMicrophone);
  setOffered(config.speech);
  defaultLanguage = config.default_language;
  languageButtons(config.languages);
  chooseLanguage(defaultLanguage);

  for (const button of modeButtons) button.addEventListener("click", () => chooseMode(button));
  largeText.addEventListener("click", () => setLargeText(!root.classList.contains("large")));
  document.getElementById("start-over").addEventListener("click", startOver);

  let connectedBefore = false;
  connectLive("/api/live/stock", {
    onOpen() {
      if (connectedBefore) {
        refreshStock().catch(() => {});
        refreshModes();
      }
      connectedBefore = true;
    },
    onMessage(message) {
      if (message.type === "stock") updateStock(message);
    },
  });
  watchIdle({
    idleMs: IDLE_MS,
    warnMs: WARN_MS,
    isBusy: () => photo.isBusy() || voice.isBusy() || text.isBusy(),
    isClear,
    onReset: startOver,
    warningText: (seconds) => tn("idle_text", seconds),
    onWarn: (warning) => {
      if (answerWasSpoken()) speak(`${t("idle_title")} ${warning}`, wordsLanguage());
    },
  });
  setInterval(() => { if (isClear()) refreshModes(); }, MODES_MS);
  root.dataset.ready = "true";
  performance.mark("kiosk-ready");
}

init().catch(() => {
  document.getElementById("prompt").textContent = t("search_down");
});
