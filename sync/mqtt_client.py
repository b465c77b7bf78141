"""A paho-mqtt 2 client driven from the asyncio loop.

Why this shape: paho keeps its session only in memory, its own reconnect logic has known bugs with
a full in-flight window, and publishing from several threads can deadlock. So each connection
attempt gets a fresh paho client (no stale in-flight state: the outbox, not paho, is the source of
truth), its socket is driven by the event loop (``add_reader``/``add_writer`` call
``loop_read``/``loop_write``; nothing else touches the client), and reconnects follow our own
capped, jittered backoff on the injected sleep. Only paho's blocking ``connect`` (DNS, TCP, TLS
handshake) runs on a worker thread; the socket callbacks it fires are handed to the loop.

QoS 1 publishes are bounded by a window (the configured maximum, lowered to the broker's Receive
Maximum on MQTT 5), so paho never queues beyond what the broker accepts and a replay after
reconnect stays inside the broker's limit.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from sync.backoff import Backoff

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
MISC_INTERVAL_S = 1.0  # paho's keepalive bookkeeping runs on its own monotonic clock
T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """``await awaitable``, or ``TimeoutError`` after ``timeout`` seconds.

    Why not ``asyncio.wait_for``: on Python 3.11, when the awaited future completes in the same
    loop step as the waiting task is cancelled, it returns the result and the cancellation is
    lost. A stop() that cancelled the connection task while a reconnect's CONNACK arrived then
    waited forever for that task (the hub or shop never finished stopping after broker restarts).
    """
    async with asyncio.timeout(timeout):
        return await awaitable


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """TLS to a broker whose certificate ``ca_file`` signed: the certificate and host name are
    verified, TLS 1.2 at least. Raises OSError (no such file) or ssl.SSLError (not a PEM CA)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach the broker (built from the hub's or the shop's config)."""

    host: str
    port: int
    client_id: str
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    max_inflight: int = 100
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: The largest packet the broker may deliver (MQTT 5's Maximum Packet Size; larger ones it
    #: drops): without it a 250 MiB command was read whole, the hub at 1 GB, before being
    #: refused as too large. None: no limit asked for.
    max_packet_size: int | None = None


@dataclass(frozen=True)
class Outgoing:
    """A message to publish (always QoS 1)."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True)
class Incoming:
    """A message received."""

    topic: str
    payload: bytes
    retain: bool


class SessionClosed(Exception):
    """The connection this session stood for is gone; work restarts on the next session."""


class ConnectFailed(Exception):
    """A connection attempt failed (refused, timed out, TLS or credentials)."""


class Session:
    """One live connection to the broker. Created only by :class:`MqttClient`."""

    def __init__(self, client: paho.Client, loop: asyncio.AbstractEventLoop,
                 window: int, on_message: Callable[[Incoming], None], v5: bool) -> None:
        self._client = client
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._on_message = on_message
        self._v5 = v5
        self.window = window
        self.closed = asyncio.Event()
        self.connack: asyncio.Future[int] = loop.create_future()
        self.connack.add_done_callback(_retrieve)  # a failed attempt may never await it
        self.refused = 0  # PUBACKs with a failure reason code (MQTT 5), e.g. not authorised
        self._fd: int | None = None
        self._writing = False
        self._inflight = 0
        self._room = asyncio.Event()
        self._confirm: dict[int, asyncio.Future[int]] = {}
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self._misc: asyncio.Task[None] | None = None
        client.on_socket_open = lambda _c, _u, sock: self._in_loop(self._open, sock)
        client.on_socket_close = lambda _c, _u, _s: self._in_loop(self._unregister)
        client.on_socket_register_write = lambda _c, _u, _s: self._in_loop(self._want_write)
        client.on_socket_unregister_write = lambda _c, _u, _s: self._in_loop(self._no_write)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_subscribe = self._subscribed
        client.on_message = self._message

    # --- publishing and subscribing (loop thread) ----------------------------------------------

    async def send(self, message: Outgoing) -> int:
        """Publish at QoS 1 once the window has room; returns the packet id."""
        while self._inflight >= self.window and not self.closed.is_set():
            self._room.clear()
            await self._room.wait()
        if self.closed.is_set():
            raise SessionClosed("connection lost")
        info = self._client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise SessionClosed(f"publish failed: {paho.error_string(info.rc)}")
        self._inflight += 1
        return info.mid

    async def send_confirmed(self, message: Outgoing, timeout: float = 10.0) -> int:
        """Publish and wait for the broker's PUBACK; returns its reason code (0: accepted)."""
        mid = await self.send(message)
        future: asyncio.Future[int] = self._loop.create_future()
        self._confirm[mid] = future
        try:
            return await within(future, timeout)
        finally:
            self._confirm.pop(mid, None)

    async def subscribe(self, filters: list[str], timeout: float = 10.0) -> list[int]:
        """Subscribe at QoS 1 and wait for the SUBACK; returns one reason code per filter."""
        if self._v5:
            topics: list[Any] = [(f, SubscribeOptions(qos=1)) for f in filters]
        else:
            topics = [(f, 1) for f in filters]
        rc, mid = self._client.subscribe(topics)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise SessionClosed(f"subscribe failed: {paho.error_string(rc)}")
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._subacks[mid] = future
        try:
            return await within(future, timeout)
        finally:
            self._subacks.pop(mid, None)

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Send DISCONNECT (the broker then drops the will) and wait for the socket to close."""
        if not self.closed.is_set():
            self._client.disconnect()
            try:
                await within(self.closed.wait(), timeout)
            except TimeoutError:
                log.warning("broker did not close the connection after DISCONNECT")
        self.close()

    def close(self) -> None:
        """Forget the socket and fail everything waiting on this session."""
        self._unregister()
        if self._misc is not None:
            self._misc.cancel()
        self._mark_closed()
        sock = self._client.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # --- socket glue ----------------------------------------------------------------------------

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)
        # else: paho's client was collected after the loop it reported to had closed (its
        # ``__del__`` lets go of the socket): nothing is left to tell, and raising there only
        # printed a traceback as an "exception ignored"

    def _open(self, sock: Any) -> None:
        if self.closed.is_set():
            return
        self._fd = sock.fileno()
        self._loop.add_reader(self._fd, self._readable)
        self._misc = self._loop.create_task(self._misc_loop(), name="mqtt-misc")

    def _readable(self) -> None:
        rc = self._client.loop_read()
        sock = self._client.socket()
        # A TLS record may carry several packets; the kernel will not say "readable" again.
        while rc == paho.MQTT_ERR_SUCCESS and isinstance(sock, ssl.SSLSocket) and sock.pending():
            rc = self._client.loop_read()
        if rc != paho.MQTT_ERR_SUCCESS:
            self._mark_closed()

    def _want_write(self) -> None:
        if self._fd is not None and not self._writing and not self.closed.is_set():
            self._writing = True
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        if self._client.loop_write() != paho.MQTT_ERR_SUCCESS:
            self._mark_closed()

    def _no_write(self) -> None:
        if self._fd is not None and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _unregister(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            if self._writing:
                self._loop.remove_writer(self._fd)
            self._writing = False
            self._fd = None

    async def _misc_loop(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(MISC_INTERVAL_S)
            if self._client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                self._mark_closed()

    def _mark_closed(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._room.set()
        if not self.connack.done():
            self.connack.set_exception(ConnectFailed("connection closed before CONNACK"))
        for future in [*self._confirm.values(), *self._subacks.values()]:
            if not future.done():
                future.set_exception(SessionClosed("connection lost"))

    # --- paho callbacks (called from loop_read/loop_write, so on the loop thread) --------------

    def _connected(self, _c: Any, _u: Any, _flags: Any, reason: Any, properties: Any) -> None:
        if self.connack.done():
            return
        if reason.is_failure:
            self.connack.set_exception(ConnectFailed(f"broker refused the connection: {reason}"))
            return
        receive_maximum = getattr(properties, "ReceiveMaximum", None) if properties else None
        if receive_maximum:
            self.window = min(self.window, int(receive_maximum))
        self.connack.set_result(int(reason.value))

    def _disconnected(self, *_args: Any) -> None:
        self._mark_closed()

    def _published(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self._inflight = max(0, self._inflight - 1)
        self._room.set()
        code = int(getattr(reason, "value", 0))
        if code >= 0x80:
            self.refused += 1
            log.error("broker refused publish %s: %s", mid, reason)
        future = self._confirm.get(mid)
        if future is not None and not future.done():
            future.set_result(code)

    def _subscribed(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        future = self._subacks.get(mid)
        if future is not None and not future.done():
            future.set_result([int(r.value) for r in reasons])

    def _message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        self._on_message(Incoming(message.topic, bytes(message.payload), bool(message.retain)))


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


SessionHandler = Callable[[Session], Awaitable[None]]


class MqttClient:
    """Keeps one session alive: connect, run ``handler`` for the session's life, back off, again."""

    def __init__(self, settings: BrokerSettings, *, on_message: Callable[[Incoming], None],
                 sleep: Sleep, will: Callable[[], Outgoing] | None = None,
                 backoff: Backoff | None = None,
                 on_attempt: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self._on_message = on_message
        self._sleep = sleep
        self._will = will
        self._backoff = backoff or Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._on_attempt = on_attempt or (lambda _outcome: None)
        self._tls: ssl.SSLContext | None = None
        self.session: Session | None = None

    @property
    def connected(self) -> bool:
        return self.session is not None and not self.session.closed.is_set()

    async def run(self, handler: SessionHandler) -> None:
        """Run forever (until cancelled): each live session is handed to ``handler``."""
        while True:
            try:
                session = await self._connect()
            except ConnectFailed as exc:
                delay = self._backoff.next()
                self._on_attempt("failed")
                log.warning("MQTT %s:%s: %s; retrying in %.1f s", self.settings.host,
                            self.settings.port, exc, delay)
                await self._sleep(delay)
                continue
            self._backoff.reset()
            self._on_attempt("connected")
            self.session = session
            try:
                await self._serve(session, handler)
            finally:
                session.close()
                self.session = None
            await self._sleep(self._backoff.next())

    async def _serve(self, session: Session, handler: SessionHandler) -> None:
        work = asyncio.create_task(handler(session), name="mqtt-session")
        closed = asyncio.create_task(session.closed.wait())
        try:
            await asyncio.wait({work, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, closed):
                task.cancel()
            results = await asyncio.gather(work, closed, return_exceptions=True)
        error = results[0]
        if isinstance(error, Exception) and not isinstance(error, SessionClosed):
            log.error("MQTT session work failed; reconnecting", exc_info=error)
        log.info("MQTT connection to %s:%s closed", self.settings.host, self.settings.port)

    async def _connect(self) -> Session:
        s = self.settings
        v5 = s.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else True,
        )
        client.connect_timeout = s.connect_timeout_s
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.ca_file is not None:
            client.tls_set_context(self._tls_context())
        if self._will is not None:
            will = self._will()
            client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        loop = asyncio.get_running_loop()
        session = Session(client, loop, s.max_inflight, self._on_message, v5)
        kwargs: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.ReceiveMaximum = min(s.max_inflight, 65535)
            if s.max_packet_size is not None:
                props.MaximumPacketSize = s.max_packet_size
            kwargs = {"clean_start": True, "properties": props}
        try:
            await loop.run_in_executor(None, lambda: client.connect(
                s.host, s.port, s.keepalive_s, **kwargs))
            await within(asyncio.shield(session.connack), s.connect_timeout_s)
        except (OSError, ssl.SSLError, TimeoutError, ConnectFailed, ValueError) as exc:
            session.close()
            raise ConnectFailed(str(exc) or type(exc).__name__) from None
        except BaseException:
            session.close()
            raise
        return session

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            assert self.settings.ca_file is not None
            self._tls = tls_context(self.settings.ca_file)
        return self._tls
