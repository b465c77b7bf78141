"""Live stock changes for Server-Sent Events listeners.

Each listener has a bounded queue; a listener too slow to keep up loses its oldest changes rather
than making the shop hold memory for it (the stock endpoints always have the current numbers).
"""

from __future__ import annotations

import asyncio

from sync.shop.store import StockRow

LISTENER_QUEUE = 1000


class StockFeed:
    """Fan-out of stock rows to SSE listeners, on the event loop."""

    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[StockRow]] = set()

    def listen(self) -> asyncio.Queue[StockRow]:
        queue: asyncio.Queue[StockRow] = asyncio.Queue(maxsize=LISTENER_QUEUE)
        self._listeners.add(queue)
        return queue

    def forget(self, queue: asyncio.Queue[StockRow]) -> None:
        self._listeners.discard(queue)

    def publish(self, rows: list[StockRow]) -> None:
        for queue in self._listeners:
            for row in rows:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(row)
