"""The shop's HTTP API against docs/shop-openapi.yaml: every exchange here is validated against the
document, so a status, field or type it does not describe fails the test."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from hub.app import start_hub
from hub.clock import ManualClock
from tests.sync.conftest import SyncPair, hub_config, wait_until

SPEC = Path(__file__).resolve().parents[2] / "docs" / "shop-openapi.yaml"


@cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


async def call(pair: SyncPair, method: str, path: str, body: Any = None,
               raw: bytes | None = None, content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One exchange with the shop, checked against the OpenAPI document."""
    status, payload, _ = await exchange(pair, method, path, body, raw, content_type, headers)
    return status, payload


async def exchange(pair: SyncPair, method: str, path: str, body: Any = None,
                   raw: bytes | None = None, content_type: str = "application/json",
                   headers: dict[str, str] | None = None,
                   url: str | None = None) -> tuple[int, Any, dict[str, str]]:
    """``call`` that also returns the response headers (and can talk to another shop, ``url``)."""
    assert pair.shop is not None
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {**({"Content-Type": content_type} if data is not None else {}), **(headers or {})}
    async with pair.http.request(method, (url or pair.shop.url) + path, data=data,
                                 headers=sent) as response:
        payload = await response.read()
        request = MockRequest("http://127.0.0.1:8090", method.lower(), path.split("?")[0],
                              data=data, headers=sent,
                              content_type=content_type if data else None)
        checked = MockResponse(payload, status_code=response.status,
                               headers=dict(response.headers),
                               content_type=response.content_type)
        spec().validate_response(request, checked)
        return response.status, json.loads(payload), dict(response.headers)


async def test_api_contract_validation_and_errors(pair: SyncPair) -> None:
    await pair.settled()
    status, stores = await call(pair, "GET", "/api/stores")
    assert status == 200 and stores["stores"][0]["store"] == pair.store
    status, stock = await call(pair, "GET", f"/api/stores/{pair.store}/stock/OAT-1")
    assert status == 200
    assert {k: stock[k] for k in ("store", "sku", "available", "on_hand")} == {
        "store": pair.store, "sku": "OAT-1", "available": 50, "on_hand": 50}
    assert stock["seq"] > 0
    # APL-1 starts at zero stock, so no movement carries it: it reaches the shop with the next
    # snapshot, which a busy machine may deliver after the movements have settled.
    async def all_listed() -> bool:
        status, listing = await call(pair, "GET", f"/api/stores/{pair.store}/stock")
        assert status == 200
        return [s["sku"] for s in listing["stock"]] == ["APL-1", "BAN-1", "OAT-1"]

    await wait_until(all_listed, what="every SKU of the store in the shop's listing")
    status, across = await call(pair, "GET", "/api/stock/BAN-1")
    assert status == 200 and [s["store"] for s in across["stores"]] == [pair.store]

    assert (await call(pair, "GET", "/api/stores/nowhere/stock"))[0] == 404
    assert (await call(pair, "GET", f"/api/stores/{pair.store}/stock/NOPE-1"))[0] == 404
    assert (await call(pair, "GET", "/api/stores/BAD!/stock"))[0] == 400
    assert (await call(pair, "GET", "/api/orders/missing"))[0] == 404
    bad_orders = [
        {"store": pair.store, "member": "m", "lines": []},
        {"store": pair.store, "member": "m", "lines": [{"sku": "OAT-1", "qty": 0}]},
        {"store": pair.store, "member": "m", "lines": [{"sku": "OAT-1", "qty": 1}], "x": 1},
        {"store": "nowhere", "member": "m", "lines": [{"sku": "OAT-1", "qty": 1}]},
    ]
    statuses = [(await call(pair, "POST", "/api/orders", body))[0] for body in bad_orders]
    assert statuses == [400, 400, 400, 404]
    status, error = await call(pair, "POST", "/api/orders", raw=b"{nope")
    assert status == 400 and error["error"]["code"] == "invalid"
    assert (await call(pair, "POST", "/api/orders", raw=b"x" * 70_000))[0] == 413
    assert (await call(pair, "POST", "/api/orders", raw=b"a=b",
                       content_type="application/x-www-form-urlencoded"))[0] == 415

    status, placed = await call(pair, "POST", "/api/orders", {
        "store": pair.store, "member": "m-9", "lines": [{"sku": "APL-1", "qty": 1}]})
    assert status == 202
    order = await wait_until(lambda: _final(pair, placed["id"]), what="the store's answer")
    assert order["state"] == "rejected"
    assert "APL-1 (wanted 1, available 0)" in order["reason"]


async def _final(pair: SyncPair, order_id: str) -> dict[str, Any] | None:
    status, order = await call(pair, "GET", f"/api/orders/{order_id}")
    assert status == 200
    return order if order["state"] not in ("requested", "pending") else None


async def test_opt_in_sends_the_key_to_the_store_and_opt_out_deletes_it(pair: SyncPair) -> None:
    assert pair.hub is not None
    members = pair.hub.services.members
    status, body = await call(pair, "POST", "/api/members/m-1/opt-in",
                              {"store": pair.store, "display_name": "Ann"})
    assert status == 202 and len(body["beacon_key"]) == 32
    await wait_until(lambda: members.keys().get("m-1") == bytes.fromhex(body["beacon_key"]),
                     what="the key at the store")
    _, again = await call(pair, "POST", "/api/members/m-1/opt-in", {"store": pair.store})
    assert again["beacon_key"] == body["beacon_key"]
    status, _ = await call(pair, "POST", "/api/members/m-1/opt-out", {"store": pair.store})
    assert status == 202
    await wait_until(lambda: "m-1" not in members.keys(), what="the key deleted at the store")
    assert members.get("m-1").consent is False
    assert (await call(pair, "POST", "/api/members/nobody/opt-out",
                       {"store": pair.store}))[0] == 404


async def test_reminders_and_beacon_health_reach_the_shop(pair: SyncPair) -> None:
    """The beacons feature writes 'reminder' and 'beacon.health' outbox rows; they arrive."""
    assert pair.hub is not None
    from hub.outbox import enqueue

    svc = pair.hub.services

    def write() -> None:
        with svc.db.transaction() as tx:
            enqueue(tx, svc.bus, "reminder", {"member": "m-1", "order_id": "o-1",
                                              "text": "your order is ready"}, svc.clock.now())
            enqueue(tx, svc.bus, "beacon.health", {"beacon": "door", "battery_mv": 2900},
                    svc.clock.now())

    await svc.db.write(write)
    status, body = await wait_until(lambda: _reminders(pair), what="the reminder")
    assert body["reminders"][0]["data"]["text"] == "your order is ready"
    await pair.settled()


async def _reminders(pair: SyncPair) -> tuple[int, Any] | None:
    status, body = await call(pair, "GET", "/api/members/m-1/reminders")
    return (status, body) if body["reminders"] else None


async def test_sse_stream_carries_stock_changes(pair: SyncPair) -> None:
    assert pair.hub is not None and pair.shop is not None
    await pair.settled()  # also: every change before it has gone out to the feed
    seen: list[dict[str, Any]] = []
    connected = asyncio.Event()

    async def listen() -> None:
        async with pair.http.get(f"{pair.shop.url}/api/stock/stream?sku=OAT-1") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            async for line in response.content:
                if line.startswith(b": connected"):  # sent once the shop listens for us
                    connected.set()
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:]))
                    return

    listener = asyncio.create_task(listen())
    # Changes made before the stream listens are not sent on it: wait until it does.
    ready = asyncio.create_task(connected.wait())
    await asyncio.wait({ready, listener}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if listener.done():
        listener.result()  # its failure, if it failed
    assert connected.is_set(), "the stream did not say it was connected within 30 s"
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "BAN-1", "qty": 1, "reason": "sale"}, expect=201)
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "OAT-1", "qty": 2, "reason": "sale"}, expect=201)
    await asyncio.wait_for(listener, 10)
    assert seen[0]["sku"] == "OAT-1" and seen[0]["available"] == 48


async def test_an_uncollected_order_expires_and_the_shop_sees_the_stock_back(
        tmp_path: Path, mosquitto: Any) -> None:
    """The pickup window runs on the hub's clock; a manual clock moves it past the window."""
    pair = SyncPair(tmp_path, mosquitto)
    clock = ManualClock()
    try:
        from hub.app import start_hub
        from tests.sync.conftest import hub_config

        pair.hub = await start_hub(hub_config(tmp_path / "hub", mosquitto.port,
                                              snapshot_interval_s=3600), clock=clock)
        await pair.import_catalog()
        await pair.start_shop()
        await wait_until(lambda: _known(pair), what="the store's birth at the shop")
        status, placed = await call(pair, "POST", "/api/orders", {
            "store": pair.store, "member": "m-2", "lines": [{"sku": "OAT-1", "qty": 5}]})
        order = await wait_until(lambda: _final(pair, placed["id"]), what="accepted")
        assert order["state"] == "accepted" and order["pickup_by"] is not None
        clock.advance(48 * 3600 + 61)
        order = await wait_until(lambda: _expired(pair, placed["id"]), what="expired")
        assert order["reason"] == "not collected in the pickup window"
        report = await pair.settled()
        assert report.ledger_rows == 2 + 2  # two receipts, the reservation and its release
    finally:
        await pair.close()


async def _known(pair: SyncPair) -> bool:
    _, body = await call(pair, "GET", "/api/stores")
    return bool(body["stores"])


async def _expired(pair: SyncPair, order_id: str) -> dict[str, Any] | None:
    _, order = await call(pair, "GET", f"/api/orders/{order_id}")
    return order if order["state"] == "expired" else None


async def test_withdrawing_consent_removes_the_key_from_every_store(pair: SyncPair) -> None:
    assert pair.hub is not None
    other = await start_hub(hub_config(pair.folder / "hub-b", pair.broker.port, store="store-b"))
    try:
        stores = {pair.store: pair.hub.services.members, "store-b": other.services.members}
        # The shop takes opt-ins only for stores that have reported to it; store-b has just
        # started and connects in the background.
        await pair.reported("store-b")
        status, body = await call(pair, "POST", "/api/members/m-2/opt-in",
                                  {"store": pair.store, "display_name": "Bo"})
        assert status == 202
        assert (await call(pair, "POST", "/api/members/m-2/opt-in", {"store": "store-b"}))[0] == 202
        old_key = bytes.fromhex(body["beacon_key"])
        for store, members in stores.items():
            await wait_until(lambda m=members: m.keys().get("m-2") == old_key,
                             what=f"the key at {store}")
        status, gone = await call(pair, "POST", "/api/members/m-2/withdraw")
        assert status == 202 and gone["stores"] == sorted(stores)
        for store, members in stores.items():
            await wait_until(lambda m=members: "m-2" not in m.keys(),
                             what=f"the key deleted at {store}")
            assert members.get("m-2").consent is False
        # Opting in again hands out a new key: the withdrawn one is dead everywhere.
        _, again = await call(pair, "POST", "/api/members/m-2/opt-in", {"store": pair.store})
        assert again["beacon_key"] != body["beacon_key"]
        assert (await call(pair, "POST", "/api/members/nobody/withdraw"))[0] == 404
    finally:
        await other.stop()
