"""The shop's retention on its real database code: old rows go, recent and pending ones stay, and
the protocol still holds after pruning (duplicates, resends, a restore)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sync import messages
from sync.envelope import Envelope, build, decode
from sync.ports import DeadLetter
from sync.shop.config import ShopConfig, ShopRetentionConfig
from sync.shop.retention import DAY_S, ShopRetention
from sync.shop.store import EventItem, PendingCommand, ShopStore, SnapshotItem, StateItem

STORE = "store-1"
OLD = 1_800_000_000.0  # the first day
NOW = OLD + 100 * DAY_S  # the day retention runs: past every default age


def envelope(epoch: int, seq: int, type_: str, data: Any, ts: float,
             prev: int | None) -> Envelope:
    return decode(build(store=STORE, epoch=epoch, seq=seq, type_=type_, ts=ts, data=data,
                        prev=prev), 65536)


def birth(epoch: int, last_seq: int, acked_seq: int, ts: float) -> StateItem:
    state = messages.StoreState(state="online", epoch=epoch, last_seq=last_seq,
                                acked_seq=acked_seq)
    return StateItem(envelope(epoch, last_seq, messages.STATE, state, ts, None), state)


def sale(epoch: int, seq: int, ts: float) -> EventItem:
    m = messages.Movement(movement_id=f"m-{epoch}-{seq}", seq=seq, sku="BAN-1", qty=-1,
                          reserved_qty=0, reason="sale", ts=ts, on_hand=100 - seq, reserved=0,
                          available=100 - seq)
    return EventItem(envelope(epoch, seq, messages.MOVEMENT, m, ts, seq - 1), m)


def reminder(seq: int, ts: float) -> EventItem:
    r = messages.Reminder(member="mem-1")
    return EventItem(envelope(1, seq, messages.REMINDER, r, ts, seq - 1), r)


def result(seq: int, command: PendingCommand, ts: float) -> EventItem:
    r = messages.CommandResult(command_id=command.id, command_type=command.type,
                               status="applied")
    return EventItem(envelope(1, seq, messages.COMMAND_RESULT, r, ts, seq - 1), r)


def rows(store: ShopStore, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


class History:
    """A store's first 100 days as the shop saw them: on the first day sales 1-10, a reminder
    (11) and the answer (12) to an order; an opt-in never answered; a dead letter and a drift.
    On the last day sales 13-15, a reminder (16) and the answer (17) to another order."""

    def __init__(self, store: ShopStore) -> None:
        self.store = store
        store.apply_batch([birth(1, 0, 0, OLD), *(sale(1, seq, OLD) for seq in range(1, 11)),
                           reminder(11, OLD)], OLD)
        self.unanswered = store.opt_in("mem-1", STORE, "Ann", True, "0" * 32, OLD)[1]
        self.old_order = store.place_order("o-old", STORE, "mem-1", [{"sku": "BAN-1", "qty": 1}],
                                           OLD).command
        assert self.old_order is not None
        store.apply_batch([result(12, self.old_order, OLD)], OLD)
        store.dead_letter(DeadLetter(topic="retail/v1/store-1/events/stock", reason="too_large",
                                     message="x", payload=b"x", size=1, received_at=OLD))
        snapshot = messages.StockSnapshot(sku="BAN-1", seq=10, on_hand=1, reserved=0,
                                          available=1)
        store.apply_batch([SnapshotItem(envelope(1, 10, messages.SNAPSHOT, snapshot, OLD, None),
                                        snapshot)], OLD)  # other numbers at seq 10: drift
        recent = NOW - DAY_S
        self.new_order = store.place_order("o-new", STORE, "mem-1",
                                           [{"sku": "BAN-1", "qty": 1}], recent).command
        assert self.new_order is not None
        store.apply_batch([*(sale(1, seq, recent) for seq in range(13, 16)),
                           reminder(16, recent), result(17, self.new_order, recent)], recent)
        assert rows(store, "SELECT watermark FROM stores") == [(17,)]


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ShopStore]:
    store = ShopStore(tmp_path / "shop.db")
    store.create_schema()
    yield store
    store.close()


async def prune(store: ShopStore, now: float = NOW, **settings: Any) -> dict[str, int]:
    job = ShopRetention(store, ShopRetentionConfig(**settings), clock=lambda: now,
                        sleep=asyncio.sleep)
    return await job.run_once()


async def test_reminders_go_by_when_the_shop_received_them(shop: ShopStore) -> None:
    """Why: they went by the store's own time: a hub started without a battery clock stamps
    1970, and its reminders were deleted at the shop's next pass; one with its clock ahead had
    personal data kept past its age."""
    shop.apply_batch([birth(1, 0, 0, NOW), reminder(1, 0.0)], NOW)  # a store clock at 1970
    shop.apply_batch([reminder(2, NOW + 400 * DAY_S)], NOW - 100 * DAY_S)  # one far ahead
    await prune(shop)
    assert rows(shop, "SELECT seq FROM reminders") == [(1,)]


async def test_old_rows_go_while_recent_pending_and_business_ones_stay(shop: ShopStore) -> None:
    history = History(shop)
    deleted = await prune(shop)

    assert rows(shop, "SELECT seq FROM reminders") == [(16,)]
    assert rows(shop, "SELECT id FROM commands ORDER BY seq") == [
        (history.unanswered.id,), (history.new_order.id,)]
    # every event applied on the first day but the newest (the anchor a rewind needs)
    assert rows(shop, "SELECT seq FROM applied ORDER BY seq") == [(s,) for s in range(12, 18)]
    assert rows(shop, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert rows(shop, "SELECT count(*) FROM drift") == [(0,)]
    assert deleted == {"reminders": 1, "rewound_reminders": 0, "commands": 1, "applied": 11,
                       "dead_letters": 1, "drift": 1}
    # business records stay
    assert rows(shop, "SELECT count(*) FROM movements") == [(13,)]
    assert rows(shop, "SELECT id, state FROM orders ORDER BY id") == [
        ("o-new", "requested"), ("o-old", "requested")]
    assert await prune(shop) == dict.fromkeys(deleted, 0)


async def test_nothing_goes_before_its_age_and_in_small_steps_when_it_does(
        shop: ShopStore) -> None:
    History(shop)
    assert not any((await prune(shop, now=OLD + 29 * DAY_S)).values())
    # batches of 100 rows at most: more steps, the same outcome
    assert (await prune(shop, batch_rows=100))["applied"] == 11
    assert rows(shop, "SELECT min(seq) FROM applied") == [(12,)]


async def test_events_above_the_watermark_are_kept_however_old(shop: ShopStore) -> None:
    shop.apply_batch([birth(1, 0, 0, OLD), *(sale(1, seq, OLD) for seq in (1, 2, 4, 5))], OLD)
    assert rows(shop, "SELECT watermark FROM stores") == [(2,)]  # 3 never arrived
    await prune(shop)
    assert rows(shop, "SELECT seq FROM applied ORDER BY seq") == [(2,), (4,), (5,)]
    shop.apply_batch([sale(1, 3, NOW)], NOW)  # the gap filled at last
    assert rows(shop, "SELECT watermark FROM stores") == [(5,)]


async def test_a_pruned_event_delivered_again_is_not_applied_twice(shop: ShopStore) -> None:
    History(shop)
    await prune(shop)
    before = rows(shop, "SELECT count(*), sum(qty) FROM movements")
    out = shop.apply_batch([sale(1, 3, OLD), sale(1, 3, OLD), reminder(11, OLD)], NOW)
    assert (out.applied, out.duplicates, out.drift) == (0, 3, 0)
    assert rows(shop, "SELECT count(*), sum(qty) FROM movements") == before
    assert rows(shop, "SELECT count(*) FROM reminders") == [(1,)]
    assert rows(shop, "SELECT watermark FROM stores") == [(17,)]
    assert out.acks == {}


async def test_pending_commands_are_still_resent_and_answered_once_after_pruning(
        shop: ShopStore) -> None:
    history = History(shop)
    await prune(shop)
    shop.apply_batch([birth(1, 17, 17, NOW)], NOW)  # online again
    # the old unanswered opt-in goes again with its own seq and id (the store applies an id
    # once); the answered order pruned is never sent again
    for pending in (shop.pending_commands(None, None), shop.pending_commands(STORE, None),
                    shop.pending_commands(None, NOW)):
        assert pending == [history.unanswered]
    out = shop.apply_batch([result(18, history.unanswered, NOW),
                            result(19, history.old_order, NOW)], NOW)  # answer of a pruned one
    assert out.applied == 2
    assert shop.pending_commands(None, None) == []
    assert rows(shop, "SELECT count(*) FROM commands") == [(2,)]
    again = shop.apply_batch([result(18, history.unanswered, NOW)], NOW)
    assert (again.applied, again.duplicates) == (0, 1)


async def test_a_restore_after_pruning_rewinds_exactly_and_resends_what_the_store_lost(
        shop: ShopStore) -> None:
    history = History(shop)
    await prune(shop)
    # restored from a backup of the day before: it has sales up to 14, not the answer at 17
    shop.apply_batch([birth(2, 14, 14, NOW)], NOW)
    assert rows(shop, "SELECT watermark FROM stores") == [(14,)]
    assert rows(shop, "SELECT max(seq) FROM movements") == [(14,)]
    pending = shop.pending_commands(STORE, None)
    assert [c.id for c in pending[:2]] == [history.unanswered.id, history.new_order.id]
    # and, after them, the lost sale 15 and reminder 16 handed back for the store to apply again
    assert [c.type for c in pending[2:]] == [messages.STORE_RECOVER]
    recover = msgspec.json.decode(pending[2].data, type=messages.StoreRecover)
    assert (recover.epoch, [(e.seq, e.type) for e in recover.events]) == (
        1, [(15, messages.MOVEMENT), (16, messages.REMINDER)])
    # the new run's events, reusing 15 and up, apply and the chain goes on
    out = shop.apply_batch([sale(2, 15, NOW), sale(2, 16, NOW)], NOW)
    assert out.applied == 2
    assert rows(shop, "SELECT watermark FROM stores") == [(16,)]
    assert rows(shop, "SELECT movement_id FROM movements WHERE seq = 15") == [("m-2-15",)]


async def test_a_restore_from_a_backup_older_than_the_window_keeps_the_business_records(
        shop: ShopStore) -> None:
    History(shop)
    await prune(shop)
    shop.apply_batch([birth(2, 5, 5, NOW)], NOW)  # sale 5's `applied` row is gone
    assert rows(shop, "SELECT watermark FROM stores") == [(5,)]
    assert rows(shop, "SELECT seq FROM movements ORDER BY seq") == [(s,) for s in range(1, 6)]
    shop.apply_batch([sale(2, 6, NOW)], NOW)
    assert rows(shop, "SELECT watermark FROM stores") == [(6,)]


async def test_the_service_prunes_on_its_clock() -> None:
    """Now and then every check_every_s of the injected clock; a failing run is retried."""
    calls: list[float] = []
    now = [NOW]
    done = asyncio.Event()

    class Store:
        async def write(self, fn: Any, before: Any, limit: int) -> dict[str, int]:
            calls.append(now[0])
            if len(calls) == 2:
                raise sqlite3.OperationalError("database is locked")
            if len(calls) == 3:
                done.set()
            return {"reminders": 0}

        prune = None

    async def sleep(seconds: float) -> None:
        assert seconds == 600
        now[0] += seconds
        await asyncio.sleep(0)

    job = ShopRetention(Store(), ShopRetentionConfig(check_every_s=600),  # type: ignore[arg-type]
                        clock=lambda: now[0], sleep=sleep)
    await job.start()
    await asyncio.wait_for(done.wait(), 5)
    await job.stop()
    assert calls[:3] == [NOW, NOW + 600, NOW + 1200]


def test_retention_settings_are_strict_and_described() -> None:
    config = ShopConfig.model_validate({})
    assert config.retention.reminders_days == 90
    assert config.retention.kept_history_days == 44
    for bad in ({"reminders_days": 0}, {"history_days": 1}, {"keep_forever": True}):
        with pytest.raises(ValueError):
            ShopConfig.model_validate({"retention": bad})
    assert all(f.description for f in ShopRetentionConfig.model_fields.values())
