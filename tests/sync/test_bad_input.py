"""Bad input on either end becomes a dead letter with its reason and a metric; the loop goes on
and applies the next good message."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from sync.envelope import build, new_id
from sync.topics import StoreTopics
from tests.sync.conftest import RawClient, SyncPair, applied, wait_until


def metric(text: str, name: str, reason: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_bad_commands_become_dead_letters_and_the_hub_goes_on(pair: SyncPair) -> None:
    assert pair.hub is not None
    svc = pair.hub.services
    topics = StoreTopics("retail", pair.store)
    raw = RawClient(pair.broker.port, "intruder")
    place = {"id": "bad-1", "lines": [{"sku": "OAT-1", "qty": 1}]}
    unknown_id, invalid_id = new_id(), new_id()
    try:
        raw.publish(topics.cmd, b"{not json")
        raw.publish(topics.cmd, json.dumps({"id": "x", "store": pair.store}).encode())
        raw.publish(topics.cmd, b"[" * 10 + b"1" + b"]" * 10)
        raw.publish(topics.cmd, json.dumps({"pad": "x" * 600_000}).encode())
        raw.publish(topics.cmd, build(store=pair.store, epoch=0, seq=1, type_="order.teleport",
                                      ts=0.0, data={}, msg_id=unknown_id))
        raw.publish(topics.cmd, build(store=pair.store, epoch=0, seq=2, type_="order.place",
                                      ts=0.0, data={"id": "bad-2"}, msg_id=invalid_id))
        raw.publish(topics.cmd, build(store="other-store", epoch=0, seq=3,
                                      type_="order.place", ts=0.0, data=place))
        good = build(store=pair.store, epoch=0, seq=4, type_="order.place", ts=0.0, data=place)
        raw.publish(topics.cmd, good)
        raw.publish(topics.cmd, good)  # the same command again: applied once

        order = await wait_until(lambda: _order(pair, "bad-1"), what="the good command applied")
        assert order["state"] == "accepted"
        letters = await wait_until(lambda: _dead_letters(pair, 7), what="seven dead letters")
        assert [reason for reason, _ in letters] == [
            "malformed_json", "invalid_envelope", "invalid_envelope", "too_large",
            "unknown_type", "invalid_data", "wrong_store"]
        assert all(size > 0 for _, size in letters)
        text = svc.metrics.render().decode()
        for reason in ("malformed_json", "invalid_envelope", "too_large", "unknown_type",
                       "invalid_data", "wrong_store"):
            assert metric(text, "hub_sync_dead_letters_total", reason) >= 1, reason
        inbox = await svc.db.read(svc.db.query, "SELECT command_id, type, status, reason "
                                  "FROM sync_inbox ORDER BY received_at")
        by_id = {row["command_id"]: row for row in inbox}
        assert by_id[unknown_id]["status"] == "rejected"
        assert "unknown command type" in by_id[unknown_id]["reason"]
        assert by_id[invalid_id]["status"] == "rejected"
        placed = [row["status"] for row in inbox if row["type"] == "order.place"]
        assert placed == ["rejected", "applied"]
        orders = await svc.db.read(svc.orders.list, None, None, 100)
        assert [o.id for o in orders] == ["bad-1"]
        await pair.settled()
    finally:
        raw.close()


async def test_a_command_that_gives_a_key_twice_is_rejected_not_guessed(pair: SyncPair) -> None:
    """Why: msgspec kept the last of two keys, so a command read "qty": 1, "qty": 100 as 100
    while the shop, or a tool that reads the first, meant 1. A repeat in data is rejected (the
    shop hears why); one in the envelope is a dead letter."""
    assert pair.hub is not None
    svc = pair.hub.services
    topics = StoreTopics("retail", pair.store)
    raw = RawClient(pair.broker.port, "intruder")
    twice_id = new_id()
    try:
        raw.publish(topics.cmd, build(
            store=pair.store, epoch=0, seq=1, type_="order.place", ts=0.0, msg_id=twice_id,
            data=b'{"id":"twice-1","lines":[{"sku":"OAT-1","qty":1,"qty":100}]}'))
        place = build(store=pair.store, epoch=0, seq=2, type_="order.place", ts=0.0,
                      data={"id": "twice-2", "lines": [{"sku": "OAT-1", "qty": 1}]})
        raw.publish(topics.cmd, place.replace(b'"seq":2', b'"seq":2,"seq":3'))
        letters = await wait_until(lambda: _dead_letters(pair, 2), what="two dead letters")
        assert [reason for reason, _ in letters] == ["invalid_data", "invalid_envelope"]
        messages = await svc.db.read(svc.db.query, "SELECT message FROM sync_dead_letters "
                                     "ORDER BY id")
        assert [row["message"] for row in messages] == [
            'order.place: the key "qty" appears twice in one object',
            'the key "seq" appears twice in the envelope']
        inbox = await svc.db.read(svc.db.query, "SELECT status, reason FROM sync_inbox "
                                  "WHERE command_id = ?", (twice_id,))
        assert [(r["status"], r["reason"]) for r in inbox] == [
            ("rejected", 'order.place: the key "qty" appears twice in one object')]
        assert await svc.db.read(svc.orders.list, None, None, 100) == []
    finally:
        raw.close()


async def test_the_broker_is_asked_not_to_deliver_what_would_fill_the_hubs_memory(
        pair: SyncPair) -> None:
    """Why: a 250 MiB command was read whole (the hub at 1 GB) before it was refused as too
    large. Over twice ``max_payload_bytes`` the broker now drops it (MQTT 5 Maximum Packet
    Size); one just over the limit still arrives and is dead-lettered with its reason."""
    assert pair.hub is not None
    topics = StoreTopics("retail", pair.store)
    raw = RawClient(pair.broker.port, "flooder")
    try:
        raw.publish(topics.cmd, b"x" * (3 * 1024 * 1024))
        raw.publish(topics.cmd, b"y" * (700 * 1024))
        letters = await wait_until(lambda: _dead_letters(pair, 1), what="a dead letter")
        await asyncio.sleep(0.5)  # nothing else comes
        assert await _dead_letters(pair, 1) == letters == [("too_large", 700 * 1024)]
    finally:
        raw.close()


async def _order(pair: SyncPair, order_id: str) -> dict[str, object] | None:
    assert pair.hub is not None
    svc = pair.hub.services
    rows = await svc.db.read(svc.orders.list, None, None, 100)
    found = [o for o in rows if o.id == order_id]
    return found[0].to_json() if found else None


async def _dead_letters(pair: SyncPair, count: int) -> list[tuple[str, int]] | None:
    assert pair.hub is not None
    svc = pair.hub.services
    rows = await svc.db.read(svc.db.query, "SELECT reason, size FROM sync_dead_letters "
                             "ORDER BY id")
    return [(r["reason"], r["size"]) for r in rows] if len(rows) >= count else None


async def test_bad_events_become_dead_letters_at_the_shop(pair: SyncPair) -> None:
    """A store (here an impostor named 'ghost') sending broken events cannot stall the shop."""
    assert pair.shop is not None
    ghost = StoreTopics("retail", "ghost")
    raw = RawClient(pair.broker.port, "ghost")
    movement = {"movement_id": "m1", "seq": 2, "sku": "OAT-1", "qty": -1, "reserved_qty": 0,
                "reason": "sale", "ts": 1.0, "on_hand": 9, "reserved": 0, "available": 9}
    try:
        raw.publish(ghost.event("stock.movement"), b"\xff\xfe not json")
        raw.publish(ghost.event("stock.movement"), json.dumps({"seq": 1}).encode())
        raw.publish(ghost.event("stock.movement"), b" " * 600_000)
        raw.publish(ghost.event("stock.movement"), build(  # no prev: cannot be ordered
            store="ghost", epoch=1, seq=1, type_="stock.movement", ts=1.0, data=movement))
        raw.publish(ghost.event("stock.movement"), build(  # wrong data: dead, stream goes on
            store="ghost", epoch=1, seq=1, type_="stock.movement", ts=1.0, data={"sku": 5},
            prev=0))
        raw.publish(ghost.event("stock.movement"), build(
            store="ghost", epoch=1, seq=2, type_="stock.movement", ts=1.0, data=movement, prev=1))
        raw.publish(ghost.event("gift.card"), build(  # a type from a newer hub: kept
            store="ghost", epoch=1, seq=3, type_="gift.card", ts=1.0, data={"x": 1}, prev=2))
        raw.publish(ghost.state, build(store="ghost", epoch=1, seq=3, type_="stock.movement",
                                       ts=1.0, data=movement))

        view = await wait_until(lambda: _ghost_view(pair), what="the good event applied")
        assert view["on_hand"] == 9 and view["seq"] == 2
        conn = sqlite3.connect(pair.shop_db)
        try:
            await wait_until(lambda: conn.execute(
                "SELECT count(*) FROM dead_letters").fetchone()[0] >= 6, what="dead letters")
            await applied(pair.shop)  # the letters are counted after they are committed
            reasons = [r for (r,) in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]
            watermark = conn.execute("SELECT watermark FROM stores WHERE store = 'ghost'"
                                     ).fetchone()[0]
            kept = conn.execute("SELECT type, data FROM other_events WHERE store = 'ghost'"
                                ).fetchall()
        finally:
            conn.close()
        assert reasons == ["malformed_json", "invalid_envelope", "too_large", "invalid_envelope",
                           "invalid_data", "unexpected_topic"]
        assert watermark == 3
        assert kept == [("gift.card", '{"x":1}')]
        text = (await _metrics(pair))
        for reason in set(reasons):
            assert metric(text, "shop_sync_dead_letters_total", reason) >= 1, reason
    finally:
        raw.close()


async def test_an_event_that_gives_a_key_twice_is_a_dead_letter_and_the_stream_goes_on(
        pair: SyncPair) -> None:
    """Why: the shop read "qty": -1, "qty": -100 as -100 without a word. The event's envelope
    is good, so it is recorded (the next one is not held back for it) and set aside as
    invalid_data, as any event whose data is wrong."""
    assert pair.shop is not None
    ghost = StoreTopics("retail", "ghost")
    raw = RawClient(pair.broker.port, "ghost")
    movement = {"movement_id": "m2", "seq": 2, "sku": "OAT-1", "qty": -1, "reserved_qty": 0,
                "reason": "sale", "ts": 1.0, "on_hand": 9, "reserved": 0, "available": 9}
    twice = json.dumps({**movement, "movement_id": "m1", "seq": 1}, separators=(",", ":"))
    try:
        raw.publish(ghost.event("stock.movement"), build(
            store="ghost", epoch=1, seq=1, type_="stock.movement", ts=1.0, prev=0,
            data=twice.replace('"qty":-1', '"qty":-1,"qty":-100').encode()))
        raw.publish(ghost.event("stock.movement"), build(
            store="ghost", epoch=1, seq=2, type_="stock.movement", ts=1.0, data=movement, prev=1))
        view = await wait_until(lambda: _ghost_view(pair), what="the good event applied")
        assert view["on_hand"] == 9 and view["seq"] == 2
        await applied(pair.shop)
        conn = sqlite3.connect(pair.shop_db)
        try:
            letters = conn.execute("SELECT reason, message FROM dead_letters").fetchall()
            watermark = conn.execute("SELECT watermark FROM stores WHERE store = 'ghost'"
                                     ).fetchone()[0]
        finally:
            conn.close()
        assert letters == [("invalid_data",
                            'stock.movement: the key "qty" appears twice in one object')]
        assert watermark == 2
    finally:
        raw.close()


async def _ghost_view(pair: SyncPair) -> dict[str, object] | None:
    assert pair.shop is not None
    async with pair.http.get(f"{pair.shop.url}/api/stores/ghost/stock/OAT-1") as response:
        return await response.json() if response.status == 200 else None


async def _metrics(pair: SyncPair) -> str:
    assert pair.shop is not None
    async with pair.http.get(f"{pair.shop.url}/metrics") as response:
        return await response.text()
