"""Scanner nodes relaying what they hear over the store's local MQTT broker (stores with several
zones). A node publishes JSON Lines of trace-format advertisements on
``<prefix>/v1/<store>/scanners/<node>/adv``; the hub subscribes to every node of its store.
A message over ``MAX_PAYLOAD_BYTES`` is refused whole (a node batches a fraction of a second),
and an advertisement stamped more than ``MAX_SKEW_S`` away from the hub's clock is refused: a
node without a synchronised clock would otherwise make its beacons look missing or its members
leave and arrive again.

paho-mqtt runs its network loop in its own thread; messages are handed to the event loop, which
alone touches the sink. A malformed line is counted and logged once per node, never fatal: one
misconfigured node must not take the others down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from beacons.errors import TraceError
from beacons.fleet import relay_topic
from beacons.sources.base import AdvertisementSink
from beacons.trace import decode_line

_log = logging.getLogger(__name__)

#: Largest relay message read: a node publishes every 200 ms, a busy minute's worth is far less.
MAX_PAYLOAD_BYTES = 256 * 1024
#: How far a node's advertisement times may be from the hub's clock, in seconds.
MAX_SKEW_S = 120.0


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
        client_factory: Callable[..., Any] = mqtt.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = f"mqtt:{host}:{port}"
        self.host, self.port = host, port
        self.topic = relay_topic(topic_prefix, store, "+")
        self._client_id = client_id or f"hub-{store}-scanners"
        self._factory = client_factory
        self._clock = clock
        self.received = 0
        self.rejected: dict[str, int] = {}
        self.connected = asyncio.Event()

    async def run(self, sink: AdvertisementSink) -> None:
        """Receive until cancelled; reconnects are paho's (it retries with backoff)."""
        loop = asyncio.get_running_loop()
        client = self._factory(mqtt.CallbackAPIVersion.VERSION2, client_id=self._client_id)

        def on_connect(client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if not reason.is_failure:
                client.subscribe(self.topic, qos=0)
                loop.call_soon_threadsafe(self.connected.set)

        def on_message(_client: Any, _userdata: Any, message: Any) -> None:
            loop.call_soon_threadsafe(self._deliver, message.topic, bytes(message.payload), sink)

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        try:
            await asyncio.Event().wait()
        finally:
            client.disconnect()
            client.loop_stop()

    def _deliver(self, topic: str, payload: bytes, sink: AdvertisementSink) -> None:
        node = topic.split("/")[-2]
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._reject(
                node,
                TraceError(
                    f"message of {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}", source=topic
                ),
            )
            return
        now = self._clock()
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
        count = self.rejected[node] = self.rejected.get(node, 0) + 1
        if count == 1:
            _log.warning("relay node %s sent a bad advertisement: %s", node, exc)
