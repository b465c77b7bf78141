"""Background release of reservations whose pickup window has passed, after moving the windows
with the clock when it has been set (see ``OrderService.follow_clock``)."""

from __future__ import annotations

import logging

from hub.clock import SETTLE_AFTER_START_S, Clock
from hub.db import Database
from hub.orders import OrderService
from hub.periodic import PeriodicJob

log = logging.getLogger(__name__)
CHECK_EVERY_S = 60.0


class OrderExpiry(PeriodicJob):
    """Checks for expired orders once a minute (of the injected clock), the first time a while
    after the start: a Pi started with its clock a year ahead expired every held order at
    once, for good, before NTP could set the clock right."""

    def __init__(self, orders: OrderService, db: Database, clock: Clock) -> None:
        super().__init__("order-expiry", CHECK_EVERY_S, clock, self.run_once,
                         first_after_s=SETTLE_AFTER_START_S)
        self.orders = orders
        self.db = db

    async def run_once(self) -> int:
        moved = await self.db.write(self.orders.follow_clock)  # first, or a step would end them
        if moved:
            log.warning("the clock has been set since the pickup windows of %d order(s) were "
                        "measured; they were moved with it", len(moved))
        expired = await self.db.write(self.orders.expire_due)
        for order in expired:
            log.info("order %s expired; its reservation was released", order.id)
        return len(expired)
