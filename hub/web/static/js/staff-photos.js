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
  try {
    await staffApi(`/api/products/${encodeURIComponent(sku)}/photos/${id}`, { method: "DELETE" });
    result.textContent = "Photo removed.";
    render(await staffApi(`/api/products/${encodeURIComponent(sku)}/photos`));
  } catch (err) {
    result.textContent = `Not removed: ${err.message}`;
  }
}

add.addEventListener("click", () => input.click());
input.addEventListener("change", async () => {
  const file = input.files[0];
  input.value = "";
  if (!file || sku === null) return;
  result.textContent = "Adding the photo…";
  try {
    const added = await staffApi(`/api/products/${encodeURIComponent(sku)}/photos`,
      { method: "POST", body: file, type: file.type || "image/jpeg" });
    result.textContent = added.added ? `Photo added; the product has ${added.photos} photos.`
      : "This photo was already added.";
    render(await staffApi(`/api/products/${encodeURIComponent(sku)}/photos`));
  } catch (err) {
    result.textContent = `Not added: ${err.message}`;
  }
});
