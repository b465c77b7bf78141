"""Scanner nodes relaying what they hear over the store's local MQTT broker (stores with several
zones). A node publishes JSON Lines of trace-format advertisements on
``<prefix>/v1/<store>/scanners/<node>/adv``; the hub subscribes to every node of its store.
A message over ``MAX_PAYLOAD_BYTES`` is refused whole (a node batches a fraction of a second),
and an advertisement stamped more than ``MAX_SKEW_S`` away from the hub's clock is refused: a
node without a synchronised clock would otherwise make its beacons look missing or its members
leave and arrive again.

A store network need not take anonymous clients: the hub logs in with a user name and password
and, given the CA that signed the broker's certificate, speaks TLS and verifies the broker. A
broker that refuses the login or cannot be reached securely is retried (it may be restarting, or
its password being changed) while ``error`` says why, so store health blames the link and not
the beacons; the password itself is never logged.

Nodes' batches interleave out of time order on the broker, and presence decides on the order of
sightings, so they go through a ``ReorderBuffer`` (``reorder_s``, 1 s by default): held that
long past their time and handed on in time order, so the hub decides what a replay of the
merged, time-sorted recording decides (beacons/sources/reorder.py says why and what comes late).

paho-mqtt runs its network loop in its own thread; messages are handed to the event loop, which
alone touches the sink and the buffer. A malformed line is counted and logged once per node,
never fatal: one misconfigured node must not take the others down."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import paho.mqtt.client as mqtt

from beacons.advertisement import Advertisement
from beacons.errors import RelayBrokerError, TraceError
from beacons.fleet import relay_topic
from beacons.sources.base import AdvertisementSink
from beacons.sources.reorder import HOLD_S, ReorderBuffer
from beacons.trace import decode_line

_log = logging.getLogger(__name__)

#: Largest relay message read: a node publishes every 200 ms, a busy minute's worth is far less.
MAX_PAYLOAD_BYTES = 256 * 1024
#: How far a node's advertisement times may be from the hub's clock, in seconds.
MAX_SKEW_S = 120.0
#: First and longest wait before connecting again to a broker that could not be reached.
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0
#: Nodes counted by name in ``rejected`` (a metric label each) when the store declares none;
#: past that, and for nodes the store does not declare, one shared label: anyone who can
#: publish on the local broker could otherwise grow the metrics and the log without end.
MAX_NODE_LABELS = 64
OTHER_NODES = "(undeclared)"
#: How often held advertisements are looked at when no message comes to hand them on.
RELEASE_EVERY_S = 0.1


class MqttRelaySource:
    """Subscribes to the relay nodes' topics and feeds their advertisements to the sink."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        store: str,
        topic_prefix: str = "retail",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        client_factory: Callable[..., Any] = mqtt.Client,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        nodes: Collection[str] | None = None,
        reorder_s: float = HOLD_S,
    ) -> None:
        """``username``/``password``: the hub's login (None: anonymous); ``tls``: a context
        that verifies the broker (None: plain TCP); ``nodes``: the scanner nodes the store
        declares (its fleet file), the only ones heard (None: any node); ``reorder_s``: how
        long past its time an advertisement is held to hand them on in time order (0: as they
        arrive)."""
        self.name = f"mqtt:{host}:{port}"
        self.host, self.port = host, port
        self.topic = relay_topic(topic_prefix, store, "+")
        self._client_id = client_id or f"hub-{store}-scanners"
        self._login = (username, password)
        self._tls = tls
        self._factory = client_factory
        self._clock = clock
        self._sleep = sleep
        self._nodes = None if nodes is None else frozenset(nodes)
        self.reorder_s = reorder_s
        self._buffer: ReorderBuffer | None = None
        self.received = 0
        self.rejected: dict[str, int] = {}
        #: Lines applied late, by node: they came after newer ones had been handed on.
        self.late: dict[str, int] = {}
        self.connected = asyncio.Event()
        #: Why the broker cannot be used now (refused login, TLS, unreachable); None once it is.
        self.error: RelayBrokerError | None = None

    async def run(self, sink: AdvertisementSink) -> None:
        """Receive until cancelled. The first connection is retried here, with its reason in
        ``error``; once connected, reconnects are paho's (it retries with backoff)."""
        loop = asyncio.get_running_loop()
        client = self._client(loop, self._receiver(sink))
        try:
            await self._connect(loop, client)
            client.loop_start()
            if self._buffer is None:
                await asyncio.Event().wait()
            while True:  # hand on what is due when no message comes to do it
                await self._sleep(RELEASE_EVERY_S)
                self.release()
        finally:
            client.disconnect()
            client.loop_stop()

    def _receiver(self, sink: AdvertisementSink) -> Callable[[str, bytes], None]:
        """What a message's topic and payload are handed to on the event loop: its lines go to
        ``sink``, or, with ``reorder_s``, into a new reorder buffer that then hands on what is
        due."""
        if not self.reorder_s:
            return lambda topic, payload: self._deliver(topic, payload, sink)
        buffer = self._buffer = ReorderBuffer(self.reorder_s, sink, self._applied_late)

        def receive(topic: str, payload: bytes) -> None:
            self._deliver(topic, payload, buffer.push)
            self.release()

        return receive

    def _applied_late(self, adv: Advertisement) -> None:
        """Count a line the buffer handed on late; the first from each node is logged."""
        if self._count(self.late, adv.scanner) == 1:
            _log.warning(
                "relay node %s sent an advertisement %.1f s old after newer ones were applied "
                "(the hold is %.1f s); applied late. Its clock may be behind or its link slow: "
                "check NTP on the node, or raise beacons.relay_reorder_s",
                adv.scanner, self._clock() - adv.t, self.reorder_s,
            )

    def release(self) -> float:
        """Hand on the held advertisements that are due; returns the time before which every
        advertisement received has been handed on. Departures are decided up to that time (the
        hub's timer): before it, no held sighting can still show that its member was here."""
        now = self._clock()
        if self._buffer is None:
            return now
        self._buffer.release(now)
        return now - self._buffer.hold_s

    def _client(
        self, loop: asyncio.AbstractEventLoop, receive: Callable[[str, bytes], None]
    ) -> Any:
        """A paho client with the login, TLS and callbacks (which run on paho's thread)."""
        client = self._factory(mqtt.CallbackAPIVersion.VERSION2, client_id=self._client_id)
        username, password = self._login
        if username is not None:
            client.username_pw_set(username, password)
        if self._tls is not None:
            client.tls_set_context(self._tls)

        def on_connect(client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if reason.is_failure:
                login = f"as user {username!r}" if username is not None else "anonymously"
                problem = (
                    f"refused the hub logging in {login} ({reason}); check the relay user name "
                    "and password file against the broker's users"
                )
                loop.call_soon_threadsafe(self._failed, problem)
                return
            client.subscribe(self.topic, qos=0)

        def on_subscribe(_client: Any, _userdata: Any, _mid: Any, reasons: Any, _p: Any) -> None:
            # Connected means hearing: set at the login, nodes' first advertisements could be
            # published before the broker had the subscription, and were never heard.
            if any(reason.is_failure for reason in reasons):
                problem = (f"refused the hub's subscription to {self.topic} ({reasons[0]}); "
                           "check that the broker's ACL lets the relay user read it")
                loop.call_soon_threadsafe(self._failed, problem)
                return
            loop.call_soon_threadsafe(self._connected)

        def on_disconnect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:  # not the hub's own goodbye
                loop.call_soon_threadsafe(self._dropped)

        def on_message(_client: Any, _userdata: Any, message: Any) -> None:
            loop.call_soon_threadsafe(receive, message.topic, bytes(message.payload))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    async def _connect(self, loop: asyncio.AbstractEventLoop, client: Any) -> None:
        """Open the connection (DNS, TCP, TLS handshake on a worker thread), retrying with a
        doubling wait while it fails; why it fails goes to ``error`` and, once, to the log."""
        wait = RETRY_FIRST_S
        while True:
            try:
                await loop.run_in_executor(None, client.connect, self.host, self.port, 30)
                return
            # a plain listener's ways of ending a TLS handshake (the last: Debian's Python 3.11.2)
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
                hint = (
                    "; if it listens without TLS, use its TLS port or unset the relay CA file "
                    "(beacons.relay_tls_ca_file)"
                    if self._tls is not None
                    else ""
                )
                self._failed(f"closed the connection ({exc.strerror or exc}){hint}")
            except ssl.SSLError as exc:  # before OSError: it is one
                why = getattr(exc, "verify_message", None) or exc.reason or exc
                self._failed(
                    f"failed TLS ({why}); check that the relay CA file "
                    f"(beacons.relay_tls_ca_file) signed the broker's certificate and that the "
                    f"certificate names {self.host}"
                )
            except OSError as exc:
                self._failed(f"cannot be reached ({exc.strerror or exc})")
            await self._sleep(wait)
            wait = min(wait * 2, RETRY_MAX_S)

    def _failed(self, problem: str) -> None:
        """Record why the broker cannot be used; a new reason is logged, a repeat is not."""
        error = RelayBrokerError(f"the relay nodes' broker {self.host}:{self.port} {problem}")
        if self.error is None or str(self.error) != str(error):
            _log.error("%s (trying again)", error)
        self.error = error
        self.connected.clear()

    def _dropped(self) -> None:
        """The broker closed the connection. After a refused login ``error`` already says why;
        closed before any answer, the likely cause is a TLS listener spoken to in plain TCP."""
        if self.error is not None:
            return
        if self.connected.is_set():
            self._failed("closed the connection")
        else:
            self._failed(
                "closed the connection without answering the login; if it listens with TLS, "
                "set the relay CA file (beacons.relay_tls_ca_file)"
            )

    def _connected(self) -> None:
        if self.error is not None:  # said when it went wrong, so said when it is mended
            _log.info("the relay nodes' broker %s:%s is connected again", self.host, self.port)
        self.error = None
        self.connected.set()

    def _deliver(self, topic: str, payload: bytes, sink: AdvertisementSink) -> None:
        node = topic.split("/")[-2]
        if self._nodes is not None and node not in self._nodes:
            self._reject(
                node,
                TraceError(
                    f"node {node!r} is not one of the store's scanners in its fleet file "
                    f"({', '.join(sorted(self._nodes)) or 'none'})",
                    source=topic,
                ),
            )
            return
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._reject(
                node,
                TraceError(
                    f"message of {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}", source=topic
                ),
            )
            return
        now = self._clock()
        payload = payload.removeprefix(b"\xef\xbb\xbf")  # as trace files, a BOM is skipped
        for number, line in enumerate(payload.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                adv = decode_line(line, source=topic, number=number)
                if adv.scanner != node:
                    raise TraceError(
                        f"advertisement names scanner {adv.scanner!r} but came from node {node!r}",
                        source=topic,
                        line=number,
                    )
                if abs(adv.t - now) > MAX_SKEW_S:
                    raise TraceError(
                        f"advertisement time is {adv.t - now:+.0f} s from the hub's clock; "
                        "synchronise the node's clock (NTP)",
                        source=topic,
                        line=number,
                    )
            except TraceError as exc:
                self._reject(node, exc)
                continue
            self.received += 1
            sink(adv)

    def _reject(self, node: str, exc: TraceError) -> None:
        """Count a refused line or message; the first from each node is logged."""
        if self._count(self.rejected, node) == 1:
            _log.warning("relay node %s sent a bad advertisement: %s", node, exc)

    def _count(self, counts: dict[str, int], node: str) -> int:
        """Add one to ``node``'s count in ``counts`` (nodes the store does not declare, and
        any past ``MAX_NODE_LABELS`` names, under ``OTHER_NODES``); the count now."""
        declared = node in self._nodes if self._nodes is not None else (
            node in counts or len(counts) < MAX_NODE_LABELS
        )
        label = node if declared else OTHER_NODES
        count = counts[label] = counts.get(label, 0) + 1
        return count
