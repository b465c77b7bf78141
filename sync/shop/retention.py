"""Deleting what the shop no longer needs, every ``[retention] check_every_s`` of its clock.

What goes, and why the rest stays:

* **Reminders** (who arrived where: personal data) ``reminders_days`` after the shop received
  them, 90 by default, as the hub deletes its copy (hub ``[retention] reminders_days``); not by
  the store's time, which is 1970 on a Pi started without a battery clock.
* **Answered commands** (``applied`` or ``rejected``) once answered longer ago than
  ``history_days + restore_window_days``. A pending command is never deleted: it is what the
  shop sends again on every birth and every ``resend_after_s``. An answered one is needed again
  only when its store is restored from a backup taken before the answer: the rewind makes every
  command whose ``command.result`` the restored history lacks pending again, since the restored
  store never saw it. A backup is at most ``restore_window_days`` old when restored (the hub's
  nightly timer keeps 14), and the restored store may reach the shop only after an outage, which
  the protocol allows to last the hub's ``sync_inbox_days`` (30): ``history_days``. An answer
  older than both predates any backup a store can come back from. (The hub's own duplicate
  guard, its ``sync_inbox``, is not involved: the shop never sends an answered command again
  except after such a rewind, to a store that lacks it.) ``GET /api/orders/{id}`` shows
  ``cancel: null`` once the order's cancel has gone.
* **Applied-event records** (``applied``, one per event: the duplicate guard) applied longer ago
  than the same window, at or below their store's watermark, except the newest such row of each
  store (its anchor). They are not needed below the watermark:
  - a copy of an event at or below the watermark is dropped as a duplicate before ``applied`` is
    looked at (``_apply_event``), so a pruned event delivered again is not applied twice;
  - rows above the watermark wait for the gap before them and the watermark's walk along
    ``prev`` needs them: never deleted;
  - restore detection needs the rows at the seqs a restored store writes again, which are above
    the backup's last seq; the rewind needs the newest row at or below that last seq
    (``keep``). A backup younger than the window holds every event applied before the window,
    the anchor included, so its last seq is at or above the anchor, and the anchor and every
    row after it are kept: the rewind is exact. (From an older backup, ``keep`` falls back to
    the business records, which hold the same seqs.)
* **Dead letters** after ``dead_letters_days``, **drift** records after ``drift_days``.

Stock movements, orders and their status history are business records, and events of other
types are kept as received (``other_events``): none is deleted here. Idempotency keys of orders
expire after 24 hours where they are used (``POST /api/orders``).

Each step deletes at most ``batch_rows`` rows of a table in one write transaction, and steps
repeat until nothing old is left, so a first run on a large database leaves room between steps
for the events being applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from sync.shop.config import ShopRetentionConfig
from sync.shop.store import PruneBefore, ShopStore
from sync.waiting import Sleep

log = logging.getLogger(__name__)
DAY_S = 86_400.0


def prune_before(config: ShopRetentionConfig, now: float) -> PruneBefore:
    """The cutoffs of ``config`` at ``now``."""
    return PruneBefore(reminders=now - config.reminders_days * DAY_S,
                       history=now - config.kept_history_days * DAY_S,
                       dead_letters=now - config.dead_letters_days * DAY_S,
                       drift=now - config.drift_days * DAY_S)


class ShopRetention:
    """Prunes the shop's database now and then every ``check_every_s`` of ``clock``."""

    def __init__(self, store: ShopStore, config: ShopRetentionConfig, *,
                 clock: Callable[[], float], sleep: Sleep) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="shop-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> dict[str, int]:
        """Delete everything old, a step at a time; returns how many rows went from each table."""
        before = prune_before(self.config, self.clock())
        total: Counter[str] = Counter()
        while True:
            step = await self.store.write(self.store.prune, before, self.config.batch_rows)
            total.update(step)
            if all(n < self.config.batch_rows for n in step.values()):
                break
        if any(total.values()):
            log.info("retention deleted %s", ", ".join(f"{n} {t}" for t, n in total.items() if n))
        return dict(total)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention failed; retrying in %s s", self.config.check_every_s)
            await self.sleep(self.config.check_every_s)
