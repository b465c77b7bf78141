"""How late the event loop runs what is due: the hub's responsiveness in one figure.

Why: the request timings start when a handler runs, so a stall of the whole loop showed nowhere
in /metrics while every kiosk, till and staff screen waited (a spoken question decoded with
the interpreter lock held froze the hub for 1.6 s on a slow core, and the hub's own histogram
still put 97 % of its answers under 50 ms). A task asks to wake every ``INTERVAL_S`` on the
loop's own clock and records how late it woke. Real time, not the injected clock: lateness is
what it measures, and a test that moves the clock has none.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

#: How often the loop is sampled, in seconds.
INTERVAL_S = 0.25


class LoopLagMonitor:
    """Records each sample's lateness in ``histogram`` while the hub runs."""

    def __init__(self, histogram: Histogram, interval_s: float = INTERVAL_S) -> None:
        self.histogram = histogram
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sample(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.histogram.observe(max(0.0, loop.time() - due))
