"""Member keys in the running hub: opt-ins and withdrawals reach the token resolver promptly, a
burst of them is one reload, and neither they nor the token table's whole windows (start-up,
window turns) stall the event loop with many members."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from beacons import tokens
from beacons.sources.base import AdvertisementSink
from beacons.tokens import WINDOW_S, TokenResolver, token_uuid, window_of
from hub.clock import ManualClock
from hub.config import HubConfig
from hub.members import MemberIn
from hub.presence import PresenceFigures, PresenceService
from hub.services import Services, build_services

PREFIX = "52455441494c4842"
NOON = 1_767_268_800.0
SETTLE_S = 30.0  # real seconds a test waits at most for the hub to catch up


def key_of(n: int) -> str:
    return f"{n:032x}"


class QuietRadio:
    """A source that starts and then hears nothing (the tests look tokens up themselves)."""

    name = "quiet"

    def __init__(self) -> None:
        self.listening = asyncio.Event()

    async def run(self, sink: AdvertisementSink) -> None:
        self.listening.set()
        await asyncio.Event().wait()


class LoopLag:
    """The longest the event loop went without running this probe's next tick."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last)
            last = now

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def until(condition: Callable[[], bool]) -> None:
    """Let the hub run (threads included) until ``condition`` holds."""
    deadline = time.perf_counter() + SETTLE_S
    while not condition():
        assert time.perf_counter() < deadline, (
            f"the hub did not catch up: {inspect.getsource(condition).strip()}")
        await asyncio.sleep(0.001)


@asynccontextmanager
async def running_presence(
    make_config: Callable[..., HubConfig], clock: ManualClock, members: int = 0
) -> AsyncIterator[tuple[Services, PresenceService, QuietRadio]]:
    """A hub with ``members`` opted-in members (m0, m1, ...) whose presence service is started
    and listening."""
    config = make_config(beacons={"enabled": True, "chain_prefix": PREFIX})
    svc = build_services(config, clock, with_features=False)
    radio = QuietRadio()
    presence: PresenceService | None = None
    try:
        with svc.db.transaction() as tx:
            for n in range(members):
                tx.execute(
                    "INSERT INTO members (id, consent, consent_at, beacon_key, updated_at) "
                    "VALUES (?, 1, ?, ?, ?)",
                    (f"m{n}", NOON, key_of(n), NOON),
                )
        presence = PresenceService(svc, source=radio)
        await presence.start()
        await asyncio.wait_for(radio.listening.wait(), SETTLE_S)
        yield svc, presence, radio
    finally:
        if presence is not None:
            await presence.stop()
        svc.close()


def resolves(presence: PresenceService, n: int, t: float) -> str | None:
    """Whom the hub takes member ``n``'s phone for at ``t``."""
    uuid = token_uuid(bytes.fromhex(PREFIX), bytes.fromhex(key_of(n)), window_of(t))
    return presence.resolver.resolve(uuid, t)


def reloads(svc: Services, presence: PresenceService) -> float:
    """Key reloads as /metrics tells them."""
    svc.presence = presence
    figures = svc.metrics.render().decode()
    line = next(x for x in figures.splitlines() if x.startswith("hub_presence_key_reloads_total"))
    return float(line.split()[-1])




async def test_a_burst_of_opt_ins_is_one_reload_and_a_withdrawal_stops_at_once(
    make_config: Callable[..., HubConfig],
) -> None:
    """Why: every MEMBERS_CHANGED event reloaded every key and rebuilt the whole table, once
    per opt-in of a burst. A withdrawn member stops resolving with the next reload, without
    waiting for a window turn (the clock never moves here)."""
    clock = ManualClock(NOON)
    async with running_presence(make_config, clock) as (svc, presence, _):
        svc.metrics.registry.register(PresenceFigures(svc))
        for n in range(30):  # thirty opt-ins in one go (a sync batch, a busy counter)
            svc.members.upsert(MemberIn(id=f"m{n}", consent=True, beacon_key=key_of(n)))
        await until(lambda: resolves(presence, 29, clock.now()) == "m29")
        for _ in range(5):  # any reload still due would run in these reads' time
            await svc.db.read(lambda: None)
            await asyncio.sleep(0.01)
        assert reloads(svc, presence) == 1
        assert all(resolves(presence, n, clock.now()) == f"m{n}" for n in range(30))

        svc.members.upsert(MemberIn(id="m7", consent=False))  # an opt-out
        await until(lambda: reloads(svc, presence) == 2)
        assert resolves(presence, 7, clock.now()) is None
        assert resolves(presence, 7, clock.now() + WINDOW_S) is None  # nor after the turn
        assert resolves(presence, 8, clock.now()) == "m8"


async def test_twenty_thousand_members_never_stall_the_event_loop(
    make_config: Callable[..., HubConfig],
) -> None:
    """Why: with thousands of members the whole token table was rebuilt on the event loop at
    start-up, on every opt-in or withdrawal and (a quarter of it) at every 512 s window turn,
    stalling the web server and the radio callbacks for a second and more (3 s at 50,000 members
    on a PC, several times that on a Pi). The loop must never stop for half as long as making
    the table takes on this machine in this run, and never for 100 ms: a bound that moves with
    the load on the machine (a fixed 100 ms alone failed on a machine busy with other work)."""
    clock = ManualClock(NOON)
    fault_s = await asyncio.to_thread(table_seconds, 20_000, clock.now())
    lag = LoopLag()
    lag.start()
    try:
        async with running_presence(make_config, clock, members=20_000) as (svc, presence, _):
            assert resolves(presence, 12_345, clock.now()) == "m12345"
            svc.members.upsert(MemberIn(id="late", consent=True, beacon_key=key_of(20_000)))
            svc.members.upsert(MemberIn(id="m5", consent=False))  # an opt-out
            await until(lambda: resolves(presence, 20_000, clock.now()) == "late")
            assert resolves(presence, 5, clock.now()) is None
            for _ in range(2):  # two window turns: each next window is made ahead, off the loop
                clock.advance(WINDOW_S)
                assert resolves(presence, 19_999, clock.now()) == "m19999"
                await until(lambda: presence.resolver.ready(clock.now()))
            assert resolves(presence, 20_000, clock.now()) == "late"
            assert resolves(presence, 5, clock.now()) is None
    finally:
        await lag.stop()
    fault_s = max(fault_s, await asyncio.to_thread(table_seconds, 20_000, clock.now()))
    assert lag.worst < max(0.1, fault_s / 2), (
        f"the event loop stood still for {lag.worst * 1000:.0f} ms; making the table on it "
        f"would stop it for {fault_s * 1000:.0f} ms")


def table_seconds(members: int, t: float) -> float:
    """How long making the token table of ``members`` takes here and now: what the event loop
    would stand still for if it made the table itself (the fault this file guards against)."""
    resolver = TokenResolver(bytes.fromhex(PREFIX),
                             {f"m{n}": bytes.fromhex(key_of(n)) for n in range(members)})
    started = time.perf_counter()
    resolver.resolve(token_uuid(bytes.fromhex(PREFIX), bytes.fromhex(key_of(0)), window_of(t)), t)
    return time.perf_counter() - started


async def test_a_window_turned_while_tokens_were_made_is_made_at_once(
    make_config: Callable[..., HubConfig], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why: the wait for the next turn was reckoned from before the build, so a clock that
    moved a window on while a slow build ran (a busy machine) made it sleep a whole window too
    long; that window's tokens were then built at a lookup, on the event loop."""
    clock = ManualClock(NOON)
    gate, building = threading.Event(), threading.Event()
    gate.set()
    build = tokens._window_table

    def slow_build(*args: Any) -> dict[str, str]:
        if not gate.is_set():
            building.set()
            assert gate.wait(SETTLE_S)
        return build(*args)

    monkeypatch.setattr(tokens, "_window_table", slow_build)
    async with running_presence(make_config, clock, members=50) as (_, presence, _radio):
        await until(lambda: presence.resolver.ready(clock.now()))
        gate.clear()
        clock.advance(WINDOW_S - NOON % WINDOW_S + 1.0)  # the turn: a build starts, and waits
        assert await asyncio.to_thread(building.wait, SETTLE_S)
        clock.advance(WINDOW_S)  # and the clock turns another window meanwhile
        gate.set()
        await until(lambda: presence.resolver.ready(clock.now()))
