"""Background release of reservations whose pickup window has passed."""

from __future__ import annotations

import logging

from hub.clock import Clock
from hub.db import Database
from hub.orders import OrderService
from hub.periodic import PeriodicJob

log = logging.getLogger(__name__)
CHECK_EVERY_S = 60.0


class OrderExpiry(PeriodicJob):
    """Checks for expired orders once a minute (of the injected clock)."""

    def __init__(self, orders: OrderService, db: Database, clock: Clock) -> None:
        super().__init__("order-expiry", CHECK_EVERY_S, clock, self.run_once)
        self.orders = orders
        self.db = db

    async def run_once(self) -> int:
        expired = await self.db.write(self.orders.expire_due)
        for order in expired:
            log.info("order %s expired; its reservation was released", order.id)
        return len(expired)
