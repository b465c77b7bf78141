"""Background jobs that run every so often on the injected clock (order expiry, retention).

A failing run is retried at the next interval, so one bad row never stops the job for good; a
failure that repeats (a full disk) is logged once with a count, not once a run. Tests move the
clock instead of sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hub.clock import Clock
from sync.failures import FailureLog

log = logging.getLogger(__name__)


class PeriodicJob:
    """Runs ``job`` after ``first_after_s`` and then every ``every_s`` seconds of ``clock``
    while the hub runs."""

    def __init__(self, name: str, every_s: float, clock: Clock,
                 job: Callable[[], Awaitable[object]], first_after_s: float = 0.0) -> None:
        self.name = name
        self.every_s = every_s
        self.first_after_s = first_after_s
        self.clock = clock
        self.job = job
        self._task: asyncio.Task[None] | None = None
        # a count every ten runs: a job of a minute would otherwise log each run
        self._failures = FailureLog(log, name, clock.monotonic, summary_every_s=10 * every_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        if self.first_after_s > 0:
            await self.clock.sleep(self.first_after_s)
        while True:
            try:
                await self.job()
            except Exception as exc:  # noqa: BLE001 - logged, and tried again next time
                self._failures.failed(exc, "%s failed; retrying every %s s", self.name,
                                      self.every_s)
            else:
                self._failures.succeeded()
            await self.clock.sleep(self.every_s)
