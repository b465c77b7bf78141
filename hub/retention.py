"""Deleting what the hub no longer needs: presence history and reminders (personal data), old
beacon alerts, applied command ids and dead letters, each after its configured age."""

from __future__ import annotations

import logging

from hub.clock import SETTLE_AFTER_START_S, Clock
from hub.config.retention import RetentionConfig
from hub.db import Database
from hub.periodic import PeriodicJob

log = logging.getLogger(__name__)
DAY_S = 86400.0

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
        """Delete old rows in one transaction; returns how many went from each table."""
        deleted = await self.db.write(self.prune, self.clock.now())
        if any(deleted.values()):
            log.info("retention deleted %s", ", ".join(f"{n} {t}" for t, n in deleted.items()))
        return deleted

    def prune(self, now: float) -> dict[str, int]:
        deleted = {}
        with self.db.transaction() as tx:
            for table, (column, field, also) in RULES.items():
                before = now - getattr(self.config, field) * DAY_S
                cursor = tx.execute(f"DELETE FROM {table} WHERE {column} < ? AND {also}",
                                    (before,))
                deleted[table] = cursor.rowcount
        return deleted
