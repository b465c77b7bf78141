"""In-process publish/subscribe of hub events (stock changed, order status, arrivals, reminders).

The staff feed, the kiosk's live stock and the sync agent listen here. Publishing is safe from any
thread (the database writer thread publishes after commit); delivery happens on the event loop.
A slow subscriber loses its oldest events rather than growing without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SUBSCRIBER_QUEUE = 1000


@dataclass(frozen=True)
class Event:
    """Something that happened in the store, as listeners see it."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """A bounded queue of the events one listener asked for."""

    def __init__(self, bus: EventBus, types: frozenset[str] | None) -> None:
        self._bus = bus
        self.types = types
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        if self.types is not None and event.type not in self.types:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._remove(self)


class EventBus:
    """Fan-out of events to subscribers on one event loop."""

    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop``; events published before binding are dropped (nobody listens)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def subscribe(self, types: Iterable[str] | None = None) -> Subscription:
        sub = Subscription(self, frozenset(types) if types is not None else None)
        self._subscribers.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber; callable from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._deliver(event)
        else:
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: Event) -> None:
        for sub in list(self._subscribers):
            sub.offer(event)
