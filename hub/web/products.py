"""Public kiosk API: product search by text, product detail, stock of a SKU, product images."""

from __future__ import annotations

import unicodedata

from aiohttp import web

from hub.catalog import Product
from hub.db import Database
from hub.errors import InvalidInput, NotFound
from hub.services import Services
from hub.web.common import inside, int_query, json_response, services
from sync.ports import StockLevel
from vision.imageinfo import EXTENSIONS

MAX_QUERY_CHARS = 200


def product_json(product: Product, stock: StockLevel, currency: str,
                 elsewhere: list[dict[str, object]]) -> dict[str, object]:
    """A product as the kiosk shows it: names, price, shelf, image, live stock and, from sync,
    the nearby stores that have it."""
    return {
        "sku": product.sku,
        "names": product.names,
        "name": product.names.get("en") or next(iter(product.names.values())),
        "category": product.category,
        "description": product.description,
        "price": None if product.price_cents is None else {
            "amount": f"{product.price_cents / 100:.2f}", "currency": currency},
        "shelf": product.shelf,
        "image": f"/images/{product.image}" if product.image else None,
        "stock": {"on_hand": stock.on_hand, "reserved": stock.reserved,
                  "available": stock.available},
        "elsewhere": elsewhere,
    }


def product_view(svc: Services, sku: str) -> dict[str, object]:
    """One product as the kiosk shows it (reads the database: call it on a reader thread)."""
    return product_json(svc.catalog.get(sku), svc.inventory.stock(sku), svc.config.store.currency,
                        svc.nearby.elsewhere(sku))


def _matches(svc: Services, query: str, limit: int, lang: str | None) -> list[dict[str, object]]:
    """The matching products with their stock, read in one trip to a reader thread."""
    results = []
    for hit in svc.text_search.search(query, limit, lang):
        item = product_view(svc, hit.sku)
        item["score"] = hit.score
        item["matched"] = hit.matched
        results.append(item)
    return results


async def search(request: web.Request) -> web.Response:
    svc = services(request)
    given = request.query.get("q", "")
    query = given.strip()
    if not query:
        raise InvalidInput("give the text to search for in the 'q' query parameter")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the search text may be at most {MAX_QUERY_CHARS} characters")
    # Looked for before the spaces are stripped: a trailing newline or tab is one too. A
    # kiosk's keyboard types none; a script's bug or a probe does.
    control = next((c for c in given if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise InvalidInput(f"the search text holds the control character U+{ord(control):04X}; "
                           "send the words only")
    limit = int_query(request, "limit", 5, 1, 20)
    lang = request.query.get("lang")
    results = await svc.db.read(_matches, svc, query, limit, lang)
    return json_response({"query": query, "results": results})


async def detail(request: web.Request) -> web.Response:
    svc = services(request)
    return json_response(await svc.db.read(product_view, svc, request.match_info["sku"]))


async def stock(request: web.Request) -> web.Response:
    svc = services(request)
    level = await svc.db.read(svc.inventory.stock, request.match_info["sku"])
    return json_response({"sku": level.sku, "on_hand": level.on_hand, "reserved": level.reserved,
                          "available": level.available, "seq": level.seq})


#: A product image is a picture, never a page: no script of it runs, whatever its bytes.
IMAGE_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'; sandbox"}


#: By the extension the hub stores each image format under (the format's name is its media
#: subtype): aiohttp's table has no .webp before Python 3.13, so an enrolled WebP photo went out
#: as application/octet-stream (opened on its own, it was downloaded, not shown).
IMAGE_TYPES = {extension: f"image/{kind}" for kind, extension in EXTENSIONS.items()}


def _recorded(db: Database, path: str) -> bool:
    """Whether ``path`` names a catalogue image or an enrolled photo."""
    row = db.conn().conn.execute("SELECT 1 FROM product_images WHERE path = ? UNION ALL "
                                 "SELECT 1 FROM products WHERE image = ? LIMIT 1", (path, path))
    return row.fetchone() is not None


async def image(request: web.Request) -> web.FileResponse:
    """A catalogue or enrolled image. Only files the hub recorded are served: anything else an
    operator leaves in the images folder (a backup, a page, a note) stays private."""
    svc = services(request)
    path = request.match_info["path"]
    target = inside(svc.config.store.images_dir, path)
    if target is None or not await svc.db.read(_recorded, svc.db, path):
        raise NotFound("no such image")
    kind = IMAGE_TYPES.get(target.suffix.lower())
    return web.FileResponse(
        target, headers=IMAGE_HEADERS if kind is None else {**IMAGE_HEADERS, "Content-Type": kind}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/products", search)
    app.router.add_get("/api/products/{sku}", detail)
    app.router.add_get("/api/stock/{sku}", stock)
    app.router.add_get("/images/{path:.+}", image)
