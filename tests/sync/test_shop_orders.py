"""The shop's orders API as a back end integrates it: retried placements (Idempotency-Key).
Exchanges go through ``exchange``, so each is also checked against docs/shop-openapi.yaml."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.app import start_hub
from sync.envelope import build, new_id
from sync.shop.service import ShopService
from sync.shop.store import OrderKey, ShopStore
from sync.topics import StoreTopics
from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import (
    STORE,
    RawClient,
    SyncPair,
    hub_config,
    shop_config,
    wait_until,
)
from tests.sync.test_restore import acked_to_the_end
from tests.sync.test_shop_api import exchange
from tests.sync.test_shop_rewind import order_event


def _order(member: str = "m-1", qty: int = 3) -> dict[str, Any]:
    return {"store": STORE, "member": member, "lines": [{"sku": "OAT-1", "qty": qty}]}


async def test_a_retried_order_with_an_idempotency_key_is_placed_once(pair: SyncPair) -> None:
    assert pair.hub is not None
    key = {"Idempotency-Key": "0b9f6a4e-3c52-4c1e-9d7a-5a8e2f1c7b10"}
    status, first, headers = await exchange(pair, "POST", "/api/orders", _order(), headers=key)
    assert status == 202 and "Idempotent-Replayed" not in headers
    # The client timed out and sends the same request again, key and all.
    status, again, headers = await exchange(pair, "POST", "/api/orders", _order(), headers=key)
    assert status == 202 and again == first and headers["Idempotent-Replayed"] == "true"

    # The same key with another body is a client bug: refused, naming the order the key made.
    status, error, _ = await exchange(pair, "POST", "/api/orders", _order(qty=4), headers=key)
    assert status == 409 and error["error"]["code"] == "idempotency_key_reused"
    assert first["id"] in error["error"]["message"]
    # Keys belong to the member placing the order: another member's same key is its own order.
    status, other, headers = await exchange(pair, "POST", "/api/orders", _order("m-2", 1),
                                            headers=key)
    assert status == 202 and other["id"] != first["id"] and "Idempotent-Replayed" not in headers

    svc = pair.hub.services

    async def both_accepted() -> bool:
        held = await svc.db.read(svc.orders.list, "accepted", None, 100)
        return len(held) == 2

    await wait_until(both_accepted, what="the two orders accepted at the store")
    await pair.settled()
    held = await svc.db.read(svc.orders.list, None, None, 100)
    assert sorted(o.id for o in held) == sorted([first["id"], other["id"]])
    status, stock, _ = await exchange(pair, "GET", f"/api/stores/{STORE}/stock/OAT-1")
    assert stock["reserved"] == 3 + 1  # reserved once for the retried order
    assert pair.shop_sql("SELECT count(*) FROM commands WHERE type = 'order.place'") == [(2,)]


@pytest.mark.parametrize("store_online", [True, False], ids=["store-online", "store-offline"])
async def test_a_retry_after_the_shop_lost_its_key_names_the_same_order(
        pair: SyncPair, store_online: bool) -> None:
    """Why: a shop restored from a backup taken before an order's first request had lost its
    Idempotency-Key; the member's app sent the request again (its answer was lost in the
    failure) and got a second order, a second reservation at the store. The order a key makes
    has an id derived from the key and the request, so the retry names the same order: given
    back when the store's status has brought it back, else asked of the store again, which
    takes the same id with the same contents once."""
    await pair.settled()
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")
    saved = await pair.back_up_shop()
    key = {"Idempotency-Key": "5c0a7e2e-8f7e-4d0b-a7a9-6f8e1d2c3b4a"}
    status, first, _ = await exchange(pair, "POST", "/api/orders", _order(), headers=key)
    assert status == 202

    def shop_state() -> str | None:
        rows = pair.shop_sql("SELECT state FROM orders WHERE id = ?", first["id"])
        return str(rows[0][0]) if rows else None

    await wait_until(lambda: shop_state() == "accepted", 30, "the order accepted at the shop")
    await pair.settled()
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")

    await pair.put_back_shop(saved)
    if not store_online:
        await pair.stop_hub()
    await pair.start_shop()
    assert shop_state() is None or store_online  # the backup never had it
    if store_online:
        await wait_until(lambda: shop_state() == "accepted", 30, "the order back from the store")
    status, again, headers = await exchange(pair, "POST", "/api/orders", _order(), headers=key)
    assert status == 202 and again["id"] == first["id"]
    assert (headers.get("Idempotent-Replayed") == "true") is store_online
    if not store_online:
        await pair.start_hub()
        await wait_until(lambda: shop_state() == "accepted", 30, "the order accepted again")
    assert pair.hub is not None
    hub = pair.hub.services.db
    assert hub.query("SELECT id FROM orders") == [{"id": first["id"]}]
    [oat] = hub.query("SELECT reserved FROM stock WHERE sku = 'OAT-1'")
    assert oat["reserved"] == 3  # reserved once


async def test_a_malformed_idempotency_key_is_refused(pair: SyncPair) -> None:
    for bad in ("short", "has space in it", "x" * 256, "ключ-ключ-ключ"):
        status, error, _ = await exchange(pair, "POST", "/api/orders", _order(),
                                          headers={"Idempotency-Key": bad})
        assert status == 400 and "Idempotency-Key" in error["error"]["message"], bad
    assert pair.shop_sql("SELECT count(*) FROM orders") == [(0,)]
    # Without a key, every request is an order of its own (as before).
    for _ in range(2):
        assert (await exchange(pair, "POST", "/api/orders", _order()))[0] == 202
    assert pair.shop_sql("SELECT count(*) FROM orders") == [(2,)]


async def test_two_shop_instances_make_one_order_of_concurrent_retries(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Two instances on one database, the same keyed request sent to both at once: one order,
    and every answer names it."""
    pair = SyncPair(tmp_path, mosquitto)
    await pair.start_shop()
    assert pair.shop is not None
    pair.shop_sql("INSERT INTO stores (store) VALUES (?)", STORE)
    second = ShopService(shop_config(tmp_path / "shop", mosquitto.port).model_copy(
        update={"mqtt": pair.shop.config.mqtt.model_copy(update={"client_id": "shop-2"})}))
    await second.start()
    try:
        urls = [pair.shop.url, second.url] * 5
        key = {"Idempotency-Key": "01JDQ3ZK6B8W1T9V4C2X7N5M0P"}
        answers = await asyncio.gather(*(
            exchange(pair, "POST", "/api/orders", _order(), headers=key, url=url)
            for url in urls))
        assert {status for status, _, _ in answers} == {202}
        assert len({body["id"] for _, body, _ in answers}) == 1
        assert sum("Idempotent-Replayed" not in headers for _, _, headers in answers) == 1
        assert pair.shop_sql("SELECT count(*) FROM orders") == [(1,)]
        assert pair.shop_sql("SELECT count(*) FROM commands") == [(1,)]
    finally:
        await second.stop()
        await pair.close()


def test_a_database_from_before_keys_takes_keyed_orders(tmp_path: Path) -> None:
    """An existing database (no order_keys table) gets it when the shop starts; its orders
    stay as they were."""
    path = tmp_path / "shop.db"
    store = ShopStore(path)
    try:
        store.create_schema()
        conn = store._conn()
        conn.execute("INSERT INTO stores (store) VALUES (?)", (STORE,))
        store.place_order("o-old", STORE, "m-1", [{"sku": "OAT-1", "qty": 1}], 1.0)
        conn.execute("DROP TABLE order_keys")
    finally:
        store.close()
    store = ShopStore(path)
    try:
        store.create_schema()
        key = OrderKey("key-0001", "a" * 64, kept_since=0.0)
        first = store.place_order("o-1", STORE, "m-1", [{"sku": "OAT-1", "qty": 1}], 2.0, key)
        again = store.place_order("o-2", STORE, "m-1", [{"sku": "OAT-1", "qty": 1}], 3.0, key)
        assert first.command is not None and again.command is None
        assert again.order_id == first.order_id == key.order_id("m-1")
        # A key older than the time it is kept is forgotten: the request makes a new order
        # (with the id it was given, as the key's own is taken).
        later = store.place_order("o-3", STORE, "m-1", [{"sku": "OAT-1", "qty": 1}], 9.0,
                                  OrderKey("key-0001", "a" * 64, kept_since=5.0))
        assert later.order_id == "o-3" and later.command is not None
        assert {r[0] for r in store._conn().execute("SELECT id FROM orders")} == {
            first.order_id, "o-3", "o-old"}
    finally:
        store.close()


async def _state(pair: SyncPair, order_id: str, state: str) -> dict[str, Any] | None:
    status, order, _ = await exchange(pair, "GET", f"/api/orders/{order_id}")
    assert status == 200
    return order if order["state"] == state else None


async def test_a_cancel_the_store_would_refuse_is_409_and_a_refused_one_is_shown(
        pair: SyncPair) -> None:
    assert pair.hub is not None and pair.hub.services.sync is not None
    svc = pair.hub.services
    _, placed, _ = await exchange(pair, "POST", "/api/orders", _order(qty=1))
    order = await wait_until(lambda: _state(pair, placed["id"], "accepted"), what="accepted")
    assert order["cancel"] is None
    status, _, _ = await exchange(pair, "POST", f"/api/orders/{placed['id']}/cancel", {})
    assert status == 202
    order = await wait_until(lambda: _state(pair, placed["id"], "cancelled"), what="cancelled")
    assert order["cancel"]["status"] == "applied" and order["cancel"]["reason"] is None
    # Cancelled is final: a second cancel is refused at once, and nothing goes to the store.
    status, error, _ = await exchange(pair, "POST", f"/api/orders/{placed['id']}/cancel", {})
    assert status == 409 and error["error"]["code"] == "order_final"
    assert "already cancelled" in error["error"]["message"]
    assert pair.shop_sql("SELECT count(*) FROM commands WHERE type = 'order.cancel'") == [(1,)]

    # The member collects an order while the store's link is down; the shop, not knowing yet,
    # takes a cancel for it, which the store refuses once the link is back.
    _, placed, _ = await exchange(pair, "POST", "/api/orders", _order(qty=2))
    await wait_until(lambda: _state(pair, placed["id"], "accepted"), what="accepted")
    await svc.sync.stop()
    await svc.db.write(svc.orders.mark_ready, placed["id"])
    await svc.db.write(svc.orders.collect, placed["id"])
    status, answer, _ = await exchange(pair, "POST", f"/api/orders/{placed['id']}/cancel",
                                       {"reason": "changed my mind"})
    assert status == 202 and answer["state"] == "accepted"
    _, order, _ = await exchange(pair, "GET", f"/api/orders/{placed['id']}")
    assert order["cancel"]["status"] == "pending"
    await svc.sync.start()

    async def refused() -> dict[str, Any] | None:
        order = await _state(pair, placed["id"], "collected")
        return order if order and order["cancel"]["status"] == "rejected" else None

    order = await wait_until(refused, what="the store's refusal in the order")
    assert "collected" in order["cancel"]["reason"]
    status, error, _ = await exchange(pair, "POST", f"/api/orders/{placed['id']}/cancel", {})
    assert status == 409 and "already collected" in error["error"]["message"]
    await pair.settled()


async def test_a_rejected_order_says_why_in_a_code_the_mini_program_can_act_on(
        pair: SyncPair) -> None:
    """Why: the mini-program had only the store's English reason to decide what to tell the
    member (order fewer, not sold at this store, the store declined, the order was refused)."""
    assert pair.hub is not None
    svc = pair.hub.services
    shown = {}

    async def rejected(name: str, lines: list[dict[str, Any]]) -> None:
        _, placed, _ = await exchange(pair, "POST", "/api/orders", {**_order(), "lines": lines})
        shown[name] = await wait_until(lambda: _state(pair, placed["id"], "rejected"),
                                       what=f"the {name} order rejected")

    await rejected("short", [{"sku": "OAT-1", "qty": 60}])
    await rejected("unknown", [{"sku": "NOPE-1", "qty": 1}])
    await rejected("both", [{"sku": "OAT-1", "qty": 60}, {"sku": "NOPE-1", "qty": 1}])
    svc.orders.config.max_line_qty = 5  # the store takes fewer units than the shop lets through
    await rejected("refused", [{"sku": "OAT-1", "qty": 6}])
    svc.orders.config.auto_accept = False
    _, placed, _ = await exchange(pair, "POST", "/api/orders", _order(qty=1))
    await wait_until(lambda: _state(pair, placed["id"], "pending"), what="the order pending")
    await svc.db.write(svc.orders.transition, placed["id"], "rejected")
    shown["declined"] = await wait_until(lambda: _state(pair, placed["id"], "rejected"),
                                         what="the declined order rejected")

    assert {name: order["reason_code"] for name, order in shown.items()} == {
        "short": "out_of_stock", "unknown": "not_sold_here", "both": "not_sold_here",
        "refused": "invalid_order", "declined": "staff"}
    assert shown["short"]["reason"] == "not enough stock: OAT-1 (wanted 60, available 50)"
    assert "at most 5 units" in shown["refused"]["reason"]
    assert shown["refused"]["history"] == []  # the store never held it
    assert [(h["state"], h["reason_code"]) for h in shown["declined"]["history"]] == [
        ("pending", None), ("rejected", "staff")]
    await pair.settled()


async def test_two_stores_orders_with_one_id_stay_apart(pair: SyncPair) -> None:
    """Staff at two stores both take counter order "counter-1": the shop keeps two orders, and
    asks which one when the id alone does not say."""
    assert pair.hub is not None
    other = await start_hub(hub_config(pair.folder / "hub-b", pair.broker.port, store="store-b"))
    try:
        await pair.reported("store-b")
        await pair.hub_api("POST", "/api/orders", {"id": "counter-1", "member": "m-1",
                                                   "lines": [{"sku": "OAT-1", "qty": 2}]})
        async with pair.http.post(other.url + "/api/orders", headers=pair.staff, json={
                "id": "counter-1", "lines": [{"sku": "NOPE-1", "qty": 1}]}) as response:
            assert response.status == 201, await response.text()

        async def both() -> bool:
            return len(pair.shop_sql("SELECT store FROM orders WHERE id = 'counter-1'")) == 2

        await wait_until(both, what="both stores' counter-1 at the shop")
        status, error, _ = await exchange(pair, "GET", "/api/orders/counter-1")
        assert status == 409 and error["error"]["code"] == "ambiguous_order"
        assert "store-1, store-b" in error["error"]["message"]
        status, error, _ = await exchange(pair, "POST", "/api/orders/counter-1/cancel", {})
        assert status == 409 and error["error"]["code"] == "ambiguous_order"

        mine = await wait_until(lambda: _state_at(pair, STORE, "accepted"), what="accepted")
        theirs = await wait_until(lambda: _state_at(pair, "store-b", "rejected"), what="rejected")
        assert mine["lines"] == [{"sku": "OAT-1", "qty": 2}] and mine["member"] == "m-1"
        assert theirs["lines"] == [{"sku": "NOPE-1", "qty": 1}] and theirs["member"] is None
        assert [h["state"] for h in mine["history"]] == ["pending", "accepted"]
        assert [h["state"] for h in theirs["history"]] == ["pending", "rejected"]
        # A cancel reaches the store named, and only that one.
        status, _, _ = await exchange(pair, "POST", f"/api/orders/counter-1/cancel?store={STORE}",
                                      {})
        assert status == 202
        await wait_until(lambda: _state_at(pair, STORE, "cancelled"), what="cancelled")
        assert (await other.services.db.read(other.services.orders.get, "counter-1")
                ).state == "rejected"
        assert (await exchange(pair, "GET", "/api/orders/counter-1?store=nowhere"))[0] == 404
    finally:
        await other.stop()


async def _state_at(pair: SyncPair, store: str, state: str) -> dict[str, Any] | None:
    status, order, _ = await exchange(pair, "GET", f"/api/orders/counter-1?store={store}")
    assert status == 200 and order["store"] == store
    return order if order["state"] == state else None


def test_a_database_with_orders_keyed_by_id_is_rebuilt_keyed_by_store(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE orders (id TEXT PRIMARY KEY, store TEXT NOT NULL, member TEXT,
            state TEXT NOT NULL, reason TEXT, lines TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
            pickup_by REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
        INSERT INTO orders (id, store, state, lines, created_at, updated_at)
            VALUES ('counter-1', 'store-1', 'accepted', '[]', 1, 1);
    """)
    conn.close()
    store = ShopStore(path)
    try:
        store.create_schema()
        conn = store._conn()
        conn.execute("INSERT INTO orders (id, store, state, lines, created_at, updated_at) "
                     "VALUES ('counter-1', 'store-b', 'pending', '[]', 2, 2)")
        assert store.order_stores("counter-1") == ["store-1", "store-b"]
        assert store.order("counter-1", "store-1")["state"] == "accepted"  # type: ignore[index]
    finally:
        store.close()


def test_a_database_from_before_reason_codes_gets_them_on_start(tmp_path: Path) -> None:
    """Its orders and order events get a null code; what the stores send next carries one."""
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE orders (id TEXT NOT NULL, store TEXT NOT NULL, member TEXT,
            state TEXT NOT NULL, reason TEXT, lines TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
            pickup_by REAL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (store, id));
        CREATE TABLE order_events (store TEXT NOT NULL, seq INTEGER NOT NULL,
            order_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, ts REAL NOT NULL,
            PRIMARY KEY (store, seq));
        INSERT INTO orders (id, store, state, reason, lines, seq, created_at, updated_at)
            VALUES ('o-old', 'store-1', 'rejected', 'not sold in this store: X', '[]', 1, 1, 1);
        INSERT INTO order_events VALUES ('store-1', 1, 'o-old', 'rejected',
            'not sold in this store: X', 1);
    """)
    conn.close()
    store = ShopStore(path)
    try:
        store.create_schema()
        store.apply_batch([order_event(1, 2, "o-new", "rejected", reason_code="staff")], 2.0)
        old, new = (store.order(order_id, STORE) for order_id in ("o-old", "o-new"))
        assert old is not None and new is not None
        assert (old["reason_code"], old["history"][0]["reason_code"]) == (None, None)
        assert (new["reason_code"], new["history"][0]["reason_code"]) == ("staff", "staff")
    finally:
        store.close()


async def test_a_members_call_acts_only_for_that_member(pair: SyncPair) -> None:
    """Why: every member's path trusted its caller: anything that reached the service read and
    cancelled another member's order, opted them out and got their beacon key (found by a
    security review). The gateway names the member in X-Member-Id; the back office sends none."""
    ann, bob = {"X-Member-Id": "m-1"}, {"X-Member-Id": "m-2"}
    status, placed, _ = await exchange(pair, "POST", "/api/orders", _order("m-1", 1), headers=ann)
    assert status == 202
    status, error, _ = await exchange(pair, "POST", "/api/orders", _order("m-1", 1), headers=bob)
    assert (status, error["error"]["code"]) == (403, "forbidden")
    order = f"/api/orders/{placed['id']}"
    assert (await exchange(pair, "GET", order, headers=ann))[0] == 200
    status, hidden, _ = await exchange(pair, "GET", order, headers=bob)
    assert (status, hidden["error"]["code"]) == (404, "not_found")
    status, _, _ = await exchange(pair, "POST", f"{order}/cancel", {"reason": "not mine"},
                                  headers=bob)
    assert status == 404
    status, opted, _ = await exchange(pair, "POST", "/api/members/m-1/opt-in",
                                      {"store": STORE}, headers=ann)
    assert status == 202 and len(opted["beacon_key"]) == 32
    for method, path, body in (("POST", "/api/members/m-1/opt-in", {"store": STORE}),
                               ("POST", "/api/members/m-1/opt-out", {"store": STORE}),
                               ("POST", "/api/members/m-1/withdraw", None),
                               ("GET", "/api/members/m-1/reminders", None)):
        status, error, _ = await exchange(pair, method, path, body, headers=bob)
        assert (status, error["error"]["code"]) == (403, "forbidden"), path
        assert "beacon_key" not in error
    status, error, _ = await exchange(pair, "GET", order, headers={"X-Member-Id": "m 1"})
    assert (status, error["error"]["code"]) == (400, "invalid")
    # the shop's back office (no header) acts for anyone
    assert (await exchange(pair, "GET", order))[0] == 200
    assert (await exchange(pair, "POST", f"{order}/cancel", {"reason": "stock"}))[0] == 202
    await pair.settled()


async def test_a_cancel_that_overtakes_its_order_cancels_it_on_arrival(pair: SyncPair) -> None:
    """Why: the shop sends an order's placing and its cancel as separate commands, and a
    placing that failed at the store (its database busy past the timeout) is sent again after
    the cancel. The cancel was refused as "no order with id", for good, and the order, arriving
    ten seconds later, held its stock for the whole pickup window."""
    assert pair.hub is not None
    svc = pair.hub.services
    topics = StoreTopics("retail", STORE)
    raw = RawClient(pair.broker.port, "catalogue-service")  # the shop's rights, as the broker sees
    cancel_id, place_id = new_id(), new_id()
    try:
        raw.publish(topics.cmd, build(store=STORE, epoch=0, seq=1, type_="order.cancel", ts=0.0,
                                      data={"id": "late-1", "reason": "changed my mind"},
                                      msg_id=cancel_id))
        raw.publish(topics.cmd, build(store=STORE, epoch=0, seq=2, type_="order.place", ts=0.0,
                                      data={"id": "late-1", "lines": [{"sku": "OAT-1", "qty": 2}]},
                                      msg_id=place_id))

        async def cancelled() -> Any:
            orders = await svc.db.read(svc.orders.list, None, None, 10)
            return [o for o in orders if o.id == "late-1" and o.state == "cancelled"] or None

        (order,) = await wait_until(cancelled, what="the order cancelled on arrival")
        assert order.reason == "changed my mind"
        results = {r["command_id"]: r for r in svc.db.query(
            "SELECT command_id, status, reason FROM sync_inbox")}
        assert results[cancel_id]["status"] == "applied"
        assert "should it come, it is cancelled at once" in results[cancel_id]["reason"]
        assert results[place_id]["status"] == "applied"
        stock = svc.db.query("SELECT reserved FROM stock WHERE sku = 'OAT-1'")
        assert stock == [] or stock[0]["reserved"] == 0
        assert svc.db.query("SELECT * FROM early_cancels") == []
        history = svc.db.query("SELECT to_state FROM order_history WHERE order_id = 'late-1' "
                               "ORDER BY id")
        assert [h["to_state"] for h in history] == ["pending", "cancelled"]
        await pair.settled()
    finally:
        raw.close()
