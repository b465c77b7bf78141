"""Resync: a shop that lost its database catches up from snapshots; a view that drifted is caught
by the next snapshot; a store restored from a backup (a shorter history, a new epoch) is
followed without doubling anything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.backup import backup, restore
from hub.clock import ManualClock
from hub.inventory import MovementIn
from hub.sync_link import HubSync
from sync import messages
from sync.envelope import build
from sync.topics import StoreTopics
from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import FAST_MQTT, STORE, RawClient, SyncPair, wait_until


async def _sell(pair: SyncPair, count: int, sku: str = "BAN-1") -> None:
    assert pair.hub is not None
    svc = pair.hub.services
    for _ in range(count):
        await svc.db.write(svc.inventory.record, MovementIn(sku=sku, qty=1, reason="sale"))


def _drift(pair: SyncPair) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(pair.shop_db)
    try:
        return conn.execute("SELECT kind, sku FROM drift ORDER BY id").fetchall()
    finally:
        conn.close()


async def test_a_shop_that_lost_its_database_catches_up_from_snapshots(pair: SyncPair) -> None:
    assert pair.hub is not None
    await _sell(pair, 20)
    await pair.settled()
    agent = pair.hub.services.sync.agent  # type: ignore[union-attr]
    await wait_until(lambda: agent.acked >= agent.cursor, what="the shop's ack of everything")
    await pair.stop_shop()
    shutil.rmtree(pair.shop_db.parent)  # the shop's database is gone
    await _sell(pair, 5)
    await pair.start_shop()

    async def view_matches() -> bool:
        report = pair.audit()
        return not report.view_diff and not report.unexpected and report.applied_rows == 5

    await wait_until(view_matches, what="the new shop's view to match the hub's stock")
    report = pair.audit()
    assert len(report.lost) == 22  # history the hub no longer keeps, by design
    # The retained snapshots can rebuild the view before the hub's fresh state (the answer to
    # the new shop's resync) tells it the acked history it will never see: wait for that too.
    await wait_until(lambda: ("history_gap", None) in _drift(pair),
                     what="the history gap recorded")


async def test_drift_in_the_shop_view_is_found_and_corrected(tmp_path: Path,
                                                             mosquitto: Mosquitto) -> None:
    """The hub runs on a held clock, so its snapshots go out only when the test moves it: none
    can reach the shop between the view being spoiled and the check that it is."""
    clock = ManualClock()
    pair = SyncPair(tmp_path, mosquitto)
    try:
        hub = await pair.start_hub(clock=clock)
        await pair.import_catalog()
        await pair.start_shop()
        await _sell(pair, 3, "OAT-1")
        await pair.settled()
        conn = sqlite3.connect(pair.shop_db)
        conn.execute("UPDATE stock_view SET on_hand = on_hand + 5, available = available + 5 "
                     "WHERE sku = 'OAT-1'")
        conn.commit()
        conn.close()
        assert pair.audit().view_diff
        assert hub.services.sync is not None
        hub.services.sync.agent.refresh_snapshots()  # sent at the next snapshot interval

        def drift_reported() -> bool:
            clock.advance(FAST_MQTT["snapshot_interval_s"])
            return ("stock", "OAT-1") in _drift(pair)

        await wait_until(drift_reported, what="drift reported")
        await pair.settled()
        assert pair.shop is not None
        assert pair.shop.shop.link.metrics.drift._value.get() >= 1  # noqa: SLF001
    finally:
        await pair.close()


async def test_a_store_restored_from_a_backup_is_followed_exactly(pair: SyncPair) -> None:
    assert pair.hub is not None
    database = pair.hub.services.config.store.database
    await _sell(pair, 10)
    await pair.settled()
    saved = backup(database, pair.folder / "backups")
    await _sell(pair, 7)  # lost with the restore, then handed back by the shop (store.recover)
    await pair.settled()
    old_epoch = pair.hub.services.sync.agent.epoch  # type: ignore[union-attr]
    await pair.stop_hub()
    restore(saved, database)
    await asyncio.sleep(0.01)
    await pair.start_hub()
    assert pair.hub.services.sync.agent.epoch > old_epoch  # type: ignore[union-attr]
    await _sell(pair, 4)  # the new timeline reuses the lost sequence numbers
    await wait_until(lambda: not pair.shop_sql(
        "SELECT 1 FROM rewound_events WHERE outcome IS NULL") and pair.shop_sql(
        "SELECT 1 FROM rewound_events"), 30, "the lost sales handed back and answered")
    report = await pair.settled()
    assert report.ledger_rows == 2 + 10 + 4 + 7
    assert ("rewind", None) in _drift(pair)


def _received(client: RawClient, channel: str) -> list[dict[str, Any]]:
    """Envelopes ``client`` received on ``channel`` (state, events), in arrival order."""
    return [json.loads(m.payload) for m in list(client.received)
            if m.topic.split("/")[3] == channel]


async def test_a_resync_is_answered_from_its_after_seq(tmp_path: Path,
                                                       mosquitto: Mosquitto) -> None:
    """Why: the shop's resync `{"after_seq": 192}` was answered with a state saying
    `acked_seq: 190`, and seqs 191-192 were sent again: its after_seq was recorded as an ack
    only after the rewind and the answer had used the older one.

    The hub runs on a held clock, so no ack timeout sends anything again meanwhile."""
    topics = StoreTopics("retail", STORE)
    async with _heard_by_a_raw_shop(tmp_path, mosquitto) as (clock, shop, sync, last):
        assert sync.agent.acked == 0
        states, events = len(_received(shop, "state")), len(_received(shop, "events"))

        after = last - 2
        resync = build(store=STORE, epoch=sync.agent.epoch, seq=0,
                       type_=messages.RESYNC, ts=clock.now(),
                       data=messages.Resync(after_seq=after, snapshots=False))
        assert shop.publish(topics.cmd, resync) == 0
        answer = await wait_until(lambda: _received(shop, "state")[states:], what="the answer")
        assert answer[0]["data"]["acked_seq"] == after
        result = last + 1  # the resync's command.result
        await wait_until(lambda: result in [e["seq"] for e in _received(shop, "events")],
                         what="the resync's result")
        again = [e["seq"] for e in _received(shop, "events")[events:]]
        assert again == [last - 1, last, result]


async def test_a_stop_while_answering_a_resync_leaves_the_store_offline(
        tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: the hub's link stopped while it answered the shop's resync (asked at every birth);
    the answer's "online" state went after the goodbye's "offline", was retained, and the shop
    showed the store online while it was gone. Whatever answers commands stops first: here a
    resync holds in the middle of its answer while the link stops."""
    topics = StoreTopics("retail", STORE)
    async with _heard_by_a_raw_shop(tmp_path, mosquitto) as (clock, shop, sync, last):
        answering, stopped_with = asyncio.Event(), []

        async def held_answer() -> int:
            answering.set()
            try:
                await asyncio.Event().wait()
            finally:  # the connection still up: the goodbye has not been said yet
                session = sync.agent.client.session
                stopped_with.append(session is not None and not session.closed.is_set())
            return 0

        monkeypatch.setattr(sync.link, "announce_orders", held_answer)
        resync = build(store=STORE, epoch=sync.agent.epoch, seq=0, type_=messages.RESYNC,
                       ts=clock.now(), data=messages.Resync(after_seq=last, snapshots=True))
        assert shop.publish(topics.cmd, resync) == 0
        await asyncio.wait_for(answering.wait(), 30)
        await sync.stop()
        assert stopped_with == [True]
        later = RawClient(mosquitto.port, "later-shop")
        try:
            assert later.subscribe(topics.state) == [1]
            [state] = await wait_until(lambda: _received(later, "state"), what="the retained state")
            assert state["data"]["state"] == "offline"
        finally:
            later.close()


@contextlib.asynccontextmanager
async def _heard_by_a_raw_shop(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[
        tuple[ManualClock, RawClient, HubSync, int]]:
    """A hub on a held clock (no ack timeout sends anything again) with ten sales, each sent
    once to a raw client standing for the shop; yields the clock, the client, the hub's sync
    and its last seq."""
    clock = ManualClock()
    pair = SyncPair(tmp_path, mosquitto)
    shop = RawClient(mosquitto.port, "raw-shop")  # a shop, as the broker sees it
    try:
        assert shop.subscribe(f"retail/v1/{STORE}/#") == [1]
        hub = await pair.start_hub(clock=clock)
        await pair.import_catalog()
        await _sell(pair, 10)
        sync = hub.services.sync
        assert sync is not None
        last = (await sync.link.position()).last_seq
        await wait_until(lambda: last in [e["seq"] for e in _received(shop, "events")],
                         what="every event sent once")
        yield clock, shop, sync, last
    finally:
        shop.close()
        await pair.close()


async def test_acks_that_cannot_be_true_are_refused_and_change_nothing(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: a resync "from" seq 10**12 was capped to the rows written and deleted every queued
    movement, sent or not, without a word; an ack naming run 2**63 - 2 was adopted, and the
    hub's next start overflowed SQLite's integer: it could not start again."""
    topics = StoreTopics("retail", STORE)
    async with _heard_by_a_raw_shop(tmp_path, mosquitto) as (clock, shop, sync, last):
        svc, agent = sync.services, sync.agent
        epoch = agent.epoch

        def outbox() -> int:
            return int(svc.db.query("SELECT count(*) AS n FROM outbox")[0]["n"])

        queued = outbox()
        assert queued >= 10
        states = len(_received(shop, "state"))
        resync = build(store=STORE, epoch=epoch, seq=0, type_=messages.RESYNC, ts=clock.now(),
                       data=messages.Resync(after_seq=10**12))
        far_run = build(store=STORE, epoch=2**63 - 2, seq=last, type_=messages.ACK,
                        ts=clock.now(), data=messages.Ack(acked_seq=last))
        unsent = build(store=STORE, epoch=epoch, seq=last + 5, type_=messages.ACK,
                       ts=clock.now(), data=messages.Ack(acked_seq=last + 5))
        for message, topic in ((resync, topics.cmd), (far_run, topics.ack), (unsent, topics.ack)):
            assert shop.publish(topic, message) == 0

        def letters() -> list[str] | None:
            rows = svc.db.query("SELECT message FROM sync_dead_letters ORDER BY id")
            return [r["message"] for r in rows] if len(rows) >= 3 else None

        errors = await wait_until(letters, what="three dead letters")
        assert any("has sent only up to seq" in e and "nothing was deleted" in e for e in errors)
        assert any("more than a year ahead" in e for e in errors)
        assert agent.epoch == epoch and agent.acked == 0 and outbox() == queued
        # the refused resync is still answered: where the stream stands, then the replay
        answer = await wait_until(lambda: _received(shop, "state")[states:], what="the answer")
        assert answer[0]["data"]["acked_seq"] == 0
        # a true ack still moves everything on
        good = build(store=STORE, epoch=epoch, seq=last, type_=messages.ACK, ts=clock.now(),
                     data=messages.Ack(acked_seq=last))
        assert shop.publish(topics.ack, good) == 0
        await wait_until(lambda: agent.acked == last, what="the true ack recorded")
