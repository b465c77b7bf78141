// Voice search: press and hold the talk button (or tap to start and tap to stop, a double tap
// counting as one tap; Enter or Space toggles from the keyboard). While it records, 16 kHz PCM
// from the audio worklet streams to the voice WebSocket and the partial transcript shows live; on
// release the final answer is shown. A question as long as the hub accepts ends by itself, and
// what was heard is searched.
// The microphone is open only while recording.

import { t, tn, wordsLanguage } from "./i18n.js";
import { showMessage, showOutcome, speakAnswer, ticket } from "./results.js";
import { speak, stopSpeaking } from "./speech.js";
import { openVoiceSocket } from "./voice-socket.js";

const HOLD_MS = 400; // a shorter press is a tap: recording goes on until the next tap
// A second press this soon after the first is the same tap: a double tap (the habit from a mouse,
// often slow) had stopped the recording before a word was said, answering "did not catch that".
const DOUBLE_TAP_MS = 1000;
// The kiosk stops listening this long before the hub's limit on a question (voice.max_seconds):
// past it the hub refuses the whole question, and a customer who held on, or tapped and walked
// away, was told "Let go to search" until an error came.
const LIMIT_MARGIN_MS = 500;
let maxRecordingMs = 10000 - LIMIT_MARGIN_MS; // the hub's default, until it says
// The last seconds are counted down on the button: a customer who pauses between words was cut
// off mid-question without a warning.
const WARN_MS = 3000;

const talk = document.getElementById("talk");
const label = document.getElementById("talk-label");
const transcript = document.getElementById("transcript");
const limitText = document.getElementById("talk-limit");

let context = null;
let refused = false; // the microphone was refused or not found: not offered until a device comes
let onMicrophoneChange = () => {};
let recording = null; // {mic, node, socket, ready, pressedAt, limit}
let finishing = false;
let holding = false; // the press going on started the recording: letting go after HOLD_MS ends it
// What the line under the button says, as message keys and their values, so that choosing
// another language says it again in that one ("You said" stayed in the language it was asked in).
let said = [];

function say(...parts) {
  said = parts;
  transcript.textContent = parts.map(([key, values]) => t(key, values)).join(" ");
}

// Says the line under the button again in the language now chosen.
export function translateTranscript() {
  if (said.length) say(...said);
}

export function isBusy() {
  return recording !== null || finishing;
}

// Whether this kiosk can take a spoken question: the browser has media devices, one of them is a
// microphone, it was not refused (by the browser's setting or at a press). Before permission is
// given, devices are listed with empty labels and ids: only their kind counts.
export async function microphoneAvailable() {
  const devices = navigator.mediaDevices;
  if (refused || !devices?.getUserMedia) return false;
  try {
    if (!(await devices.enumerateDevices()).some((device) => device.kind === "audioinput")) return false;
  } catch { /* cannot tell: it is offered, and a press says so if it fails */ }
  try {
    if ((await navigator.permissions.query({ name: "microphone" })).state === "denied") return false;
  } catch { /* a browser that cannot be asked */ }
  return true;
}

// `callback` runs when the microphone may have come or gone (refused at a press, a device
// plugged in or out): ask microphoneAvailable() again.
export function whenMicrophoneChanges(callback) {
  onMicrophoneChange = callback;
}

navigator.mediaDevices?.addEventListener("devicechange", () => {
  refused = false;
  onMicrophoneChange();
});

// The hub's longest question in seconds (GET /api/kiosk voice_max_seconds).
export function setMaxSeconds(seconds) {
  if (typeof seconds === "number" && seconds > 0) {
    maxRecordingMs = Math.max(seconds * 1000 - LIMIT_MARGIN_MS, seconds * 500);
  }
  limitText.dataset.n = String(Math.floor(maxRecordingMs / 1000)); // said under the button
  limitText.textContent = tn(limitText.dataset.i18nCount, Number(limitText.dataset.n));
}

async function audioContext() {
  if (context === null) {
    const fresh = new AudioContext();
    try {
      await fresh.audioWorklet.addModule("/static/js/pcm-worklet.js");
    } catch (err) { // the hub cannot be reached: the next press loads it again
      fresh.close();
      throw err;
    }
    context = fresh;
  }
  await context.resume();
  return context;
}

async function begin(session) {
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (err) {
    if (err.name === "NotAllowedError" || err.name === "NotFoundError") { // not a passing fault
      refused = true;
      onMicrophoneChange();
    }
    throw err;
  }
  session.mic = mic;
  const ctx = await audioContext();
  session.node = new AudioWorkletNode(ctx, "pcm16k", { numberOfOutputs: 0 });
  session.socket = await openVoiceSocket({
    onPartial: (text) => {
      if (!text) return;
      said = []; // the engine's words, in no language of the page
      transcript.textContent = text;
    },
  });
  session.node.port.onmessage = (event) => {
    if (event.data === "flushed") session.flushed();
    else session.socket.send(event.data);
  };
  session.source = ctx.createMediaStreamSource(mic);
  session.source.connect(session.node);
}

// What the customer is told when recording or searching failed, in plain words: no microphone;
// voice search busy or starting (another way works); else the hub cannot be reached or failed
// (the worklet did not load, the connection closed, a server error), which staff must see to.
// The hub's own messages are for developers and never shown.
const NO_MICROPHONE = new Set(["NotAllowedError", "NotFoundError", "NotReadableError", "OverconstrainedError"]);

function failure(err) {
  return NO_MICROPHONE.has(err.name) ? t("mic_off") : err.unavailable ? t("unavailable") : t("search_down");
}

function showIdle() {
  transcript.setAttribute("aria-live", "polite"); // what was heard is read out again
  talk.classList.remove("recording");
  talk.setAttribute("aria-pressed", "false");
  label.textContent = t("talk");
}

function start(tapped = false) {
  stopSpeaking(); // the microphone must not hear the kiosk's own voice
  const session = { pressedAt: performance.now() };
  session.ready = begin(session);
  // No microphone, or it is refused: say so at once, not after the customer has spoken.
  session.ready.catch((err) => {
    if (recording !== session) return; // stop() is already reporting it
    recording = null;
    release(session);
    session.socket?.close();
    showIdle();
    say();
    showMessage(failure(err), session.slot);
  });
  session.limit = setTimeout(stop, maxRecordingMs); // then searches what it heard
  session.countdown = setInterval(() => countDown(session), 250);
  session.slot = ticket();
  recording = session;
  talk.classList.add("recording");
  talk.setAttribute("aria-pressed", "true");
  label.textContent = t(tapped ? "talk_tap_stop" : "talk_stop");
  // The partial transcripts change several times a second: read aloud, a screen reader would
  // speak every wrong guess into the open microphone.
  transcript.setAttribute("aria-live", "off");
  say(["listening"]);
}

function countDown(session) {
  const left = maxRecordingMs - (performance.now() - session.pressedAt);
  if (recording !== session || left > WARN_MS) return;
  const action = t(holding ? "talk_stop" : "talk_tap_stop");
  const text = `${tn("seconds_left", Math.max(1, Math.ceil(left / 1000)))} · ${action}`;
  if (label.textContent !== text) label.textContent = text;
}

function release(session) {
  clearTimeout(session.limit);
  clearInterval(session.countdown);
  session.source?.disconnect();
  session.mic?.getTracks().forEach((track) => track.stop());
}

async function stop() {
  const session = recording;
  if (session === null) return;
  recording = null;
  holding = false; // a recording the time limit ended: the next may be started from the keyboard
  finishing = true;
  showIdle();
  try {
    await session.ready;
    const flushed = new Promise((resolve) => { session.flushed = resolve; });
    session.node.port.postMessage("flush");
    await flushed;
    release(session);
    say(["looking"]);
    const found = await session.socket.finish();
    if (session.slot !== ticket()) return; // the kiosk was cleared meanwhile
    // Only question words heard ("where is"): no product was named, so nothing can be answered.
    const named = found.asked || found.results.length > 0;
    const heard = found.transcript ? [["heard", { text: found.transcript }]] : [];
    say(...(heard.length ? heard : [["nothing_heard"]]));
    if (named) {
      // Sure matches are the results; near misses are only offered as "did you mean", under
      // "not in this store" when the hub says the thing asked for is not sold here.
      const sure = found.results.length > 0;
      // The answer names what was asked for ("mozzarella"); "You said" above keeps the question.
      const shown = await showOutcome({ query: found.asked || found.transcript,
        items: sure ? found.results : found.in_store ? found.did_you_mean : [],
        suggestions: sure || found.in_store ? [] : found.did_you_mean,
        confident: sure, focus: true, slot: session.slot });
      if (shown) speakAnswer(); // asked out loud, answered out loud
    } else {
      if (found.transcript) say(...heard, ["nothing_heard"]);
      speak(t("nothing_heard"), wordsLanguage());
    }
  } catch (err) {
    release(session);
    session.socket?.close();
    if (session.slot !== ticket()) return;
    say();
    showMessage(failure(err), session.slot);
  } finally {
    finishing = false;
  }
}

// Stops without searching (the kiosk is being cleared for the next customer).
// The last question is cleared too, so the next customer does not see it.
export function cancel() {
  say();
  const session = recording;
  if (session === null) return;
  recording = null;
  holding = false;
  release(session);
  session.ready.then(() => session.socket.close(), () => {});
  showIdle();
}

// Whether a press now stops the recording (not when it is the second half of a double tap).
function stopsNow() {
  return performance.now() - recording.pressedAt >= DOUBLE_TAP_MS;
}

talk.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 || finishing) return;
  talk.setPointerCapture(event.pointerId);
  holding = !recording;
  if (!recording) start();
  else if (stopsNow()) stop();
});
talk.addEventListener("pointerup", () => {
  if (!recording || !holding) return;
  holding = false;
  if (performance.now() - recording.pressedAt >= HOLD_MS) stop();
  else label.textContent = t("talk_tap_stop"); // a tap: it goes on until the next tap
});
talk.addEventListener("pointercancel", () => {
  if (recording) stop();
});
talk.addEventListener("contextmenu", (event) => event.preventDefault());
// A held Enter repeats its keydown, and each one is a click: the recording went on and off about
// once a second. Only the first press of a key counts.
talk.addEventListener("keydown", (event) => {
  if (event.repeat && (event.key === "Enter" || event.key === " ")) event.preventDefault();
});
// Keyboard activation (a click with no pointer) toggles.
talk.addEventListener("click", (event) => {
  if (event.detail !== 0 || finishing) return;
  if (!recording) start(true);
  else if (stopsNow()) stop();
});
