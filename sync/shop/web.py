"""The mini-program's HTTP API (documented in docs/shop-openapi.yaml).

Reads come from the shop's replica; writes (orders, opt-ins) are stored first and then sent to the
store as commands, so a request is never lost to a store or broker outage: the answer is 202 and
the order's status follows as the store reports it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from aiohttp import web
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.envelope import STORE_PATTERN, TooLarge, new_id
from sync.messages import (
    ID_PATTERN,
    MEMBER_UPSERT,
    NAME_PATTERN,
    ORDER_CANCEL,
    ORDER_PLACE,
    SKU_PATTERN,
)
from sync.shop.context import SHOP, Shop
from sync.shop.feed import Resync
from sync.shop.store import (
    FINAL_STATES,
    KeyReused,
    OrderFinal,
    OrderKey,
    UnknownStore,
    too_large_advice,
)
from untrusted.json_keys import DuplicateKeyError, loads_unique

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
IdText = Annotated[str, Field(pattern=ID_PATTERN)]
SkuText = Annotated[str, Field(pattern=SKU_PATTERN)]
StoreText = Annotated[str, Field(pattern=STORE_PATTERN)]
#: Request bodies are validated strictly: ``true`` or ``"1"`` is not a quantity (the hub, which
#: applies the command, refuses them; accepting them here promised what would never happen).
STRICT = ConfigDict(extra="forbid", strict=True)
#: A comment line this often on a quiet stock stream: proxies and API gateways close idle ones.
STREAM_HEARTBEAT_S = 15.0
#: How long an EventSource waits before reconnecting after the stream ends, in milliseconds.
STREAM_RETRY_MS = 3000
#: The Idempotency-Key header of POST /api/orders: 8 to 255 characters a UUID, ULID or
#: base64 token is made of.
IDEMPOTENCY_KEY_PATTERN = r"[A-Za-z0-9._:+/=-]{8,255}"
#: How long a key is kept: a retry within this time gets the order the key made; after it the
#: key is forgotten and makes a new order.
IDEMPOTENCY_KEY_TTL_S = 24 * 3600.0


class ApiError(Exception):
    """An error for the client: HTTP status, stable code and a message a person can act on."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class LineIn(BaseModel):
    model_config = STRICT
    sku: SkuText = Field(description="Product SKU.")
    qty: int = Field(ge=1, le=99, description="Units wanted.")


class OrderIn(BaseModel):
    """An order for pickup at a store."""

    model_config = STRICT
    store: StoreText = Field(description="Store to collect from.")
    member: IdText = Field(description="Member placing the order.")
    lines: list[LineIn] = Field(min_length=1, max_length=50, description="What to reserve.")


class CancelIn(BaseModel):
    model_config = STRICT
    reason: str | None = Field(default=None, max_length=300, description="Why.")


class OptInIn(BaseModel):
    """A member opting in to arrival reminders at a store."""

    model_config = STRICT
    store: StoreText = Field(description="The member's store.")
    display_name: str = Field(default="", max_length=100, pattern=NAME_PATTERN,
                              description="Name staff see: no control characters or line breaks.")


class OptOutIn(BaseModel):
    model_config = STRICT
    store: StoreText = Field(description="The store to stop reminders at.")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
               415: "unsupported_media_type"}


def _error(status: int, code: str, message: str, details: Any = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response({"error": body}, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"error": {"code", "message", "details"}}``, never a traceback.

    Anything unexpected is logged with its traceback and answered as the documented JSON 500:
    aiohttp's own answer is a text/plain 500 the mini-program cannot read (a RecursionError on
    deeply nested JSON reached it that way)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: "no such path", 405: f"{request.method} is not allowed here"}.get(
            exc.status, exc.reason)
        response = _error(exc.status, _HTTP_CODES.get(exc.status, "invalid"), message)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:  # the client went away mid-request: nobody to answer
        log.info("client left during %s %s", request.method, request.path)
        return web.Response(status=400)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal", "internal error; see the shop's log")


def shop(request: web.Request) -> Shop:
    return request.app[SHOP]


async def read_json(request: web.Request, model: type[M]) -> M:
    """The body validated into ``model``, or an ApiError that says what is wrong with it."""
    http = shop(request).config.http
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send JSON with Content-Type: "
                       "application/json")
    try:  # the app's client_max_size is the limit; read() waits for the whole body ...
        async with asyncio.timeout(http.body_timeout_s):  # ... so not for ever
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "too_large", f"the JSON body is larger than {http.max_json_bytes} "
                       "bytes") from None
    except TimeoutError:
        raise ApiError(400, "too_slow", f"the body did not arrive within "
                       f"{http.body_timeout_s:g} s; send it again over a better connection"
                       ) from None
    try:
        data = loads_unique(raw)
    except DuplicateKeyError as exc:  # a gateway in front may have read the other one
        raise ApiError(400, "invalid", f"the body is ambiguous: {exc}; send each key "
                       "once") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid", f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # Python's parser gives up near 1000 levels; no request needs 3
        raise ApiError(400, "invalid", "the JSON is nested too deeply to read; no request "
                       "nests more than three levels") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [{"field": ".".join(map(str, e["loc"])),
                    "message": "unknown field" if e["type"] == "extra_forbidden" else e["msg"]}
                   for e in exc.errors()]
        fields = ", ".join(d["field"] for d in details)
        raise ApiError(400, "invalid", f"the body does not match what this endpoint expects: "
                       f"{fields}", details) from None


def _path(request: web.Request, name: str, pattern: str) -> str:
    """The path parameter ``name``, matched whole: ``re.match`` with ``$`` let a trailing
    newline through ('ann\\n' opted in, and the store then refused the command)."""
    return _whole(name, request.match_info[name], pattern)


def _whole(name: str, value: str, pattern: str) -> str:
    if not re.fullmatch(pattern, value):
        raise ApiError(400, "invalid", f"{name} {value!r} is not valid")
    return value


#: Set by the shop's API gateway to the mini-program user it authenticated (see ``_caller``).
MEMBER_HEADER = "X-Member-Id"


def _caller(request: web.Request) -> str | None:
    """The member the gateway says is calling, or None for the shop's own back office.

    Why: every member's paths trusted their caller, so anything that reached the service read,
    cancelled or opted out another member's orders and got their beacon key (found by a
    security review). The gateway authenticates the mini-program's user, sets this header and
    removes any the client sent; a call without it is the shop's own and may act for anyone."""
    value = request.headers.get(MEMBER_HEADER)
    return None if value is None else _whole(MEMBER_HEADER, value, ID_PATTERN)


def _act_for(request: web.Request, member: str) -> None:
    """403 when a member's call names another member."""
    caller = _caller(request)
    if caller is not None and caller != member:
        raise ApiError(403, "forbidden", f"this call is made for member {caller!r}, so it cannot "
                       f"act for member {member!r}")


def _too_large(error: TooLarge, field: str, command_type: str) -> ApiError:
    """413 for a request whose ``command_type`` command to the store would be over
    ``max_payload_bytes``; ``field`` is what makes it large (its detail also carries ``size``
    and ``limit``).

    Why refuse it here: the store would only dead-letter it (or the broker drop it unread),
    and the shop, waiting for an answer that never comes, sent it again for ever. Nothing was
    stored; the message says how large, the limit, and what to send instead."""
    message = (f"{error.what} would be {error.size} bytes, over the {error.limit} bytes a "
               f"store takes (sync.max_payload_bytes); nothing was stored or sent: "
               f"{too_large_advice(command_type)}")
    return ApiError(413, "too_large", message, [
        {"field": field, "message": message, "size": error.size, "limit": error.limit}])


def _unknown_store(store: str) -> ApiError:
    return ApiError(404, "not_found", f"store {store!r} has not reported to the shop; check the "
                    "store id, or wait until the store has connected once")


async def healthz(request: web.Request) -> web.Response:
    s = shop(request)
    return web.json_response({"status": "ok", "broker": "connected" if s.link.subscribed.is_set()
                              else "disconnected"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(shop(request).registry), content_type="text/plain")


async def stores(request: web.Request) -> web.Response:
    s = shop(request)
    return web.json_response({"stores": await s.store.read(s.store.stores)})


async def store_stock(request: web.Request) -> web.Response:
    s = shop(request)
    store = _path(request, "store", STORE_PATTERN)
    rows = await s.store.read(s.store.stock, store, None)
    if not rows and not await s.store.read(s.store.store_known, store):
        raise _unknown_store(store)
    return web.json_response({"store": store, "stock": [r.to_json() for r in rows]})


async def store_sku_stock(request: web.Request) -> web.Response:
    s = shop(request)
    store = _path(request, "store", STORE_PATTERN)
    sku = _path(request, "sku", SKU_PATTERN)
    rows = await s.store.read(s.store.stock, store, sku)
    if not rows and not await s.store.read(s.store.store_known, store):
        raise _unknown_store(store)  # a typo in the store is not a product it lacks
    if not rows:
        raise ApiError(404, "not_found", f"store {store!r} has reported no stock of {sku!r}")
    return web.json_response(rows[0].to_json())


async def sku_stock(request: web.Request) -> web.Response:
    s = shop(request)
    sku = _path(request, "sku", SKU_PATTERN)
    rows = await s.store.read(s.store.stock, None, sku)
    return web.json_response({"sku": sku, "stores": [r.to_json() for r in rows]})


async def stock_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``stock`` event per change, optionally for one store or SKU; a
    ``resync`` event when the listener must re-read the stock endpoints; a comment every
    ``STREAM_HEARTBEAT_S`` so proxies and gateways do not close a quiet stream."""
    s = shop(request)
    store = _query(request, "store", STORE_PATTERN)
    sku = _query(request, "sku", SKU_PATTERN)
    if store is not None and not await s.store.read(s.store.store_known, store):
        raise _unknown_store(store)  # a typo would otherwise wait on an empty stream for ever
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    listener = s.feed.listen(store, sku)
    try:
        await response.write(f"retry: {STREAM_RETRY_MS}\n: connected\n\n".encode())
        while True:
            try:
                item = await asyncio.wait_for(listener.get(), STREAM_HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:  # the shop is stopping: end the stream cleanly
                break
            if isinstance(item, Resync):
                body = json.dumps({"reason": item.reason, "store": item.store, "lost": item.lost},
                                  separators=(",", ":"))
                await response.write(f"event: resync\ndata: {body}\n\n".encode())
                continue
            body = json.dumps(item.to_json(), separators=(",", ":"))
            await response.write(f"event: stock\nid: {item.store}:{item.seq}\ndata: {body}\n\n"
                                 .encode())
    except (ConnectionResetError, RuntimeError):
        pass  # the listener went away
    finally:
        s.feed.forget(listener)
    return response


def _query(request: web.Request, name: str, pattern: str) -> str | None:
    """The query parameter ``name`` matched whole, or None when absent."""
    value = request.query.get(name)
    return None if value is None else _whole(name, value, pattern)


def _idempotency_key(request: web.Request) -> str | None:
    """The Idempotency-Key header, or None when absent; a malformed one is refused (400)."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise ApiError(400, "invalid", "the Idempotency-Key header must be 8 to 255 characters "
                       "of A-Z a-z 0-9 . _ : + / = - (a UUID or ULID fits); send a new one")
    return key


async def place_order(request: web.Request) -> web.Response:
    """Place an order; with an Idempotency-Key, a retry answers with the order the key made."""
    s = shop(request)
    key = _idempotency_key(request)
    order = await read_json(request, OrderIn)
    _act_for(request, order.member)
    lines = [line.model_dump() for line in order.lines]
    now = s.clock()
    keyed = None
    if key is not None:
        canonical = json.dumps(order.model_dump(), sort_keys=True, separators=(",", ":"))
        keyed = OrderKey(key, hashlib.sha256(canonical.encode()).hexdigest(),
                         now - IDEMPOTENCY_KEY_TTL_S)
    try:
        placed = await s.store.write(s.store.place_order, f"o-{new_id()}", order.store,
                                     order.member, lines, now, keyed)
    except UnknownStore:
        raise _unknown_store(order.store) from None
    except TooLarge as exc:
        raise _too_large(exc, "lines", ORDER_PLACE) from None
    except KeyReused as exc:
        raise ApiError(409, "idempotency_key_reused", f"Idempotency-Key {key!r} was already used "
                       f"by member {order.member!r} for order {exc.order_id!r} with a different "
                       "body; send the same body to get that order back, or a new key for a "
                       "new order") from None
    headers = {}
    if placed.command is not None:
        await s.link.send(placed.command)
    else:
        headers["Idempotent-Replayed"] = "true"
    return web.json_response({"id": placed.order_id, "store": placed.store,
                              "state": "requested"}, status=202, headers=headers)


async def _find_order(request: web.Request) -> dict[str, Any]:
    """The order of the path's id at the ``store`` query parameter; without it, the only
    store with that id (409 listing them when staff at several stores chose it). A member's
    call finds only their own orders: another's is answered as if it did not exist."""
    s = shop(request)
    order_id = _path(request, "order_id", ID_PATTERN)
    store = _query(request, "store", STORE_PATTERN)
    caller = _caller(request)
    stores = [store] if store is not None else await s.store.read(s.store.order_stores, order_id)
    found = [order for at in stores
             if (order := await s.store.read(s.store.order, order_id, at)) is not None
             and caller in (None, order["member"])]
    if len(found) > 1:
        raise ApiError(409, "ambiguous_order", f"stores {', '.join(o['store'] for o in found)} "
                       f"each have an order {order_id!r}; name one with ?store=")
    order = found[0] if found else None
    if order is None:
        at = "" if request.query.get("store") is None else f" at store {store!r}"
        raise ApiError(404, "not_found", f"no order {order_id!r}{at}")
    return order


async def get_order(request: web.Request) -> web.Response:
    return web.json_response(await _find_order(request))


async def cancel_order(request: web.Request) -> web.Response:
    s = shop(request)
    _path(request, "order_id", ID_PATTERN)
    body = await read_json(request, CancelIn)
    order = await _find_order(request)
    order_id, store = order["id"], order["store"]
    try:
        command = await s.store.write(s.store.cancel_order, order_id, store, body.reason,
                                      s.clock())
    except OrderFinal as exc:
        raise ApiError(409, "order_final", f"order {order_id!r} is already {exc.state}, a final "
                       "state: the store cannot cancel it (only an order that is not yet "
                       f"{', '.join(sorted(FINAL_STATES))} can be cancelled)") from None
    except TooLarge as exc:
        raise _too_large(exc, "reason", ORDER_CANCEL) from None
    await s.link.send(command)
    return web.json_response({"id": order_id, "state": order["state"],
                              "cancel_requested": True}, status=202)


async def opt_in(request: web.Request) -> web.Response:
    """Issue the member's 128-bit beacon key (kept across stores) and send it to the store."""
    s = shop(request)
    member = _path(request, "member", ID_PATTERN)
    _act_for(request, member)
    body = await read_json(request, OptInIn)
    try:
        key, command = await s.store.write(s.store.opt_in, member, body.store, body.display_name,
                                           True, secrets.token_hex(16), s.clock())
    except UnknownStore:
        raise _unknown_store(body.store) from None
    except TooLarge as exc:
        raise _too_large(exc, "display_name", MEMBER_UPSERT) from None
    await s.link.send(command)
    return web.json_response({"member": member, "store": body.store, "beacon_key": key},
                             status=202)


async def opt_out(request: web.Request) -> web.Response:
    s = shop(request)
    member = _path(request, "member", ID_PATTERN)
    _act_for(request, member)
    body = await read_json(request, OptOutIn)
    if not await s.store.read(s.store.member_known, member):
        raise ApiError(404, "not_found", f"member {member!r} never opted in")
    try:
        _, command = await s.store.write(s.store.opt_in, member, body.store, "", False,
                                         secrets.token_hex(16), s.clock())
    except UnknownStore:
        raise _unknown_store(body.store) from None
    await s.link.send(command)
    return web.json_response({"member": member, "store": body.store, "beacon_key": None},
                             status=202)


async def withdraw(request: web.Request) -> web.Response:
    """Withdraw consent everywhere: every store the member opted in at deletes the key."""
    s = shop(request)
    member = _path(request, "member", ID_PATTERN)
    _act_for(request, member)
    if not await s.store.read(s.store.member_known, member):
        raise ApiError(404, "not_found", f"member {member!r} never opted in")
    commands = await s.store.write(s.store.withdraw, member, secrets.token_hex(16), s.clock())
    for command in commands:
        await s.link.send(command)
    return web.json_response({"member": member, "stores": [c.store for c in commands],
                              "beacon_key": None}, status=202)


async def reminders(request: web.Request) -> web.Response:
    s = shop(request)
    member = _path(request, "member", ID_PATTERN)
    _act_for(request, member)
    rows = await s.store.read(s.store.reminders, member, 100)
    return web.json_response({"member": member, "reminders": rows})


def create_app(state: Shop) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=state.config.http.max_json_bytes)
    app[SHOP] = state

    async def end_streams(app: web.Application) -> None:
        state.feed.close()

    app.on_shutdown.append(end_streams)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/api/stores", stores)
    r.add_get("/api/stores/{store}/stock", store_stock)
    r.add_get("/api/stores/{store}/stock/{sku}", store_sku_stock)
    r.add_get("/api/stock/stream", stock_stream)
    r.add_get("/api/stock/{sku}", sku_stock)
    r.add_post("/api/orders", place_order)
    r.add_get("/api/orders/{order_id}", get_order)
    r.add_post("/api/orders/{order_id}/cancel", cancel_order)
    r.add_post("/api/members/{member}/opt-in", opt_in)
    r.add_post("/api/members/{member}/opt-out", opt_out)
    r.add_post("/api/members/{member}/withdraw", withdraw)
    r.add_get("/api/members/{member}/reminders", reminders)
    return app
