"""What every route module shares: reaching the services, reading JSON bodies safely, staff
authentication and JSON responses."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, SecretStr, ValidationError

from hub.errors import (
    Busy,
    Forbidden,
    InvalidInput,
    TooLarge,
    TooManyAttempts,
    TooSlow,
    Unauthorized,
    UnsupportedMedia,
)
from hub.services import Services
from hub.web.token_guesses import TokenGuesses
from untrusted.json_keys import DuplicateKeyError, loads_unique

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
#: Uploads (photos, recordings, spoken answers) read and worked on at once; more wait their turn
#: with their bodies unread, so a burst of large uploads cannot hold them all in memory (40
#: photo searches of 6.8 MB at once had raised the hub's peak memory by 365 MB).
MAX_UPLOADS = 4
#: Of those places, how many one address may hold; its other uploads wait for these, so a device
#: sending slowly cannot hold every place (four slow bodies had stopped photo and voice search).
MAX_UPLOADS_PER_CLIENT = 2
#: An upload must keep arriving: at least this many bytes a second on average after the first
#: ``UPLOAD_GRACE_S``, and never a pause over ``UPLOAD_PAUSE_S``. A 3 MB phone photo over a poor
#: shop Wi-Fi (200 kbit/s, 25 kB/s) arrives; one byte every few seconds does not.
UPLOAD_MIN_RATE = 8 * 1024
#: Uploads one address may have on their way (holding a place or waiting for one), and all
#: addresses together, and how long one waits for a place. A waiting upload's connection stays
#: open with its body unread: without these, one device that kept opening uploads without
#: sending them held ~20,000 connections, every file descriptor the hub had, and the hub
#: stopped answering anything. A kiosk's burst of a dozen searches still waits its turn.
MAX_QUEUED_PER_CLIENT = 16
MAX_QUEUED = 64
UPLOAD_WAIT_S = 60.0
UPLOAD_GRACE_S = 10.0
UPLOAD_PAUSE_S = 15.0
#: Addresses of the hub's own machine: its kiosk screen, and the TLS proxy in front of it.
LOOPBACK = ("127.0.0.1", "::1")


def client_address(request: web.Request) -> str:
    """The device that sent ``request``, as the key of its per-device limits (upload places,
    wrong staff tokens, live and voice sockets): behind the TLS proxy of docs/install-pi.md
    every staff device reaches the hub from the loopback address, so there the proxy's
    X-Forwarded-For names it (the proxy sets it; a device on the network cannot reach the hub
    past the proxy). See :func:`device_key` for what names a device."""
    peer = device_key(request.remote or "unknown")
    forwarded = request.headers.get("X-Forwarded-For", "")
    if peer in LOOPBACK and forwarded:
        return device_key(forwarded.split(",")[-1].strip()) or peer
    return peer


def device_key(address: str) -> str:
    """The key of the device at ``address``: the address in one spelling, so that
    ``2001:DB8::7`` and ``2001:db8::7`` are one device, and an IPv4 address written in IPv6
    (``::ffff:192.0.2.7``, how a dual-stack socket shows an IPv4 peer) is that IPv4 address.

    Why per address and not per IPv6 /64 network, as limits on the internet often key: on a
    store network every IPv6 device is in the same /64, so staff tablets and kiosks would share
    one device's upload places and free token guesses, and one device could make all the
    others wait. The per-device limits share the hub fairly among the store's devices; the
    hub-wide ones (``MAX_UPLOADS`` with a place kept for the hub's own screen, ``MAX_QUEUED``)
    bound what a device that keeps taking new addresses can hold. Text that is no address is
    its own key."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def own_screen(request: web.Request) -> bool:
    """Whether ``request`` comes from the hub's own screen, the kiosk's Chromium on the same
    machine (loopback, not through the TLS proxy, which names the device it forwards for)."""
    return (device_key(request.remote or "unknown") in LOOPBACK
            and "X-Forwarded-For" not in request.headers)


class UploadPlaces:
    """The places uploads take while their bodies are read and worked on: ``MAX_UPLOADS`` in
    all, ``MAX_UPLOADS_PER_CLIENT`` for one device, whose further uploads wait for its own. One
    place is kept for the hub's own screen: two devices on the network holding two slow uploads
    each had kept the kiosk's photo and voice search waiting."""

    def __init__(self) -> None:
        self._all = asyncio.Semaphore(MAX_UPLOADS)
        self._others = asyncio.Semaphore(MAX_UPLOADS - 1)  # every device but the hub's screen
        self._clients: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def place(self, request: web.Request) -> AsyncIterator[None]:
        """Wait for a place (the sender's own first, then one of all) and hold it; refused with
        429 ``busy`` when too many are on their way or the wait is too long."""
        client = client_address(request)
        own, users = self._clients.get(client) or (asyncio.Semaphore(MAX_UPLOADS_PER_CLIENT), 0)
        if users >= MAX_QUEUED_PER_CLIENT:
            raise Busy(f"this device has {users} uploads on their way to the hub: wait for "
                       "their answers before sending more", retry_after_s=5)
        if not own_screen(request) and sum(n for _, n in self._clients.values()) >= MAX_QUEUED:
            raise Busy("the hub has as many uploads waiting as it takes: try again in a "
                       "moment", retry_after_s=5)
        self._clients[client] = (own, users + 1)
        try:
            async with contextlib.AsyncExitStack() as held:
                try:
                    async with asyncio.timeout(UPLOAD_WAIT_S):
                        await held.enter_async_context(own)
                        if not own_screen(request):
                            await held.enter_async_context(self._others)
                        await held.enter_async_context(self._all)
                except TimeoutError:
                    raise Busy(f"the hub has been busy with other uploads for "
                               f"{UPLOAD_WAIT_S:.0f} s: try again in a moment",
                               retry_after_s=10) from None
                yield
        finally:
            own, users = self._clients[client]
            if users == 1:
                del self._clients[client]
            else:
                self._clients[client] = (own, users - 1)


UPLOADS: web.AppKey[UploadPlaces] = web.AppKey("uploads", UploadPlaces)
TOKEN_GUESSES: web.AppKey[TokenGuesses] = web.AppKey("token_guesses", TokenGuesses)
M = TypeVar("M", bound=BaseModel)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def upload_place(request: web.Request) -> contextlib.AbstractAsyncContextManager[None]:
    """Hold one of the ``MAX_UPLOADS`` places while an upload's body is read and worked on."""
    return request.app[UPLOADS].place(request)


def inside(folder: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``folder`` (links followed), or None when it is not a
    file there: climbing out, a NUL byte or a name over the file system's limit (each made the
    path unusable and answered 500), or nothing at all."""
    base = folder.resolve()
    try:
        target = (base / relative).resolve()
        # is_file raises, not answers False, for a name too long for the file system
        return target if target.is_relative_to(base) and target.is_file() else None
    except (ValueError, OSError):
        return None


def is_staff(request: web.Request) -> bool:
    """Whether the request carries the staff bearer token (public endpoints say more to staff)."""
    try:
        require_staff(request)
    except (Unauthorized, TooManyAttempts):  # a device made to wait gets the public answer
        return False
    return True


def require_staff(request: web.Request) -> None:
    """Refuse the request unless it carries the staff bearer token; a device that sent too many
    wrong ones waits first (``TokenGuesses``)."""
    token = services(request).staff_token
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token is None:
        raise Unauthorized("staff access is disabled: no staff token is configured on this hub")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("staff endpoint: send 'Authorization: Bearer <staff token>'")
    if not token_matches(request, given.strip(), token):
        raise Unauthorized("the staff token is not valid")


def token_matches(request: web.Request, given: str, token: SecretStr) -> bool:
    """Whether ``given`` is the staff token, counted against the sending device: raises
    ``TooManyAttempts`` while that device must wait after too many wrong ones."""
    device, guesses = client_address(request), request.app[TOKEN_GUESSES]
    guesses.check(device)
    if hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        guesses.passed(device)
        return True
    guesses.missed(device)
    return False


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole request body, refused with 413 as soon as it passes ``limit`` bytes, and with
    400 ``too_slow`` when it stops arriving at ``UPLOAD_MIN_RATE`` (a body sent a byte at a time
    held an upload place for good).

    ``StreamReader.read(n)`` returns only what has arrived so far, so a single call can cut a
    body short; it is read until its end instead.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(what, limit)
    return await read_steadily(request.content.read, limit, what)


async def read_steadily(read: Callable[[int], Awaitable[bytes]], limit: int, what: str) -> bytes:
    """Everything ``read(n)`` delivers until it returns nothing, checked against ``limit`` and
    the minimum upload rate as it arrives."""
    clock = asyncio.get_running_loop().time
    started = clock()
    data = bytearray()
    while True:
        try:
            async with asyncio.timeout(UPLOAD_PAUSE_S):
                chunk = await read(64 * 1024)
        except TimeoutError as exc:
            raise _too_slow(what) from exc
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise _too_large(what, limit)
        elapsed = clock() - started
        if elapsed > UPLOAD_GRACE_S and len(data) < UPLOAD_MIN_RATE * (elapsed - UPLOAD_GRACE_S):
            raise _too_slow(what)


def _too_large(what: str, limit: int) -> TooLarge:
    size = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit} bytes"
    return TooLarge(f"{what} is larger than {size}")


def _too_slow(what: str) -> TooSlow:
    return TooSlow(
        f"{what} arrived too slowly (under {UPLOAD_MIN_RATE // 1024} kB a second); send it again "
        "over a better connection"
    )


async def read_json(request: web.Request, model: type[M]) -> M:
    """The request body validated into ``model``, or a 4xx that says what is wrong."""
    limit = services(request).config.web.max_json_bytes
    if request.content_type != "application/json":
        raise UnsupportedMedia("send the body as JSON with 'Content-Type: application/json'")
    raw = await read_body(request, limit, "the JSON body")
    if not raw:
        raise InvalidInput("the request body is empty; send a JSON object")
    try:
        data = loads_unique(raw)
    except DuplicateKeyError as exc:  # a proxy or the shop may read the other one
        raise InvalidInput(f"the body is ambiguous: {exc}; send each key once") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # a few kB of "[[[[..." nest past Python's limit: 500 before
        raise InvalidInput(
            "the JSON body is nested too deeply; no request of this API nests more than a few "
            "levels"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("the body does not match what this endpoint expects",
                           details=validation_details(exc)) from None


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field", "message"}]`` without echoing the input back."""
    details = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        details.append({"field": ".".join(str(p) for p in err["loc"]), "message": message})
    return details


class SizedWebSocket(web.WebSocketResponse):
    """A WebSocket that says why when a client's message is over ``max_msg_size``.

    Why: aiohttp closes such a socket with code 1009 and no reason, so a client that sent a
    20 MB frame saw its connection drop with nothing to act on. The socket's own error message
    (``error(code, message)``, each socket has its form) goes out first, and the close frame
    carries a short reason.

    No per-message deflate, which every browser asks for: a closed socket lingers in reference
    cycles inside aiohttp until a full garbage collection (hours apart on the hub's heap),
    holding its zlib state (about 0.25 MB). 2,000 abandoned voice streams had raised the hub's
    memory by 430 MB; the staff and kiosk feeds rose 34 MB an hour in a soak. Their messages
    are small JSON and PCM, which gain little from it.
    """

    def __init__(
        self, *, max_msg_size: int, error: Callable[[str, str], dict[str, Any]], **kwargs: Any
    ) -> None:
        super().__init__(max_msg_size=max_msg_size, compress=False, **kwargs)
        self._limit = max_msg_size
        self._error = error

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            text = (f"a message on this socket may hold at most {self._limit:,} bytes; "
                    "send smaller ones")
            with contextlib.suppress(ConnectionResetError):
                await self.send_json(self._error("too_big", text))
            message = message or b"message too big"
        return await super().close(code=code, message=message, drain=drain)


def close_on_shutdown(app: web.Application, key: web.AppKey[set[web.WebSocketResponse]]) -> None:
    """Keep the open sockets of one kind in ``app[key]`` and close them when the hub stops.

    Why: aiohttp's shutdown waits for every open handler, so a socket whose client said
    nothing held Ctrl-C for the keep-alive timeout (a silent voice stream: 13 s instead of 1).
    """
    app[key] = set()

    async def close_all(app: web.Application) -> None:
        for ws in list(app[key]):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the hub is stopping")

    app.on_shutdown.append(close_all)


async def prepare_websocket(request: web.Request, ws: web.WebSocketResponse) -> None:
    """Open ``ws``, or a 400 a person can act on for a request that is not a WebSocket
    handshake (aiohttp's own answer is "No WebSocket UPGRADE hdr: None" as plain text)."""
    if not ws.can_prepare(request).ok:
        raise InvalidInput(
            f"{request.path} is a WebSocket: open it with a WebSocket client (a GET with "
            "'Connection: Upgrade' and 'Upgrade: websocket'), not a plain request",
            code="not_websocket",
        )
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        # A browser names the page that opens a socket. A page of another site, open on a
        # staff tablet, could otherwise send wrong staff tokens from it until the tablet was
        # locked out, or hold the kiosk's voice places; programs send no Origin.
        raise Forbidden(f"{request.path} takes WebSockets from the hub's own pages, not from "
                        f"{origin[:100]!r}", code="foreign_origin")
    await ws.prepare(request)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} must be an integer") from None
    if not low <= value <= high:
        raise InvalidInput(f"query parameter {name!r} must be between {low} and {high}")
    return value
