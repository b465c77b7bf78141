"""The shop's live stock stream: what a listener is told when it falls behind or a store is
restored, a quiet stream kept alive, filters checked, and a clean end when the shop stops."""

from __future__ import annotations

import asyncio

import pytest

from sync.shop import feed as feed_module
from sync.shop import web as shop_web
from sync.shop.feed import Resync, StockFeed
from sync.shop.store import StockRow
from tests.sync.conftest import SyncPair
from tests.sync.test_shop_api import call


def row(store: str, sku: str, seq: int) -> StockRow:
    return StockRow(store, sku, 10, 0, 10, seq)


async def test_a_listener_that_fell_behind_is_told_before_what_follows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: the oldest changes were dropped without a word, and seqs have gaps anyway (other
    event kinds), so a listener could not tell it had missed a change."""
    monkeypatch.setattr(feed_module, "LISTENER_QUEUE", 3)
    feed = StockFeed()
    listener = feed.listen()
    feed.publish([row("s1", "A", seq) for seq in range(1, 6)])
    got = [await listener.get() for _ in range(4)]
    assert got == [Resync("lost", lost=2), row("s1", "A", 3), row("s1", "A", 4),
                   row("s1", "A", 5)]


async def test_filters_keep_other_stores_from_crowding_a_listener_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "LISTENER_QUEUE", 3)
    feed = StockFeed()
    mine = feed.listen("s1", "A")
    feed.publish([row("s2", "A", 1), row("s1", "B", 2), row("s1", "A", 3), row("s2", "A", 4)],
                 rewound=frozenset({"s2"}))
    feed.publish([], rewound=frozenset({"s1"}))
    feed.close()
    assert [await mine.get() for _ in range(3)] == [row("s1", "A", 3), Resync("rewind", "s1"),
                                                    None]


async def test_the_stream_checks_its_filters(pair: SyncPair) -> None:
    """Why: '?store=NOPE!!' or a store that never reported gave an empty stream for ever."""
    assert pair.hub is not None
    await pair.settled()
    status, body = await call(pair, "GET", "/api/stock/stream?store=NOPE!!")
    assert (status, body["error"]["code"]) == (400, "invalid")
    status, body = await call(pair, "GET", "/api/stock/stream?store=nowhere")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await call(pair, "GET", "/api/stock/stream?sku=" + "x" * 200)
    assert status == 400


async def test_a_quiet_stream_is_kept_alive_and_ends_cleanly_when_the_shop_stops(
        pair: SyncPair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: a quiet stream sent nothing after ': connected' (gateways close idle streams), and a
    shop stopping cut it mid-chunk (the client saw a broken transfer encoding)."""
    assert pair.shop is not None
    await pair.settled()
    monkeypatch.setattr(shop_web, "STREAM_HEARTBEAT_S", 0.2)
    lines: list[bytes] = []

    async def listen() -> None:
        async with pair.http.get(f"{pair.shop.url}/api/stock/stream?sku=OAT-1") as response:
            async for line in response.content:  # ends without error only on a clean close
                lines.append(line)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(1.0)
    await pair.stop_shop()
    await asyncio.wait_for(listener, 10)
    assert lines[:2] == [b"retry: 3000\n", b": connected\n"]
    assert lines.count(b": keep-alive\n") >= 2
