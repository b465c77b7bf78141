"""Fault tests: after each fault the shop's view equals the hub's ledger exactly (every seq applied
once, quantities summing per SKU, the view at the store's numbers): nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

from hub.inventory import MovementIn
from sync.envelope import build
from sync.shop.service import ShopService
from sync.topics import StoreTopics
from tests.fixtures.hub_process import start_hub
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.sync.conftest import (
    CATALOG,
    RawClient,
    SyncPair,
    applied,
    shop_config,
    wait_until,
)
from tests.sync.processes import (
    STAFF_TOKEN,
    hub_toml,
    import_catalog,
    kill,
    post,
    shop_toml,
    start_shop,
    wait_exact,
)

SKUS = ["OAT-1", "BAN-1", "APL-1"]


def movements(count: int, seed: int) -> list[MovementIn]:
    """Receipts and sales (some taking stock below zero: offline sales are always accepted)."""
    rng = random.Random(seed)
    return [MovementIn(sku=rng.choice(SKUS), qty=rng.randint(1, 5),
                       reason=rng.choice(["sale", "sale", "receipt", "return"]))
            for _ in range(count)]


async def test_broker_killed_and_restarted_during_a_stream(pair: SyncPair) -> None:
    assert pair.hub is not None
    svc = pair.hub.services
    stream = movements(400, seed=1)

    async def produce() -> None:
        for movement in stream:
            await svc.db.write(svc.inventory.record, movement)
            await asyncio.sleep(0.002)

    producer = asyncio.create_task(produce())
    for _ in range(3):
        await asyncio.sleep(0.4)
        pair.broker.kill()
        await asyncio.sleep(0.3)
        pair.broker.start()
    await producer
    report = await pair.settled(timeout=60)
    assert report.ledger_rows == 3 - 1 + len(stream)  # two catalogue receipts + the stream
    assert pair.broker.starts == 4


async def test_the_same_events_twice_and_out_of_order(pair: SyncPair, mosquitto: Mosquitto) -> None:
    """Replay a store's own events again, shuffled and doubled, straight onto the broker."""
    assert pair.hub is not None
    svc = pair.hub.services
    for movement in movements(60, seed=2):
        await svc.db.write(svc.inventory.record, movement)
    await pair.settled()
    assert pair.shop is not None
    duplicates = pair.shop.shop.link.metrics.duplicates._value  # noqa: SLF001
    before = duplicates.get()
    sent = await _replay_shuffled_twice(pair, mosquitto)
    assert sent > 100
    # The copies change nothing the audit sees, so wait for the shop to have counted each of
    # them as a duplicate (a fixed pause is too short on a busy machine or a slow shop).
    await wait_until(lambda: duplicates.get() - before >= sent,
                     what=f"the shop to count all {sent} copies as duplicates")
    report = await pair.settled()
    assert report.applied_rows == report.ledger_rows == 62


async def _replay_shuffled_twice(pair: SyncPair, broker: Mosquitto) -> int:
    """Publish copies of the events the shop already applied, in random order, twice each."""
    conn = sqlite3.connect(pair.shop_db)
    rows = conn.execute("SELECT a.seq, a.prev, a.msg_id, m.movement_id, m.sku, m.qty, "
                        "m.reserved_qty, m.reason, m.ts FROM applied a JOIN movements m "
                        "USING (store, seq) WHERE a.store = ?", (pair.store,)).fetchall()
    conn.close()
    payloads = []
    for seq, prev, msg_id, movement_id, sku, qty, reserved_qty, reason, ts in rows:
        data = {"movement_id": movement_id, "seq": seq, "sku": sku, "qty": qty,
                "reserved_qty": reserved_qty, "reason": reason, "ts": ts, "on_hand": -999,
                "reserved": 0, "available": -999}
        payloads.append(build(store=pair.store, epoch=1, seq=seq, type_="stock.movement", ts=ts,
                              data=data, msg_id=msg_id, prev=prev))
    payloads = payloads * 2
    random.Random(3).shuffle(payloads)
    replayer = RawClient(broker.port, "replayer")
    topic = StoreTopics("retail", pair.store).event("stock.movement")
    try:
        assert all(replayer.publish(topic, payload) == 0 for payload in payloads)
    finally:
        replayer.close()
    return len(payloads)


async def test_store_offline_while_10000_movements_and_5_orders_pile_up(pair: SyncPair) -> None:
    assert pair.hub is not None and pair.hub.services.sync is not None
    svc = pair.hub.services
    await pair.settled()
    await pair.hub.services.sync.stop()  # the store's link goes down; the hub keeps serving
    await wait_until(lambda: _store_online(pair, False), what="the shop to see the store offline")

    pile = movements(10_000, seed=4)
    receipts = [MovementIn(sku=sku, qty=500, reason="receipt") for sku in SKUS]

    def record(batch: list[MovementIn]) -> None:
        for movement in batch:
            svc.inventory.record(movement)

    await svc.db.write(record, receipts)
    for start in range(0, len(pile), 500):
        await svc.db.write(record, pile[start:start + 500])
    queued = await svc.db.read(svc.db.query_one, "SELECT count(*) AS n FROM outbox")
    assert queued is not None and queued["n"] >= len(pile) + len(receipts)

    order_ids = []
    for n in range(5):
        placed = await pair.shop_api("POST", "/api/orders", {
            "store": pair.store, "member": f"m-{n}", "lines": [{"sku": "APL-1", "qty": 1}]},
            expect=202)
        order_ids.append(placed["id"])

    await pair.hub.services.sync.start()
    report = await pair.settled(timeout=90)
    assert report.ledger_rows >= len(pile) + len(receipts)
    for order_id in order_ids:
        await wait_until(lambda oid=order_id: _order_state(pair, oid, "accepted"),
                         what=f"order {order_id} accepted")
    hub_orders = await svc.db.read(svc.orders.list, "accepted", None, 100)
    assert sorted(o.id for o in hub_orders) == sorted(order_ids)
    await pair.settled()


async def _store_online(pair: SyncPair, online: bool) -> bool:
    stores = await pair.shop_api("GET", "/api/stores")
    return any(s["store"] == pair.store and s["online"] is online for s in stores["stores"])


async def _order_state(pair: SyncPair, order_id: str, state: str) -> bool:
    return (await pair.shop_api("GET", f"/api/orders/{order_id}"))["state"] == state


def test_hub_sigkilled_between_commit_and_publish(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Movements committed while nothing can be published, then SIGKILL; and a SIGKILL in the
    middle of a live stream. The restarted hub publishes what it committed, once."""
    store = "kill-store"
    web_port = free_port()
    config = hub_toml(tmp_path / "hub", web_port, mosquitto.port, store)
    hub_db = tmp_path / "hub" / "hub.db"
    import_catalog(hub_db, CATALOG, tmp_path)
    shop_config, shop_port = shop_toml(tmp_path / "shop", mosquitto.port)
    shop = start_shop(shop_config, shop_port)
    hub = start_hub(config, web_port)
    url = f"http://127.0.0.1:{web_port}/api/stock/movements"
    try:
        wait_exact(hub_db, tmp_path / "shop" / "shop.db", store)
        # 1. committed but unpublishable (no broker), then killed before it could publish
        mosquitto.kill()
        for movement in movements(30, seed=5):
            status, _ = post(url, movement.model_dump(exclude_none=True), STAFF_TOKEN)
            assert status == 201
        kill(hub)
        mosquitto.start()
        hub = start_hub(config, web_port)
        wait_exact(hub_db, tmp_path / "shop" / "shop.db", store)
        # 2. killed mid-stream, broker up
        for round_ in range(2):
            for movement in movements(40, seed=6 + round_):
                status, _ = post(url, movement.model_dump(exclude_none=True), STAFF_TOKEN)
                assert status == 201
            kill(hub)
            hub = start_hub(config, web_port)
        report = wait_exact(hub_db, tmp_path / "shop" / "shop.db", store)
        assert report.ledger_rows == 2 + 30 + 80
    finally:
        kill(hub)
        kill(shop)


def test_shop_restarted_mid_stream(tmp_path: Path, mosquitto: Mosquitto) -> None:
    store = "restart-store"
    web_port = free_port()
    config = hub_toml(tmp_path / "hub", web_port, mosquitto.port, store)
    hub_db = tmp_path / "hub" / "hub.db"
    import_catalog(hub_db, CATALOG, tmp_path)
    shop_config, shop_port = shop_toml(tmp_path / "shop", mosquitto.port)
    shop_db = tmp_path / "shop" / "shop.db"
    hub = start_hub(config, web_port)
    shop = start_shop(shop_config, shop_port)
    url = f"http://127.0.0.1:{web_port}/api/stock/movements"
    stream = movements(150, seed=8)
    try:
        for n, movement in enumerate(stream):
            status, _ = post(url, movement.model_dump(exclude_none=True), STAFF_TOKEN)
            assert status == 201
            if n == 50:
                kill(shop)  # SIGKILL: whatever it had not committed is gone
            if n == 90:
                shop = start_shop(shop_config, shop_port)
            if n == 120:
                shop.terminate()  # a clean stop too
                shop.wait(timeout=10)
                shop = start_shop(shop_config, shop_port)
        report = wait_exact(hub_db, shop_db, store)
        assert report.ledger_rows == 2 + len(stream)
    finally:
        kill(hub)
        kill(shop)


def test_a_store_offline_for_good_keeps_serving_and_queues(tmp_path: Path) -> None:
    """No broker at all: the hub still takes movements and keeps them for later."""
    web_port = free_port()
    config = hub_toml(tmp_path / "hub", web_port, free_port(), "lonely-store")
    import_catalog(tmp_path / "hub" / "hub.db", CATALOG, tmp_path)
    hub = start_hub(config, web_port)
    try:
        for movement in movements(5, seed=9):
            status, _ = post(f"http://127.0.0.1:{web_port}/api/stock/movements",
                             movement.model_dump(exclude_none=True), STAFF_TOKEN)
            assert status == 201
    finally:
        kill(hub)
    from hub.db import Database

    db = Database(tmp_path / "hub" / "hub.db")
    try:
        assert db.query_one("SELECT count(*) AS n FROM outbox") == {"n": 2 + 5}
    finally:
        db.close()



async def test_two_shop_instances_share_the_load_on_one_database(pair: SyncPair) -> None:
    """Two shop instances in one MQTT 5 shared-subscription group, on the same database: each
    applies part of the stream, and together every event exactly once."""
    assert pair.hub is not None and pair.shop is not None
    second = ShopService(shop_config(pair.folder / "shop", pair.broker.port).model_copy(
        update={"mqtt": pair.shop.config.mqtt.model_copy(update={"client_id": "shop-2"})}))
    await second.start()
    try:
        await wait_until(second.shop.link.subscribed.is_set, 10, "the second shop to subscribe")
        svc = pair.hub.services
        stream = movements(600, seed=5)
        for movement in stream:
            await svc.db.write(svc.inventory.record, movement)
        report = await pair.settled(timeout=60)
        assert report.ledger_rows == 3 - 1 + len(stream)
        await applied(second)  # settled() waited for the first instance only
        applied_counts = [instance.shop.link.metrics.received.labels("event")._value.get()
                          for instance in (pair.shop, second)]
        assert all(count > 0 for count in applied_counts), applied_counts  # both took a share
    finally:
        await second.stop()
