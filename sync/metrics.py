"""Prometheus metrics of a sync endpoint (the hub's agent or the shop service).

Both ends register on the registry their host gives them, so a hub exposes its sync figures on
its own ``/metrics`` and tests can run several endpoints in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SyncMetrics:
    """Counters every sync endpoint keeps; ``side`` is ``hub`` or ``shop``."""

    def __init__(self, registry: CollectorRegistry, side: str) -> None:
        name = f"{side}_sync"
        self.connects = Counter(f"{name}_connect_attempts", "Broker connection attempts.",
                                ["outcome"], registry=registry)
        self.connected = Gauge(f"{name}_connected", "1 while connected to the broker.",
                               registry=registry)
        self.dead_letters = Counter(f"{name}_dead_letters",
                                    "Incoming messages set aside as dead letters.", ["reason"],
                                    registry=registry)
        self.sent = Counter(f"{name}_messages_sent", "Messages published.", ["kind"],
                            registry=registry)
        self.received = Counter(f"{name}_messages_received", "Valid messages received.",
                                ["type"], registry=registry)
        self.duplicates = Counter(f"{name}_duplicates",
                                  "Messages received again and ignored (applied before).",
                                  registry=registry)
        self.replays = Counter(f"{name}_replays",
                               "Times events were asked for or sent again.",
                               registry=registry)
        self.drift = Counter(f"{name}_drift",
                             "Differences found between the shop's view and a store's own "
                             "numbers (stock, rewound or lost history, reused seq).",
                             registry=registry)
