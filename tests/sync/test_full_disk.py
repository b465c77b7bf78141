"""The hub's disk full for minutes while the sync agent runs: what fails again and again is logged
once with its traceback, then counted, and once more when it works again; acks are tried again
ever more rarely, and the newest is recorded as soon as writing works.

Why: with the hub's SQLite disk full, the agent logged the traceback of the same failed ack once a
second (67 in 67 s) and one for every resend of every pending order (45 kB a minute with 8
pending), while the link itself recovered without a restart once space was freed.

A disk cannot be filled portably in a test, so the hub's database here refuses every write while
``full`` the way SQLite refuses it on a full disk; reads and everything else are the real ones
(a real mosquitto, the real hub on its own SQLite file), and the hub runs on a held clock that
the test moves."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hub.app import RunningHub
from hub.clock import ManualClock
from hub.db import Database
from hub.inventory import MovementIn
from sync import messages
from sync.agent import ACK_RETRY_MAX_S
from sync.envelope import build
from sync.failures import FailureLog
from sync.topics import StoreTopics
from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import STORE, RawClient, SyncPair, wait_until

TOPICS = StoreTopics("retail", STORE)


class FullDisk:
    """While ``full``, every write to ``db`` fails with SQLite's error for a full disk (nothing is
    written); ``refused`` names the writing function of each refused write, in order."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.refused: list[str] = []
        write = db.write

        async def write_unless_full(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if self.full:
                self.refused.append(getattr(fn, "__name__", repr(fn)))
                raise sqlite3.OperationalError("database or disk is full")
            return await write(fn, *args, **kwargs)

        monkeypatch.setattr(db, "write", write_unless_full)

    def tries(self, name: str) -> int:
        return self.refused.count(name)


async def _pass(clock: ManualClock, seconds: float, step: float = 0.5) -> None:
    """Move the hub's clock ``seconds`` on, a step at a time, letting the hub run between."""
    for _ in range(round(seconds / step)):
        clock.advance(step)
        await asyncio.sleep(0.02)


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sync.agent" and r.levelno == level]


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sync.agent" and r.exc_info]


def _said(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [m for m in (r.getMessage() for r in _lines(caplog, logging.INFO)) if text in m]


def test_a_repeating_failure_is_logged_once_counted_and_its_end_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    now = 0.0
    logger = logging.getLogger("tests.failures")
    failures = FailureLog(logger, "recording acks", lambda: now)
    full = sqlite3.OperationalError("database or disk is full")
    locked = sqlite3.OperationalError("database is locked")
    caplog.set_level(logging.INFO, logger=logger.name)

    def logged() -> list[tuple[int, str, bool]]:
        lines = [(r.levelno, r.getMessage(), r.exc_info is not None)
                 for r in caplog.records if r.name == logger.name]
        caplog.clear()
        return lines

    for second in range(100):
        now = float(second)
        failures.failed(locked if second == 10 else full, "could not record seq %s", second)
    assert logged() == [
        (logging.ERROR, "could not record seq 0", True),
        (logging.ERROR, "could not record seq 10", True),  # another kind: its own traceback
        (logging.ERROR, "recording acks still failing: 71 failures in 70 s (the last: "
         "OperationalError: database or disk is full)", False)]  # a line a minute at most
    now = 130.0
    failures.succeeded()
    failures.succeeded()
    assert logged() == [
        (logging.INFO, "recording acks works again after 100 failures in 130 s", False)]
    failures.failed(full, "could not record seq %s", 7)  # a new run of failures
    assert logged() == [(logging.ERROR, "could not record seq 7", True)]


@dataclass
class Held:
    clock: ManualClock
    hub: RunningHub
    shop: RawClient  # in the shop's place, as the broker sees it
    disk: FullDisk


@pytest_asyncio.fixture
async def held(tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch,
               caplog: pytest.LogCaptureFixture) -> AsyncIterator[Held]:
    """The hub on a held clock, connected, its catalogue imported and its disk ready to fill; a
    bare client subscribed to its events in the shop's place; the agent's log caught from INFO."""
    caplog.set_level(logging.INFO, logger="sync.agent")
    clock = ManualClock()
    pair = SyncPair(tmp_path, mosquitto)
    shop = RawClient(mosquitto.port, "shop")
    try:
        assert shop.subscribe(TOPICS.event("stock.movement")) == [1]
        assert shop.subscribe(TOPICS.state) == [1]
        hub = await pair.start_hub(clock=clock)
        await pair.import_catalog()
        # The hub starts connecting in the background; its birth comes after its subscriptions.
        await wait_until(lambda: any(m.topic == TOPICS.state for m in list(shop.received)),
                         what="the hub's birth")
        yield Held(clock, hub, shop, FullDisk(hub.services.db, monkeypatch))
    finally:
        shop.close()
        await pair.close()


async def test_a_full_disk_logs_one_traceback_for_acks_and_records_the_newest_once_it_works(
        held: Held, caplog: pytest.LogCaptureFixture) -> None:
    clock, disk, svc = held.clock, held.disk, held.hub.services
    assert svc.sync is not None
    agent, link = svc.sync.agent, svc.sync.link

    async def sell(count: int) -> int:
        for _ in range(count):
            await svc.db.write(svc.inventory.record, MovementIn(sku="BAN-1", qty=1, reason="sale"))
        last = (await link.position()).last_seq
        await wait_until(lambda: agent.cursor == last, what="every event sent")
        return last

    def ack(seq: int) -> None:
        assert held.shop.publish(TOPICS.ack, build(
            store=STORE, epoch=agent.epoch, seq=seq, type_=messages.ACK, ts=clock.now(),
            data=messages.Ack(acked_seq=seq))) == 0

    last = await sell(10)
    disk.full = True
    ack(last - 5)
    await wait_until(lambda: disk.tries("_acknowledge") == 1, what="the first try")
    await _pass(clock, 60)
    ack(last)  # comes during a wait: recorded with the next try
    await _pass(clock, 60)
    # Tries after 1, 2, 4, 8, 16, 30 and 30 s: not one a second.
    assert 7 <= disk.tries("_acknowledge") <= 9, disk.refused
    assert len(_tracebacks(caplog)) == 1
    assert len(_lines(caplog, logging.ERROR)) <= 3  # the traceback, a count a minute at most
    assert not _said(caplog, "works again")

    disk.full = False
    freed = clock.monotonic()

    async def recorded() -> bool:
        clock.advance(0.5)
        return agent.acked == (await link.position()).acked_seq == last

    await wait_until(recorded, what="the newest ack recorded once the disk has room")
    assert clock.monotonic() - freed <= ACK_RETRY_MAX_S + 1  # within the wait under way
    assert await svc.db.read(svc.db.query, "SELECT seq FROM outbox") == []
    assert len(_said(caplog, "recording acks works again after")) == 1

    # A success starts the waits again from the first, and a new outage has its traceback.
    last = await sell(3)
    disk.full = True
    tries = disk.tries("_acknowledge")
    ack(last)
    await wait_until(lambda: disk.tries("_acknowledge") == tries + 1, what="the next try")
    await _pass(clock, 1)
    await wait_until(lambda: disk.tries("_acknowledge") == tries + 2,
                     what="a try after the first wait")
    assert len(_tracebacks(caplog)) == 2
    disk.full = False
    await _pass(clock, 2)
    await wait_until(lambda: agent.acked == last, what="the ack recorded")
    assert len(_said(caplog, "recording acks works again after 2 failures")) == 1


async def test_commands_resent_to_a_full_disk_log_one_traceback_and_apply_once_it_works(
        held: Held, caplog: pytest.LogCaptureFixture) -> None:
    clock, disk, svc = held.clock, held.disk, held.hub.services
    orders = [build(store=STORE, epoch=0, seq=0, type_=messages.ORDER_PLACE, ts=clock.now(),
                    data={"id": f"full-{n}", "lines": [{"sku": "BAN-1", "qty": 1}]})
              for n in range(8)]

    def send(*payloads: bytes) -> None:
        for payload in payloads:
            assert held.shop.publish(TOPICS.cmd, payload) == 0

    disk.full = True
    for round_ in range(3):  # the shop sends its eight pending orders again and again
        if round_:
            await _pass(clock, 30)
        send(*orders, b"{not json")  # and a dead letter, which cannot be stored either
        await wait_until(lambda n=round_ + 1: disk.tries("_execute") == 8 * n
                         and disk.tries("_store_dead_letter") == n, what="the resends tried")
    tracebacks = _tracebacks(caplog)
    assert len(tracebacks) == 2, tracebacks  # one for the orders, one for the dead letters
    assert len(_lines(caplog, logging.ERROR)) <= 4  # and a count a minute for each at most
    assert not _said(caplog, "works again")

    disk.full = False
    send(*orders, *orders, b"{not json")  # resent twice more: each applied once

    async def placed() -> list[str]:
        rows = await svc.db.read(svc.db.query, "SELECT status FROM sync_inbox")
        letters = await svc.db.read(svc.db.query, "SELECT id FROM sync_dead_letters")
        return [r["status"] for r in rows] if len(rows) >= 8 and letters else []

    assert await wait_until(placed, what="the orders applied") == ["applied"] * 8
    listed = await svc.db.read(svc.orders.list, None, None, 100)
    assert sorted(o.id for o in listed) == [f"full-{n}" for n in range(8)]
    assert _said(caplog, "applying commands works again after") == [
        "applying commands works again after 24 failures in 60 s"]
    assert _said(caplog, "storing dead letters works again after") == [
        "storing dead letters works again after 3 failures in 60 s"]
    assert len(_tracebacks(caplog)) == 2
