"""Live WebSockets: the kiosk's stock feed (public) and the staff feed of every hub event (the
staff token is sent in the first message, never in the URL).

Kiosk, ``GET /api/live/stock``: the server sends ``{"type": "stock", "sku", "on_hand", "reserved",
"available", "seq"}`` whenever a product's stock changes; the client sends nothing.

Staff, ``GET /api/staff/events``: the client's first message is ``{"token": "<staff token>"}``
within ``AUTH_TIMEOUT_S``; a wrong or late token gets ``{"type": "error", "error": {...}}`` and the
socket is closed with code 4401 (a message over ``MAX_MESSAGE_BYTES`` gets the error ``too_big``
and code 1009). Then ``{"type": "ready"}``, and every hub event as
``{"type": <event type>, "data": {...}}``. ``{"type": "resync"}`` says events were dropped
because the client read too slowly: reload the lists.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from hub.errors import TooManyAttempts
from hub.events import Event, Subscription
from hub.inventory import STOCK_CHANGED
from hub.web.common import (
    SizedWebSocket,
    client_address,
    close_on_shutdown,
    prepare_websocket,
    services,
    token_matches,
)
from untrusted.json_keys import DuplicateKeyError, loads_unique

#: Open sockets, closed when the hub stops (an open socket would otherwise hold the shutdown).
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("live_sockets", set)
#: Live sockets open at once, in all and from one address: a store has a few kiosks and staff
#: screens; 1,100 sockets from one machine had used up the hub's open files.
MAX_SOCKETS = 256
MAX_SOCKETS_PER_CLIENT = 16
AUTH_TIMEOUT_S = 10.0
HEARTBEAT_S = 20.0
#: Largest message a client may send: the staff token; a kiosk sends nothing.
MAX_MESSAGE_BYTES = 64 * 1024
CLOSE_UNAUTHORIZED = 4401
CLOSE_BUSY = 4429
#: Each socket's remote address, kept on the socket.
CLIENT: web.ResponseKey[str | None] = web.ResponseKey("client", str)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}


def _kiosk_message(event: Event) -> dict[str, Any]:
    return {"type": "stock", **event.data}


def _staff_message(event: Event) -> dict[str, Any]:
    return {"type": event.type, "data": event.data}


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


async def _pump(ws: web.WebSocketResponse, sub: Subscription,
                render: Callable[[Event], dict[str, Any]]) -> None:
    """Forward subscribed events to ``ws`` until it closes."""
    dropped = sub.dropped
    while not ws.closed:
        event = await sub.get()
        if sub.dropped != dropped:
            dropped = sub.dropped
            await ws.send_json({"type": "resync"})
        await ws.send_json(render(event), dumps=_dumps)


async def _serve(ws: web.WebSocketResponse, sub: Subscription,
                 render: Callable[[Event], dict[str, Any]]) -> None:
    """Pump events while draining (and ignoring) what the client sends, until either side ends."""
    pump = asyncio.create_task(_pump(ws, sub, render))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        pump.cancel()
        sub.close()
        await asyncio.gather(pump, return_exceptions=True)


async def _open(request: web.Request) -> web.WebSocketResponse:
    """Upgrade to a socket; when too many are open, say so on it and close it (code
    ``CLOSE_BUSY``): the caller then returns it as it is. Said on the socket, not as an HTTP
    refusal before the upgrade: a browser shows a page nothing of that, and the staff page said
    "Reconnecting" for good."""
    sockets = request.app[SOCKETS]
    client = client_address(request)
    mine = sum(1 for ws in sockets if ws.get(CLIENT) == client)
    ws = SizedWebSocket(max_msg_size=MAX_MESSAGE_BYTES, error=_error, heartbeat=HEARTBEAT_S)
    await prepare_websocket(request, ws)
    if len(sockets) >= MAX_SOCKETS or mine >= MAX_SOCKETS_PER_CLIENT:
        message = ("too many live connections are open on this hub; close other kiosk or staff "
                   "pages (this page retries by itself)")
        await ws.send_json(_error("busy", message))
        await ws.close(code=CLOSE_BUSY, message=b"busy")
        return ws
    ws[CLIENT] = client
    sockets.add(ws)
    return ws


async def kiosk_stock(request: web.Request) -> web.WebSocketResponse:
    ws = await _open(request)
    if ws.closed:
        return ws
    try:
        await _serve(ws, services(request).bus.subscribe([STOCK_CHANGED]), _kiosk_message)
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


def _token_problem(request: web.Request, raw: str | None) -> tuple[str, str] | None:
    """The error code and message saying why the first message does not authenticate, or None
    when it does."""
    svc = services(request)
    if svc.staff_token is None:
        return "unauthorized", "staff access is disabled: no staff token is configured on this hub"
    try:
        given = loads_unique(raw) if raw is not None else None
    except DuplicateKeyError as exc:  # which token was meant? a proxy may check the other
        return "unauthorized", f"{exc}; send {{\"token\": \"<staff token>\"}} once"
    except (json.JSONDecodeError, RecursionError):  # not JSON, or nested beyond any token's
        given = None
    token = given.get("token") if isinstance(given, dict) else None
    if not isinstance(token, str):
        return "unauthorized", "send {\"token\": \"<staff token>\"} as the first message"
    try:
        if not token_matches(request, token, svc.staff_token):
            return "unauthorized", "the staff token is not valid"
    except TooManyAttempts as exc:
        return exc.code, exc.message
    return None


async def staff_events(request: web.Request) -> web.WebSocketResponse:
    ws = await _open(request)
    if ws.closed:
        return ws
    try:
        await _authenticated(ws, request)
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


async def _authenticated(ws: web.WebSocketResponse, request: web.Request) -> None:
    try:
        first = await ws.receive(timeout=AUTH_TIMEOUT_S)
        raw = first.data if first.type == WSMsgType.TEXT else None
    except TimeoutError:
        raw = None
    if ws.closed:  # gone, or closed for a message over MAX_MESSAGE_BYTES (said on the socket)
        return
    problem = _token_problem(request, raw)
    if problem is not None:
        await ws.send_json(_error(*problem))
        await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
        return
    sub = services(request).bus.subscribe()
    await ws.send_json({"type": "ready"})
    await _serve(ws, sub, _staff_message)


def setup(app: web.Application) -> None:
    close_on_shutdown(app, SOCKETS)
    app.router.add_get("/api/live/stock", kiosk_stock)
    app.router.add_get("/api/staff/events", staff_events)
