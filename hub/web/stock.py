"""Staff stock API: record a movement or a count, read the ledger (including sales flagged for
review)."""

from __future__ import annotations

import re

from aiohttp import web

from hub.errors import InvalidInput
from hub.inventory import SKU_PATTERN, CountIn, MovementIn
from hub.web.common import int_query, json_response, read_json, require_staff, services


async def record(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    movement = await read_json(request, MovementIn)
    result, duplicate = await svc.db.write(svc.inventory.record, movement)
    body = result.to_json()
    body["duplicate"] = duplicate
    return json_response(body, status=200 if duplicate else 201)


async def count(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    entry = await read_json(request, CountIn)
    result, duplicate = await svc.db.write(svc.inventory.count, entry)
    body = {**result.to_json(), "duplicate": duplicate}
    return json_response(body, status=201 if result.movement and not duplicate else 200)


async def ledger(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    sku = request.query.get("sku")
    if sku is not None and not re.fullmatch(SKU_PATTERN, sku):
        raise InvalidInput("'sku' is not a valid SKU")
    flagged_raw = request.query.get("flagged")
    if flagged_raw not in (None, "true", "false"):
        raise InvalidInput("'flagged' must be 'true' or 'false'")
    flagged = None if flagged_raw is None else flagged_raw == "true"
    limit = int_query(request, "limit", 100, 1, 1000)
    rows = await svc.db.read(svc.inventory.movements, sku, flagged, limit)
    return json_response({"movements": rows})


async def levels(request: web.Request) -> web.Response:
    svc = services(request)
    rows = await svc.db.read(svc.inventory.all_stock)
    return json_response({"stock": [r.__dict__ for r in rows]})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/stock/movements", record)
    app.router.add_post("/api/stock/counts", count)
    app.router.add_get("/api/stock/movements", ledger)
    app.router.add_get("/api/stock", levels)
