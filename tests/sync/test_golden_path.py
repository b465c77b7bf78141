"""The walk the issue asks for: sales reach the shop's view; a shop order is reserved by the hub,
made ready and collected by staff, and the shop sees every status and the final stock. Runs on
MQTT 5 and on 3.1.1 (everything the protocol needs is in the payload)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import SyncPair, wait_until


async def shop_stock_matches_hub(pair: SyncPair) -> bool:
    assert pair.hub is not None
    hub_stock = await pair.hub_api("GET", "/api/stock")
    for level in hub_stock["stock"]:
        sku = level["sku"]
        view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/{sku}",
                                   expect=(200, 404))
        if view.get("available") != level["available"] or view.get("seq") != level["seq"]:
            return False
    return True


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_sales_and_an_order_walk_through_to_the_shop(tmp_path: Path, mosquitto: Mosquitto,
                                                           protocol: str) -> None:
    pair = SyncPair(tmp_path, mosquitto, protocol)
    try:
        await pair.start_hub()
        await pair.import_catalog()
        await pair.start_shop()

        for qty in (3, 1, 2):
            await pair.hub_api("POST", "/api/stock/movements",
                               {"sku": "OAT-1", "qty": qty, "reason": "sale"}, expect=201)
        await wait_until(lambda: shop_stock_matches_hub(pair), what="shop view = hub stock")
        view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
        assert set(view) == {"store", "sku", "available", "on_hand", "reserved", "seq"}
        assert (view["store"], view["sku"], view["on_hand"], view["available"]) == (
            pair.store, "OAT-1", 44, 44)

        placed = await pair.shop_api("POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": [{"sku": "OAT-1", "qty": 4},
                                                            {"sku": "BAN-1", "qty": 6}]},
            expect=202)
        order_id = placed["id"]
        assert placed["state"] == "requested"

        async def shop_state() -> str:
            return (await pair.shop_api("GET", f"/api/orders/{order_id}"))["state"]

        await wait_until(lambda: _is(shop_state(), "accepted"), what="order accepted")
        hub_order = await pair.hub_api("GET", f"/api/orders/{order_id}")
        assert hub_order["state"] == "accepted" and hub_order["member_id"] == "m-1"
        await wait_until(lambda: shop_stock_matches_hub(pair), what="reservation in the view")
        reserved = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
        assert (reserved["on_hand"], reserved["reserved"], reserved["available"]) == (44, 4, 40)

        await pair.hub_api("POST", f"/api/orders/{order_id}/transition", {"to": "ready"})
        await pair.hub_api("POST", f"/api/orders/{order_id}/transition", {"to": "collected"})
        await wait_until(lambda: _is(shop_state(), "collected"), what="order collected")
        order = await pair.shop_api("GET", f"/api/orders/{order_id}")
        assert [h["state"] for h in order["history"]] == [
            "pending", "accepted", "ready", "collected"]
        await wait_until(lambda: shop_stock_matches_hub(pair), what="final stock in the view")
        final = await pair.shop_api("GET", "/api/stock/OAT-1")
        assert final["stores"] == [{"store": pair.store, "sku": "OAT-1", "available": 40,
                                    "on_hand": 40, "reserved": 0, "seq": final["stores"][0]["seq"]}]
        report = await pair.settled()
        assert report.ledger_rows == report.applied_rows
    finally:
        await pair.close()


async def _is(value: object, wanted: str) -> bool:
    return await value == wanted  # type: ignore[misc]
