"""Live stock changes for Server-Sent Events listeners.

Each listener has a bounded queue; a listener too slow to keep up loses its oldest changes rather
than making the shop hold memory for it, and is told so (a :class:`Resync`, reason ``lost``) before
the next change it gets: the stock endpoints always have the current numbers. A store restored from
a backup starts its seqs again below what listeners saw, so they are told that too (reason
``rewind``) rather than left to drop the new, lower seqs as stale.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sync.shop.store import StockRow

LISTENER_QUEUE = 1000


@dataclass(frozen=True)
class Resync:
    """Re-read the stock endpoints: changes were lost (``store`` None) or ``store`` rewound."""

    reason: str  # "lost" or "rewind"
    store: str | None = None
    lost: int = 0


class Listener:
    """One SSE client's queue of the changes it asked for (one store, one SKU, or all); ``None``
    from :meth:`get` means the shop is stopping."""

    def __init__(self, store: str | None = None, sku: str | None = None) -> None:
        self.store, self.sku = store, sku
        self._queue: asyncio.Queue[StockRow | Resync | None] = asyncio.Queue(
            maxsize=LISTENER_QUEUE
        )
        self._lost = 0

    def wants(self, store: str, sku: str | None = None) -> bool:
        return self.store in (None, store) and (sku is None or self.sku in (None, sku))

    def put(self, item: StockRow | Resync | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self._lost += 1
        self._queue.put_nowait(item)

    async def get(self) -> StockRow | Resync | None:
        """The next item; a ``lost`` resync first when changes were dropped since the last."""
        if self._lost:
            lost, self._lost = self._lost, 0
            return Resync("lost", lost=lost)
        return await self._queue.get()


class StockFeed:
    """Fan-out of stock rows to SSE listeners, on the event loop."""

    def __init__(self) -> None:
        self._listeners: set[Listener] = set()

    def listen(self, store: str | None = None, sku: str | None = None) -> Listener:
        listener = Listener(store, sku)
        self._listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def publish(self, rows: list[StockRow], rewound: frozenset[str] = frozenset()) -> None:
        for listener in self._listeners:
            for store in sorted(rewound):
                if listener.wants(store):
                    listener.put(Resync("rewind", store=store))
            for row in rows:
                if listener.wants(row.store, row.sku):
                    listener.put(row)

    def close(self) -> None:
        """End every listener's stream: the shop is stopping (their responses then end cleanly)."""
        for listener in self._listeners:
            listener.put(None)
