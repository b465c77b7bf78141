"""Stock at nearby stores: a hub follows the retained stock snapshots of the stores named in
``mqtt.nearby_stores``, so its kiosk can say "available at Market B" when a product is out here;
a malformed snapshot is dead-lettered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from hub.app import RunningHub, start_hub
from hub.inventory import MovementIn
from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import CATALOG, RawClient, hub_config, wait_until


async def product(http: aiohttp.ClientSession, hub: RunningHub, sku: str) -> dict[str, Any]:
    async with http.get(f"{hub.url}/api/products/{sku}") as response:
        assert response.status == 200
        return await response.json()


async def test_out_of_stock_here_shows_the_nearby_store_that_has_it(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    here = await start_hub(hub_config(tmp_path / "a", mosquitto.port, "store-a",
                                      nearby_stores={"store-b": "Market B"}))
    there = await start_hub(hub_config(tmp_path / "b", mosquitto.port, "store-b"))
    try:
        for hub in (here, there):
            svc = hub.services
            assert not (await svc.db.write(svc.catalog.import_rows, CATALOG, tmp_path)).rejected
        a, b = here.services, there.services
        oat_here = a.inventory.stock("OAT-1").available
        await a.db.write(a.inventory.record, MovementIn(sku="OAT-1", qty=oat_here, reason="sale"))
        async with aiohttp.ClientSession() as http:
            async def shown() -> list[dict[str, Any]]:
                return (await product(http, here, "OAT-1"))["elsewhere"]

            elsewhere = await wait_until(shown, 15, "store B's stock at store A")
            assert elsewhere == [{"store": "store-b", "name": "Market B",
                                  "available": b.inventory.stock("OAT-1").available}]
            # B sells out: A stops pointing customers there.
            left = b.inventory.stock("OAT-1").available
            await b.db.write(b.inventory.record, MovementIn(sku="OAT-1", qty=left, reason="sale"))
            await wait_until(lambda: not a.nearby.elsewhere("OAT-1"), 15, "B sold out at A")
            assert (await product(http, here, "OAT-1"))["elsewhere"] == []
            # B follows no one: its products never point elsewhere.
            assert (await product(http, there, "BAN-1"))["elsewhere"] == []

        # A malformed snapshot on B's topic is refused and kept aside, not applied.
        broken = RawClient(mosquitto.port, "broken-node")
        try:
            broken.publish("retail/v1/store-b/snapshot/stock/BAN-1", b"{not json")

            def dead_letters() -> int:
                conn = a.db.conn().conn
                return conn.execute("SELECT count(*) FROM sync_dead_letters").fetchone()[0]

            await wait_until(lambda: dead_letters() == 1, 15, "the bad snapshot dead-lettered")
            assert a.nearby.elsewhere("BAN-1")[0]["available"] == b.inventory.stock(
                "BAN-1").available
        finally:
            broken.close()
    finally:
        for hub in (here, there):
            await hub.stop()
