// Photo search: a live camera preview with a shutter button, or a picture from a file, sent to
// POST /api/search/photo. The camera runs only while the photo panel is open.

import { api, ApiError } from "./api.js";
import { t } from "./i18n.js";
import { showMessage, showOutcome, ticket } from "./results.js";

const LONG_SIDE = 1024;
// A chosen picture is shrunk like a camera frame: a phone's 40 MB photo would be refused.
const CHOSEN_LONG_SIDE = 1600;
// Photo scores are probabilities: products far below the best are not shown at all.
const SCORE_FLOOR = 0.05;
// The hub's refusals of the picture itself (not a picture, too large once decoded): the customer
// can try another. Anything else (the hub unreachable, a server error) is not their picture's
// fault, and only staff can help.
const PICTURE_REFUSED = new Set(["bad_image", "image_too_large", "too_large", "unsupported_media_type"]);

const video = document.getElementById("camera");
const status = document.getElementById("photo-status");
const shutter = document.getElementById("shutter");
const pick = document.getElementById("pick-photo");
const fileInput = document.getElementById("photo-file");

let stream = null;
let busy = false;

export function isBusy() {
  return busy;
}

export async function openCamera() {
  status.textContent = "";
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch {
    stream = null;
  }
  video.srcObject = stream;
  video.hidden = shutter.hidden = stream === null;
  status.textContent = t(stream ? "camera_ready" : "camera_off");
  // On a screen smaller than a kiosk's (1280 x 800, or 800 x 1280 upright) the buttons may be
  // below the edge: bring them up, without scrolling where they already show.
  if (!shutter.closest(".panel").hidden) shutter.parentElement.scrollIntoView({ block: "nearest" });
}

export function closeCamera() {
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  video.srcObject = null;
}

// A picture that could not be used: another photo from the camera, or another picture where
// there is no camera.
function unreadable() {
  return t(stream ? "photo_unreadable" : "photo_unreadable_pick");
}

// `slot`: the answer slot when the customer asked ("Start over" meanwhile: nothing is shown).
async function search(blob, slot = ticket()) {
  busy = true;
  status.textContent = t("looking");
  try {
    const found = await api("/api/search/photo", { method: "POST", body: blob, type: blob.type });
    status.textContent = "";
    const likely = found.results.filter((item, i) => i === 0 || item.score >= SCORE_FLOOR);
    // Not sure: say so and offer the likeliest few, rather than a page of guesses.
    await showOutcome({ query: null, items: found.confident ? likely : [],
      suggestions: found.confident ? [] : likely.filter((item) => item.score >= SCORE_FLOOR),
      confident: found.confident, focus: true, slot });
  } catch (err) {
    status.textContent = "";
    showMessage(!(err instanceof ApiError) ? t("search_down")
      : err.status === 503 ? t("unavailable") // photo search is off or still starting
      : PICTURE_REFUSED.has(err.code) ? unreadable() : t("search_down"), slot);
  } finally {
    busy = false;
  }
}

// A JPEG of the picture with its long side at most `longSide` pixels.
function shrunk(source, width, height, longSide) {
  const scale = Math.min(1, longSide / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

async function capture() {
  const blob = shrunk(video, video.videoWidth, video.videoHeight, LONG_SIDE);
  video.classList.remove("flash");
  void video.offsetWidth; // restart the flash animation
  video.classList.add("flash");
  search(await blob);
}

async function searchFile(file) {
  const slot = ticket();
  let picture;
  try {
    picture = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    showMessage(unreadable(), slot); // not a picture the browser can read
    return;
  }
  const blob = await shrunk(picture, picture.width, picture.height, CHOSEN_LONG_SIDE);
  picture.close();
  search(blob, slot);
}

shutter.addEventListener("click", () => {
  if (!busy && video.videoWidth > 0) capture();
});
pick.addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  fileInput.value = "";
  if (file && !busy) searchFile(file);
});
