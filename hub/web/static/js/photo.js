// Photo search: a live camera preview with a shutter button, or a picture from a file, sent to
// POST /api/search/photo. The camera runs only while the photo panel is open.

import { api, ApiError } from "./api.js";
import { t } from "./i18n.js";
import { showMessage, showOutcome } from "./results.js";

const LONG_SIDE = 1024;

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
}

export function closeCamera() {
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  video.srcObject = null;
}

async function search(blob) {
  busy = true;
  status.textContent = t("looking");
  try {
    const found = await api("/api/search/photo", { method: "POST", body: blob, type: blob.type });
    status.textContent = "";
    await showOutcome({ query: null, items: found.results, confident: found.confident, focus: true });
  } catch (err) {
    status.textContent = "";
    showMessage(err instanceof ApiError && err.status === 503 ? t("unavailable")
      : t("failed", { message: err.message }));
  } finally {
    busy = false;
  }
}

function capture() {
  const scale = Math.min(1, LONG_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  video.classList.remove("flash");
  void video.offsetWidth; // restart the flash animation
  video.classList.add("flash");
  canvas.toBlob((blob) => search(blob), "image/jpeg", 0.9);
}

shutter.addEventListener("click", () => {
  if (!busy && video.videoWidth > 0) capture();
});
pick.addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  fileInput.value = "";
  if (file) search(file);
});
