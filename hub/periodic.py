"""Background jobs that run every so often on the injected clock (order expiry, retention).

A failing run is logged and retried at the next interval, so one bad row never stops the job for
good; tests move the clock instead of sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hub.clock import Clock

log = logging.getLogger(__name__)


class PeriodicJob:
    """Runs ``job`` now and then every ``every_s`` seconds of ``clock`` while the hub runs."""

    def __init__(self, name: str, every_s: float, clock: Clock,
                 job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.every_s = every_s
        self.clock = clock
        self.job = job
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.job()
            except Exception:
                log.exception("%s failed; retrying in %s s", self.name, self.every_s)
            await self.clock.sleep(self.every_s)
