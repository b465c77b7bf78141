"""The one source of time. Everything that needs the time takes a clock, so tests move time
instead of sleeping and the ledger, reservations and presence agree on what "now" is."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

#: A change of more than this in the difference between the wall clock and the monotonic one
#: is the wall clock having been set (NTP correcting a Pi that started without a battery clock),
#: not drift, which NTP slews at most half a millisecond per second.
STEP_S = 60.0
#: Seconds in a day, for the ages settings give in days.
DAY_S = 86_400.0


#: How long after starting the hub waits before doing what a wrong clock would make it do for
#: good (expiring orders, deleting old rows): a Pi whose clock was set wrong starts with it,
#: and NTP, once the network is up, sets it right within seconds to minutes (a step that
#: ``OrderService.follow_clock`` then follows).
SETTLE_AFTER_START_S = 900.0


class Clock(Protocol):
    """Unix wall time for records, monotonic time for intervals, and a sleep that honours both."""

    def now(self) -> float:
        """Unix time in seconds."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


def wall_lead(clock: Clock) -> float:
    """How far the wall clock is ahead of the monotonic one: it changes only when the wall clock
    is set (stepped by NTP, or slewed by it at most half a millisecond a second)."""
    return clock.now() - clock.monotonic()


class WallSteps:
    """How far the wall clock has been set since this was made, and a time that never jumps.

    Why: presence counts silences in seconds. A Pi without a battery clock runs hours or days
    behind until the network (and NTP) comes back, perhaps mid-afternoon after an outage; every
    member inside then looked silent for the whole step and was "left" and "arrived" again,
    with a second reminder for an order already announced. Intervals are measured on
    :meth:`steady` (the wall time at start, moved on by the monotonic clock) and times shown
    or recorded are turned back into wall time by adding the step."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lead = wall_lead(clock)

    def __call__(self) -> float:
        """Seconds the wall clock has been set forward (negative: back) since start."""
        return wall_lead(self._clock) - self._lead

    def steady(self) -> float:
        """The wall time at start moved on by the monotonic clock: Unix-like, never stepped."""
        return self._clock.monotonic() + self._lead


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when a test moves it; sleepers wake when their deadline passes."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._origin = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._origin

    def step(self, seconds: float) -> None:
        """Set the wall clock ``seconds`` forward or back, as NTP does, leaving monotonic time
        and the sleepers (who wait on monotonic time, as asyncio's do) where they are."""
        self._now += seconds
        self._origin += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.monotonic() + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("a clock cannot move backwards")
        self._now += seconds
        now = self.monotonic()
        due = [(t, f) for t, f in self._sleepers if t <= now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > now]
        for _, future in sorted(due, key=lambda item: item[0]):
            if not future.done():
                future.set_result(None)
