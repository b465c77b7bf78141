"""Deleting what the hub no longer needs: presence history and reminders (personal data), old
beacon alerts, applied command ids and dead letters, each after its configured age; and, after
more than a year, the stock ledger and finished orders, so a store's SD card does not fill.

What the ledger and orders keep, and why:

* only what the shop has: a ledger row goes once the shop's ack covers its seq, an order once
  no ``order.status`` of it is left in the outbox;
* stock does not derive from the ledger's sum (the ``stock`` table follows each row as it is
  written), so deleting rows moves no level; what went is added up per product in
  ``stock_ledger_pruned``, so that ledger plus that table still equal the stock;
* the ledger goes as a prefix of the sequence (``ledger_prune_point``), so a count found again
  by its ``ref`` still sums every movement after it; each product's newest row stays, which the
  catalogue import reads as "has moved" (no second starting stock);
* a movement's ``ref`` and an order's id answer a repeat only as long as the row is kept: the
  age is over a year, far past any client's retry or the shop's resend, which ends with the
  command's result (its id stays in ``sync_inbox`` until then).

The ledger and orders go in batches of ``BATCH_ROWS``, one transaction each, so the first run on
years of rows never holds the database's writer for long."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from hub.clock import DAY_S, SETTLE_AFTER_START_S, Clock
from hub.config.retention import RetentionConfig
from hub.db import Database
from hub.inventory import ledger_prune_point, prune_ledger
from hub.orders import prune_finished
from hub.periodic import PeriodicJob

log = logging.getLogger(__name__)
#: Ledger rows or orders deleted per transaction (about 0.1 s of the writer on the build machine,
#: bench/retention.py).
BATCH_ROWS = 5000

#: A command's id may go only once the shop has its result: until then the shop sends the
#: command again, and without the id the hub would carry it out twice (a cancel, a member's
#: opt-in) after an outage longer than the retention age.
RESULT_ACKED = ("result_seq <= (SELECT CAST(value AS INTEGER) FROM sync_state "
                "WHERE key = 'acked_seq')")

#: table -> (its time column, the RetentionConfig field giving the age in days, and what else
#: a row must meet to go)
RULES: dict[str, tuple[str, str, str]] = {
    "presence_events": ("t", "presence_days", "1"),
    "reminders": ("created_at", "reminders_days", "1"),
    "beacon_alerts": ("t", "beacon_alerts_days", "1"),
    "sync_inbox": ("received_at", "sync_inbox_days", RESULT_ACKED),
    "sync_dead_letters": ("received_at", "dead_letters_days", "1"),
    "early_cancels": ("received_at", "sync_inbox_days", "1"),  # their orders never came
}


class Retention(PeriodicJob):
    """Prunes every table in ``RULES`` once per ``check_every_s`` of the injected clock, the
    first time a while after the start: a hub started with its clock a year ahead deleted a
    year of presence history and reminders before NTP could set the clock right."""

    def __init__(self, config: RetentionConfig, db: Database, clock: Clock) -> None:
        super().__init__("retention", config.check_every_s, clock, self.run_once,
                         first_after_s=SETTLE_AFTER_START_S)
        self.config = config
        self.db = db

    async def run_once(self) -> dict[str, int]:
        """Delete old rows (``RULES`` in one transaction, then the ledger and finished orders
        batch by batch); returns how many went from each table."""
        now = self.clock.now()
        deleted = await self.db.write(self.prune, now)
        through = await self.db.write(self._ledger_point, now)
        batched: dict[str, Callable[[], int]] = {
            "stock_ledger": partial(self._in_transaction, prune_ledger, through, BATCH_ROWS, now),
            "orders": partial(self._in_transaction, prune_finished,
                              now - self.config.finished_orders_days * DAY_S, BATCH_ROWS),
        }
        for table, batch in batched.items():
            deleted[table] = 0
            while True:
                count = await self.db.write(batch)
                deleted[table] += count
                if count < BATCH_ROWS:
                    break
        if any(deleted.values()):
            log.info("retention deleted %s", ", ".join(f"{n} {t}" for t, n in deleted.items()))
        return deleted

    def _ledger_point(self, now: float) -> int:
        with self.db.transaction() as tx:
            return ledger_prune_point(tx, now - self.config.ledger_days * DAY_S)

    def _in_transaction(self, prune: Callable[..., int], *args: float) -> int:
        with self.db.transaction() as tx:
            return prune(tx, *args)

    def prune(self, now: float) -> dict[str, int]:
        """Delete the rows of every table in ``RULES`` older than its age, in one transaction."""
        deleted = {}
        with self.db.transaction() as tx:
            for table, (column, field, also) in RULES.items():
                before = now - getattr(self.config, field) * DAY_S
                cursor = tx.execute(f"DELETE FROM {table} WHERE {column} < ? AND {also}",
                                    (before,))
                deleted[table] = cursor.rowcount
        return deleted
