"""Retention: old presence history, reminders, alerts, applied command ids and dead letters go
after their configured ages; the stock ledger and finished orders after more than a year, and
only what the shop has; recent rows stay."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub import retention
from hub.clock import ManualClock
from hub.config.retention import RetentionConfig
from hub.inventory import CountIn, MovementIn
from hub.orders import OrderIn
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


# --- the stock ledger and finished orders ------------------------------------------------------

YEAR_AND_MORE_S = 401 * DAY_S  # past the default 400 days


def shop_has_everything(services: Services) -> None:
    """The shop acknowledged every event written so far (as the sync link records an ack)."""
    with services.db.transaction() as tx:
        tx.execute("UPDATE sync_state SET value = (SELECT CAST(value AS INTEGER) FROM store_meta "
                   "WHERE key = 'last_seq') WHERE key = 'acked_seq'")
        tx.execute("DELETE FROM outbox")


def move(services: Services, sku: str, qty: int, reason: str = "sale") -> int:
    movement, _ = services.inventory.record(
        MovementIn(sku=sku, qty=qty, reason=reason))  # type: ignore[arg-type]
    return movement.seq


def adds_up(services: Services) -> bool:
    """Every product's ledger rows plus what retention took out of them equal its stock."""
    rows = services.db.query(
        "SELECT s.sku, s.on_hand, s.reserved, "
        "(SELECT coalesce(sum(qty), 0) FROM stock_ledger l WHERE l.sku = s.sku) "
        "+ coalesce(p.qty, 0) AS q, "
        "(SELECT coalesce(sum(reserved_qty), 0) FROM stock_ledger l WHERE l.sku = s.sku) "
        "+ coalesce(p.reserved_qty, 0) AS r "
        "FROM stock s LEFT JOIN stock_ledger_pruned p USING (sku)")
    return bool(rows) and all((r["on_hand"], r["reserved"]) == (r["q"], r["r"]) for r in rows)


def ledger_seqs(services: Services) -> list[int]:
    return [r["seq"] for r in services.db.query("SELECT seq FROM stock_ledger ORDER BY seq")]


async def test_old_ledger_rows_the_shop_has_go_and_the_ledger_still_adds_up(
        stocked: Services, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: the ledger was never pruned and a store's SD card filled over the years. Rows go
    oldest first once the shop has them and they are over the age; each product's newest row
    stays; the sums of what went make the ledger add up to the stock still; a delete by
    anything but retention is still refused."""
    monkeypatch.setattr(retention, "BATCH_ROWS", 2)  # several batches
    svc = stocked  # starting stock: OAT-1 (seq 1) and BAN-1 (seq 2)
    old = [move(svc, "OAT-1", 1), move(svc, "BAN-1", 2), move(svc, "OAT-1", 3)]
    clock.advance(YEAR_AND_MORE_S)
    shop_has_everything(svc)
    unacked = move(svc, "BAN-1", 1)  # young, and not acknowledged either
    stock = [(s.sku, s.on_hand, s.reserved) for s in svc.inventory.all_stock()]

    deleted = await Retention(RetentionConfig(), svc.db, clock).run_once()

    assert deleted["stock_ledger"] == 4  # seqs 1 to 4; 5 is OAT-1's newest row
    assert ledger_seqs(svc) == [old[2], unacked]
    assert [(s.sku, s.on_hand, s.reserved) for s in svc.inventory.all_stock()] == stock
    assert adds_up(svc)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), svc.db.transaction() as tx:
        tx.execute("DELETE FROM stock_ledger")
    assert (await Retention(RetentionConfig(), svc.db, clock).run_once())["stock_ledger"] == 0


async def test_ledger_rows_the_shop_has_not_acknowledged_stay_however_old(
        stocked: Services, clock: ManualClock) -> None:
    svc = stocked
    first = move(svc, "OAT-1", 1)
    move(svc, "OAT-1", 1)
    clock.advance(YEAR_AND_MORE_S)
    acknowledge(svc, 1)  # the first starting stock only: its row may go
    await Retention(RetentionConfig(), svc.db, clock).run_once()
    assert ledger_seqs(svc) == [2, first, first + 1]
    assert adds_up(svc)


async def test_a_product_whose_rows_went_gets_no_second_starting_stock(
        stocked: Services, clock: ManualClock, catalog_rows: list[tuple[int, dict[str, Any]]],
        tmp_path: Path) -> None:
    """The catalogue import gives starting stock only to a product without ledger rows: had its
    only row (the starting stock, never moved since) gone, importing the catalogue again would
    have added it a second time."""
    svc = stocked
    clock.advance(YEAR_AND_MORE_S)
    shop_has_everything(svc)
    await Retention(RetentionConfig(), svc.db, clock).run_once()
    before = [(s.sku, s.on_hand) for s in svc.inventory.all_stock()]
    svc.catalog.import_rows(catalog_rows, tmp_path)
    assert [(s.sku, s.on_hand) for s in svc.inventory.all_stock()] == before


async def test_a_count_found_again_by_its_ref_after_pruning_answers_what_it_counted(
        stocked: Services, clock: ManualClock) -> None:
    """A count sent again with its ``ref`` is answered with the number it recorded: the stock
    less every movement since. Those movements stay even when their time says they are old
    (the clock was set back): the ledger goes as a prefix of its sequence, not row by row."""
    svc = stocked
    move(svc, "BAN-1", 5)
    clock.advance(YEAR_AND_MORE_S)
    svc.inventory.count(CountIn(sku="BAN-1", counted=30, ref="take-1"))
    clock.step(-2 * YEAR_AND_MORE_S)  # a clock set back: this sale is stamped long ago
    move(svc, "BAN-1", 4)
    clock.step(2 * YEAR_AND_MORE_S)
    shop_has_everything(svc)
    assert (await Retention(RetentionConfig(), svc.db, clock).run_once())["stock_ledger"] == 2
    again, repeated = svc.inventory.count(CountIn(sku="BAN-1", counted=99, ref="take-1"))
    assert repeated and again.counted == 30
    assert adds_up(svc)


def place(services: Services, order_id: str, target: str | None = None) -> None:
    services.orders.place(OrderIn(id=order_id, member="m-1",
                                  lines=[{"sku": "BAN-1", "qty": 1}]))  # type: ignore[list-item]
    if target is not None:
        services.orders.transition(order_id, target)


def order_rows(services: Services) -> dict[str, int]:
    conn = services.db.conn().conn
    return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("orders", "order_lines", "order_history", "reservations")}


async def test_finished_orders_go_after_their_age_and_open_ones_stay(
        stocked: Services, clock: ManualClock) -> None:
    svc = stocked
    place(svc, "o-collected", "ready")
    svc.orders.transition("o-collected", "collected")
    place(svc, "o-cancelled", "cancelled")
    place(svc, "o-open")
    clock.advance(YEAR_AND_MORE_S)
    place(svc, "o-recent", "cancelled")
    shop_has_everything(svc)

    deleted = await Retention(RetentionConfig(), svc.db, clock).run_once()

    assert deleted["orders"] == 2
    assert [o.id for o in svc.orders.list()] == ["o-recent", "o-open"]
    kept = order_rows(svc)
    assert (kept["orders"], kept["order_lines"], kept["reservations"]) == (2, 2, 2)
    assert svc.db.query("SELECT DISTINCT order_id FROM order_history ORDER BY order_id") == [
        {"order_id": "o-open"}, {"order_id": "o-recent"}]


async def test_a_finished_order_whose_status_the_shop_lacks_stays(
        stocked: Services, clock: ManualClock) -> None:
    svc = stocked
    place(svc, "o-1", "cancelled")
    clock.advance(YEAR_AND_MORE_S)  # its order.status events still in the outbox
    assert (await Retention(RetentionConfig(), svc.db, clock).run_once())["orders"] == 0
    shop_has_everything(svc)
    assert (await Retention(RetentionConfig(), svc.db, clock).run_once())["orders"] == 1
