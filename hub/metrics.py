"""Prometheus metrics of one hub. Each hub has its own registry so tests can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The hub's counters and histograms; features add their own to ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "hub_http_requests", "HTTP requests served.", ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "hub_http_request_seconds", "Time to answer an HTTP request.", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.ledger_writes = Counter(
            "hub_ledger_writes", "Stock ledger rows committed.", ["reason"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
