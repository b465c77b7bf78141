"""Scale-out on a clustered broker: a two-node RabbitMQ cluster (MQTT 3.1.1) behind a load
balancer, three stores spread over both nodes, the shop consuming every store; one node is
stopped mid-stream. Afterwards each store's view at the shop equals its ledger exactly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest_asyncio

from hub.app import RunningHub, start_hub
from hub.sync_link import audit_export
from sync.shop.audit import audit_store
from sync.shop.service import ShopService
from tests.fixtures.rabbitmq import RabbitCluster, start_cluster
from tests.fixtures.tcp_balancer import TcpBalancer
from tests.sync.conftest import CATALOG, STAFF_TOKEN, hub_config, shop_config, wait_until

STORES = ["north-1", "south-2", "east-3"]


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[RabbitCluster]:
    nodes = await asyncio.to_thread(start_cluster, tmp_path / "rabbit")
    try:
        yield nodes
    finally:
        await asyncio.to_thread(nodes.close)


async def test_node_stopped_mid_stream_loses_and_doubles_nothing(
        tmp_path: Path, cluster: RabbitCluster) -> None:
    balancer = TcpBalancer([node.mqtt_port for node in cluster.nodes])
    await balancer.start()
    shop = ShopService(shop_config(tmp_path / "shop", balancer.port, protocol="3.1.1"))
    hubs: dict[str, RunningHub] = {}
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    try:
        await shop.start()
        for store in STORES:
            hub = await start_hub(hub_config(tmp_path / store, balancer.port, store=store,
                                             protocol="3.1.1"))
            await hub.services.db.write(hub.services.catalog.import_rows, CATALOG, tmp_path)
            hubs[store] = hub
        # The shop and the hubs connect in the background (none of them waits for the broker):
        # give them the time a busy machine needs before looking where they went.
        await wait_until(lambda: all(count > 0 for count in balancer.connections.values()), 60,
                         "clients spread over both nodes")

        async def sell(session: aiohttp.ClientSession, store: str, rounds: range) -> None:
            for i in rounds:
                body = {"sku": ("OAT-1", "BAN-1")[i % 2], "qty": 1 + i % 3, "reason": "sale",
                        "ref": f"{store}-{i}"}
                async with session.post(f"{hubs[store].url}/api/stock/movements", json=body,
                                        headers=headers) as response:
                    assert response.status == 201
                await asyncio.sleep(0.02)

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(sell(session, s, range(0, 60)) for s in STORES))
            survivor = cluster.nodes[0].mqtt_port
            connections_before = balancer.connections[survivor]
            await asyncio.to_thread(cluster.stop, 1)
            await asyncio.gather(*(sell(session, s, range(60, 120)) for s in STORES))

        def exact(store: str) -> bool:
            ledger, stock = audit_export(hubs[store].services.db)
            report = audit_store(shop.config.database, store, ledger, stock)
            return report.exact and report.ledger_rows >= 120

        for store in STORES:
            await wait_until(lambda s=store: exact(s), 90, f"{store}'s view at the shop")
            ledger, stock = audit_export(hubs[store].services.db)
            report = audit_store(shop.config.database, store, ledger, stock)
            assert (report.lost, report.doubled, report.unexpected) == ([], [], [])
        assert balancer.connections[survivor] > connections_before, \
            "the clients of the stopped node reconnected to the other one"
    finally:
        for hub in hubs.values():
            await hub.stop()
        await shop.stop()
        await balancer.close()
