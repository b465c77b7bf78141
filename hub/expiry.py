"""Background release of reservations whose pickup window has passed."""

from __future__ import annotations

import asyncio
import logging

from hub.clock import Clock
from hub.db import Database
from hub.orders import OrderService

log = logging.getLogger(__name__)
CHECK_EVERY_S = 60.0


class OrderExpiry:
    """Checks for expired orders once a minute (of the injected clock)."""

    def __init__(self, orders: OrderService, db: Database, clock: Clock) -> None:
        self.orders = orders
        self.db = db
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="order-expiry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> int:
        expired = await self.db.write(self.orders.expire_due)
        for order in expired:
            log.info("order %s expired; its reservation was released", order.id)
        return len(expired)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("order expiry check failed; retrying in %s s", CHECK_EVERY_S)
            await self.clock.sleep(CHECK_EVERY_S)
