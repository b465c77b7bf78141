// Photos for photo search, on the Stock section's product: the catalogue image and the photos
// staff enrolled, each removable when it shows the wrong product; "Add a photo" opens the
// tablet's camera or a file. Shown only when the hub runs photo search.

import { ApiError } from "./api.js";
import { el, staffApi } from "./staff-session.js";

const panel = document.getElementById("photos");
const list = document.getElementById("photo-list");
const add = document.getElementById("photo-add");
const input = document.getElementById("photo-input");
const result = document.getElementById("photo-result");

let sku = null;

// What staff read when the hub refuses a photo (its own messages are written for developers).
const REFUSED = {
  bad_image: "This file is not a photo the hub can read (JPEG, PNG or WebP).",
  unsupported_media_type: "This file is not a photo the hub can read (JPEG, PNG or WebP).",
  too_large: "This photo is too large; take it again at a smaller size.",
  too_slow: "The photo arrived too slowly; try again where the Wi-Fi is better.",
  not_found: "This photo was already removed.",
};

function refusal(err) {
  return (err instanceof ApiError && REFUSED[err.code]) || err.message;
}

function photoCount(n) {
  return n === 1 ? "1 photo" : `${n} photos`;
}

async function refresh(forSku) {
  if (forSku === sku) render(await staffApi(`/api/products/${encodeURIComponent(forSku)}/photos`));
}

export async function showFor(product) {
  sku = product.sku;
  result.textContent = "";
  try {
    render(await staffApi(`/api/products/${encodeURIComponent(sku)}/photos`));
    panel.hidden = false;
  } catch (err) {
    panel.hidden = true; // photo search is off or still starting on this hub
    if (!(err instanceof ApiError && err.status === 503)) throw err;
  }
}

function render({ photos }) {
  list.replaceChildren(...photos.map((photo) => {
    const item = el("li");
    const img = el("img");
    img.src = photo.url;
    img.alt = photo.kind === "iconic" ? "" : `Photo ${photo.image_id}`; // the caption names it
    item.append(img);
    if (photo.kind === "iconic") {
      item.append(el("span", "Catalogue image"));
    } else {
      const remove = el("button", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove photo ${photo.image_id}`);
      remove.addEventListener("click", () => removePhoto(photo.image_id));
      item.append(remove);
    }
    return item;
  }));
}

async function removePhoto(id) {
  if (!window.confirm("Remove this photo? Photo search stops using it.")) return;
  const forSku = sku;
  try {
    await staffApi(`/api/products/${encodeURIComponent(forSku)}/photos/${id}`, { method: "DELETE" });
    result.textContent = "Photo removed.";
  } catch (err) {
    result.textContent = `Not removed: ${refusal(err)}`;
  }
  await refresh(forSku); // also when another tablet had removed it first
  add.focus(); // the button that was pressed is gone
}

add.addEventListener("click", () => input.click());
input.addEventListener("change", async () => {
  const file = input.files[0];
  input.value = "";
  if (!file || sku === null) return;
  const forSku = sku; // staff may open another product while it uploads
  result.textContent = "Adding the photo…";
  try {
    const added = await staffApi(`/api/products/${encodeURIComponent(forSku)}/photos`,
      { method: "POST", body: file, type: file.type || "image/jpeg" });
    if (forSku !== sku) return;
    result.textContent = added.added
      ? `Photo added; the product has ${photoCount(added.photos)}.` + (added.looks_like
        ? ` Check it: photo search took it for ${added.looks_like.name} (${added.looks_like.sku}); `
          + "if it shows another product, remove it below."
        : "")
      : "This photo was already added.";
    await refresh(forSku);
  } catch (err) {
    if (forSku === sku) result.textContent = `Not added: ${refusal(err)}`;
  }
});
