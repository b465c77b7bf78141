"""Waiting for "something to do" or a timeout measured on the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


async def wait_or_sleep(event: asyncio.Event, sleep: Sleep, seconds: float) -> bool:
    """Wait until ``event`` is set or ``sleep(seconds)`` returns; True when the event won.

    The timeout goes through the injected sleep, so tests that move a manual clock decide when
    polling happens, while wake-ups through ``event`` stay immediate.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(sleep(seconds))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()
        await asyncio.gather(waiter, sleeper, return_exceptions=True)
    return event.is_set()
