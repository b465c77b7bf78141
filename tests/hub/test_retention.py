"""Retention: old presence history, reminders, alerts, applied command ids and dead letters go
after their configured ages; recent rows and business records stay."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from hub.clock import ManualClock
from hub.config.retention import RetentionConfig
from hub.periodic import PeriodicJob
from hub.retention import DAY_S, Retention
from hub.services import Services


def seed(services: Services, at: float) -> None:
    """One row in every pruned table, stamped ``at``."""
    with services.db.transaction() as tx:
        tx.execute("INSERT INTO presence_events (t, member_id, event, zone) "
                   "VALUES (?, 'm-1', 'arrived', 'door')", (at,))
        tx.execute("INSERT INTO reminders (order_id, member_id, visit_at, kind, status, "
                   "created_at) VALUES ('o-1', 'm-1', ?, 'member', 'sent', ?)", (at, at))
        tx.execute("INSERT INTO beacon_alerts (beacon_id, kind, active, detail, seq, t) "
                   "VALUES ('b-1', 'missing', 1, '{}', 1, ?)", (at,))
        tx.execute("INSERT INTO sync_inbox (command_id, type, status, result_seq, received_at) "
                   "VALUES (?, 'order.place', 'applied', 1, ?)", (f"c-{at}", at))
        tx.execute("INSERT INTO sync_dead_letters (topic, reason, message, size, payload, "
                   "received_at) VALUES ('t', 'malformed_json', 'm', 1, x'00', ?)", (at,))
        tx.execute("INSERT INTO early_cancels (order_id, reason, received_at) VALUES (?, 'r', ?)",
                   (f"o-{at}", at))


def counts(services: Services) -> dict[str, int]:
    conn = services.db.conn().conn
    return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("presence_events", "reminders", "beacon_alerts", "sync_inbox",
                          "sync_dead_letters", "early_cancels")}


def test_each_table_keeps_rows_younger_than_its_age(services: Services,
                                                    clock: ManualClock) -> None:
    config = RetentionConfig(presence_days=1, reminders_days=2, beacon_alerts_days=3,
                             sync_inbox_days=7, dead_letters_days=5)
    now = clock.now()
    for days in (0.5, 1.5, 2.5, 3.5, 5.5, 7.5):
        seed(services, now - days * DAY_S)
    acknowledge(services, 1)  # the shop has every command's result
    deleted = Retention(config, services.db, clock).prune(now)
    assert deleted == {"presence_events": 5, "reminders": 4, "beacon_alerts": 3,
                       "sync_inbox": 1, "sync_dead_letters": 2, "early_cancels": 1}
    assert counts(services) == {"presence_events": 1, "reminders": 2, "beacon_alerts": 3,
                                "sync_inbox": 5, "sync_dead_letters": 4, "early_cancels": 5}


def acknowledge(services: Services, seq: int) -> None:
    with services.db.transaction() as tx:
        tx.execute("UPDATE sync_state SET value = ? WHERE key = 'acked_seq'", (seq,))


def test_a_command_id_stays_until_the_shop_has_its_result(services: Services,
                                                          clock: ManualClock) -> None:
    """Why: command ids went after 30 days whether or not the shop had the result; after a
    longer outage the shop sent the command again and the hub carried it out twice (a
    cancel, a member's opt-in)."""
    config = RetentionConfig(sync_inbox_days=7)
    seed(services, clock.now() - 8 * DAY_S)  # its result is seq 1
    assert Retention(config, services.db, clock).prune(clock.now())["sync_inbox"] == 0
    acknowledge(services, 1)
    assert Retention(config, services.db, clock).prune(clock.now())["sync_inbox"] == 1


async def test_the_job_prunes_as_the_clock_moves(services: Services, clock: ManualClock) -> None:
    services.bus.bind(asyncio.get_running_loop())
    job = Retention(RetentionConfig(presence_days=1, check_every_s=3600), services.db, clock)
    seed(services, clock.now())
    await job.start()
    try:
        await asyncio.sleep(0.05)
        assert counts(services)["presence_events"] == 1  # a fresh row stays
        for _ in range(25):  # a day and an hour later the hourly run has removed it
            clock.advance(3600)
            await asyncio.sleep(0.01)
        for _ in range(200):
            if counts(services)["presence_events"] == 0:
                break
            await asyncio.sleep(0.01)
        assert counts(services)["presence_events"] == 0
        assert counts(services)["reminders"] == 1  # 90 days by default
    finally:
        await job.stop()


async def test_a_job_that_keeps_failing_is_logged_once_with_a_count(caplog) -> None:  # noqa: ANN001
    """Why: with the disk full, every periodic job logged its whole traceback at every run (each
    minute, each job) for as long as the disk stayed full."""
    caplog.set_level(logging.INFO, logger="hub.periodic")
    clock = ManualClock()
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)
        if len(runs) <= 10:
            raise sqlite3.OperationalError("database or disk is full")

    periodic = PeriodicJob("order-expiry", 60.0, clock, job)
    await periodic.start()
    try:
        for _ in range(12):
            await asyncio.sleep(0)
            clock.advance(60.0)
            await asyncio.sleep(0)
    finally:
        await periodic.stop()
    assert len(runs) >= 11
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert sum(r.exc_info is not None for r in errors) == 1
    assert len(errors) <= 4, [r.getMessage() for r in errors]
    recovered = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("order-expiry works again after 10 failures") for m in recovered)


async def test_a_hub_started_with_its_clock_ahead_deletes_nothing_before_ntp(
        services: Services, clock: ManualClock) -> None:
    """Why: started with the clock a year ahead, retention's first run (at once) deleted the
    presence history, the reminders the rate limits read and the applied command ids."""
    services.bus.bind(asyncio.get_running_loop())
    seed(services, clock.now())
    clock.step(365 * 86400)
    job = Retention(RetentionConfig(check_every_s=3600), services.db, clock)
    await job.start()
    try:
        for _ in range(10):
            clock.advance(60)
            await asyncio.sleep(0.01)
        clock.step(-365 * 86400)  # NTP
        for _ in range(10):
            clock.advance(60)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert counts(services)["presence_events"] == 1
        assert counts(services)["reminders"] == 1
    finally:
        await job.stop()
