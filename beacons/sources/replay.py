"""A recorded (or simulated) trace played back as a source: as fast as possible, or in real time
against the injected clock's sleep so the hub experiences it as it happened."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from beacons.sources.base import AdvertisementSink
from beacons.trace import read_trace

YIELD_EVERY = 1000  # give the event loop a turn this often when replaying flat out


class ReplaySource:
    """Replays ``path``. In real time the gaps between advertisements are slept (injected sleep);
    otherwise the loop only yields now and then so the hub stays responsive."""

    def __init__(
        self,
        path: Path,
        *,
        realtime: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = f"replay:{path.name}"
        self.path = path
        self.realtime = realtime
        self._sleep = sleep
        self.count = 0

    async def run(self, sink: AdvertisementSink) -> None:
        """Deliver every advertisement of the trace, then return."""
        previous: float | None = None
        for adv in read_trace(self.path):
            if self.realtime and previous is not None and adv.t > previous:
                await self._sleep(adv.t - previous)
            elif self.count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            previous = adv.t
            self.count += 1
            sink(adv)
