"""Photo search for the kiosk and reference-photo enrolment for staff.

``POST /api/search/photo`` takes the photo as the raw body (``image/jpeg``, ``image/png`` or
``image/webp``) or as a multipart form with a ``photo`` file field. ``POST
/api/products/{sku}/photos`` (staff) adds a reference photo the same way; ``GET`` on it lists the
product's photos and ``DELETE .../photos/{image_id}`` removes an enrolled one that was a mistake
(a photo of the wrong product teaches the kiosk to answer wrongly). Bodies are read in one of
the app's upload places, capped in size and refused when they stop arriving
(``hub.web.common.read_body``); the pixel count and file integrity are checked by the vision
package before any decoding, and the work runs on the photo service's own thread.
"""

from __future__ import annotations

import asyncio

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from hub.errors import InvalidInput, Unavailable, UnsupportedMedia
from hub.photo_search import PhotoService
from hub.web.common import (
    int_query,
    json_response,
    read_body,
    read_steadily,
    require_staff,
    services,
    upload_place,
)

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
FORM_FIELD = "photo"


def photo_service(request: web.Request) -> PhotoService:
    service = services(request).photo_search
    if service is None:
        raise Unavailable("photo search is turned off on this hub (vision.enabled = false)")
    return service


async def read_photo(request: web.Request) -> bytes:
    """The uploaded photo's bytes, from a raw image body or a multipart ``photo`` field."""
    content_type = request.content_type
    if content_type in IMAGE_TYPES:
        data = await read_body(request, services(request).config.web.max_upload_bytes, "the photo")
    elif content_type == "multipart/form-data":
        data = await _form_photo(request)
    else:
        raise UnsupportedMedia(
            f"send the photo as image/jpeg, image/png or image/webp, or as a multipart form with a "
            f"'{FORM_FIELD}' file; got {content_type or 'no content type'}"
        )
    if not data:
        raise InvalidInput("the photo is empty; send the image's bytes", code="bad_image")
    return data


async def _form_photo(request: web.Request) -> bytes:
    """The ``photo`` field of a multipart form, read in chunks up to the upload limit (aiohttp's
    body cap does not apply to streamed multipart parts)."""
    limit = services(request).config.web.max_upload_bytes
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == FORM_FIELD:
                return await read_steadily(part.read_chunk, limit, "the photo")
    # aiohttp's words for a broken form; a part's malformed header is an HttpProcessingError
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        raise InvalidInput(
            f"the multipart form cannot be read ({exc}); send it as a browser or curl -F does, "
            f"or the image's bytes as image/jpeg, image/png or image/webp",
            code="bad_image",
        ) from None
    raise InvalidInput(f"the multipart form has no '{FORM_FIELD}' file field")


async def search_photo(request: web.Request) -> web.Response:
    service = photo_service(request)
    top_k = int_query(request, "limit", service.config.top_k, 1, 20)
    async with upload_place(request):  # the body is read only when its turn comes
        data = await read_photo(request)
        answer = await service.run(service.search, data, top_k)
    return json_response(answer)


async def add_photo(request: web.Request) -> web.Response:
    require_staff(request)
    service = photo_service(request)
    sku = request.match_info["sku"]
    async with upload_place(request):  # held for the photo's bytes, not for the retraining
        data = await read_photo(request)
        enrolment, searchable = await service.add_photo(sku, data)
    if searchable is not None:
        await asyncio.wrap_future(searchable)
    photos = await service.run(service.photo_count, sku)
    return json_response(
        {"sku": sku, "image_id": enrolment.image_id, "added": enrolment.added, "photos": photos,
         "looks_like": enrolment.looks_like},
        status=201 if enrolment.added else 200,
    )


async def list_photos(request: web.Request) -> web.Response:
    require_staff(request)
    service = photo_service(request)
    sku = request.match_info["sku"]
    service.catalog.get(sku)
    rows = await service.run(service.catalog.images, sku)
    photos = [
        {"image_id": r["id"], "kind": r["kind"], "url": f"/images/{r['path']}",
         "added_at": r["added_at"]}
        for r in rows
    ]
    return json_response({"sku": sku, "photos": photos})


async def remove_photo(request: web.Request) -> web.Response:
    require_staff(request)
    service = photo_service(request)
    sku, raw_id = request.match_info["sku"], request.match_info["image_id"]
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 18:
        raise InvalidInput(
            f"the photo id must be an image_id from the product's photo list (a whole number "
            f"of at most 18 digits); got {raw_id[:40]!r}"
        )
    left = await service.remove_photo(sku, int(raw_id))
    return json_response({"sku": sku, "image_id": int(raw_id), "photos": left})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/search/photo", search_photo)
    app.router.add_post("/api/products/{sku}/photos", add_photo)
    app.router.add_get("/api/products/{sku}/photos", list_photos)
    app.router.add_delete("/api/products/{sku}/photos/{image_id}", remove_photo)
