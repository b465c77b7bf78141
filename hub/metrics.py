"""Prometheus metrics of one hub. Each hub has its own registry so tests can run several.

Counters are kept as things happen; ``StoreFigures`` reads the store's state from the database at
scrape time (the sync backlog, orders waiting, reminders of the last day), so the figures are
right even after a restart. The list with meanings is in docs/metrics.md."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.clock import DAY_S
from hub.db import Database
from hub.outbox import backlog

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
        self.http_malformed = Counter(
            "hub_http_malformed_requests", "Requests the web server could not parse (answered "
            "400 and not logged).", registry=self.registry,
        )
        self.loop_lag = Histogram(
            "hub_event_loop_lag_seconds", "How late the event loop ran a task that was due "
            "(sampled every 0.25 s): every request and feed of the hub waits that long.",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.ledger_writes = Counter(
            "hub_ledger_writes", "Stock ledger rows committed.", ["reason"], registry=self.registry
        )

    def watch_store(self, db: Database, now: Callable[[], float]) -> None:
        """Add the figures read from the database at each scrape."""
        self.registry.register(StoreFigures(db, now))

    def render(self) -> bytes:
        """The exposition text; reads the database, so call it off the event loop."""
        return generate_latest(self.registry)


class StoreFigures(Collector):
    """Gauges computed from the store's tables when Prometheus scrapes."""

    def __init__(self, db: Database, now: Callable[[], float]) -> None:
        self.db = db
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        conn = self.db.conn().conn
        now = self.now()
        pending, oldest = backlog(conn)
        yield GaugeMetricFamily("hub_sync_outbox_pending",
                                "Events the shop has not acknowledged yet.", value=pending)
        yield GaugeMetricFamily("hub_sync_outbox_oldest_pending_seconds",
                                "Age of the oldest unacknowledged event (0 when none): how "
                                "far behind the shop's view is.",
                                value=max(0.0, now - oldest) if oldest is not None else 0.0)
        orders = GaugeMetricFamily("hub_orders", "Orders by state.", labels=["state"])
        for state, count in conn.execute("SELECT state, count(*) FROM orders GROUP BY state"):
            orders.add_metric([state], count)
        yield orders
        (members,) = conn.execute("SELECT count(*) FROM members WHERE consent = 1").fetchone()
        yield GaugeMetricFamily("hub_members_opted_in",
                                "Members who consent to arrival reminders.", value=members)
        reminders = GaugeMetricFamily("hub_reminders_last_day",
                                      "Reminders and staff alerts of the last 24 hours, sent or "
                                      "held back.", labels=["kind", "status"])
        for kind, status, count in conn.execute(
                "SELECT kind, status, count(*) FROM reminders WHERE created_at >= ? "
                "GROUP BY kind, status", (now - DAY_S,)):
            reminders.add_metric([kind, status], count)
        yield reminders
        arrivals = conn.execute("SELECT count(*) FROM presence_events WHERE event = 'arrived' "
                                "AND t >= ?", (now - DAY_S,)).fetchone()[0]
        yield GaugeMetricFamily("hub_arrivals_last_day", "Member arrivals of the last 24 hours.",
                                value=arrivals)
        (low,) = conn.execute("SELECT count(*) FROM stock WHERE on_hand - reserved <= 0").fetchone()
        yield GaugeMetricFamily("hub_products_out_of_stock",
                                "Products with nothing available.", value=low)
