"""The store's will: the retained `offline` state the broker publishes for a hub that dies
without a goodbye, and what the shop makes of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync import messages
from sync.envelope import build
from sync.topics import StoreTopics
from tests.fixtures.hub_process import start_hub
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.sync.conftest import CATALOG, STORE, RawClient, SyncPair, wait_until
from tests.sync.processes import get, hub_toml, import_catalog, kill, poll, shop_toml, start_shop


def _state(epoch: int, state: str, last_seq: int, acked_seq: int, ts: float) -> bytes:
    data = messages.StoreState(state=state, epoch=epoch,  # type: ignore[arg-type]
                               last_seq=last_seq, acked_seq=acked_seq)
    return build(store=STORE, epoch=epoch, seq=last_seq, type_=messages.STATE, ts=ts, data=data)


def _store(shop_port: int, store: str) -> dict[str, Any] | None:
    """The shop's idea of ``store`` (GET /api/stores), None before it reported."""
    stores = get(f"http://127.0.0.1:{shop_port}/api/stores")["stores"]
    return next((s for s in stores if s["store"] == store), None)


def test_a_hub_killed_after_starting_a_run_above_the_shops_is_shown_offline(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: the will is registered once per connection. A hub that began a run above one the
    shop acknowledged kept its connection, so its will named the old run; killed, its will was
    ignored as a stale state and the shop showed the store online for good (and kept sending it
    commands)."""
    store = "will-store"
    web_port = free_port()
    config = hub_toml(tmp_path / "hub", web_port, mosquitto.port, store)
    import_catalog(tmp_path / "hub" / "hub.db", CATALOG, tmp_path)
    shop_config, shop_port = shop_toml(tmp_path / "shop", mosquitto.port)
    shop = start_shop(shop_config, shop_port)
    hub = start_hub(config, web_port)
    forger = RawClient(mosquitto.port, "ack-forger")
    try:
        first = poll(lambda: (s := _store(shop_port, store)) and s["online"] and s, 30,
                     "the store to report online")
        seen = first["epoch"] + 5_000_000  # a run the shop says it knows, far above the hub's
        ack = build(store=store, epoch=seen, seq=0, type_=messages.ACK, ts=0.0,
                    data=messages.Ack(acked_seq=0))
        assert forger.publish(StoreTopics("retail", store).ack, ack) == 0
        poll(lambda: (s := _store(shop_port, store)) and s["online"] and s["epoch"] > seen, 30,
             "the hub to announce a run above the acknowledged one")
        kill(hub)
        poll(lambda: (s := _store(shop_port, store)) and not s["online"], 15,
             "the shop to see the killed store offline")
    finally:
        forger.close()
        kill(hub)
        kill(shop)


async def test_the_shop_keeps_the_numbers_of_the_last_online_state_over_a_will(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: a will is fixed when its connection begins, so its last_seq, acked_seq and ts are of
    that moment (one said 105/0 when the hub stood at 180/180), and the shop took them for the
    store's current position."""
    pair = SyncPair(tmp_path, mosquitto)
    store = RawClient(mosquitto.port, STORE)  # a store's hub, as the broker sees it
    try:
        await pair.start_shop()
        topic, epoch = StoreTopics("retail", STORE).state, 1_795_654_830_219
        assert store.publish(topic, _state(epoch, "online", 105, 0, 100.0), retain=True) == 0
        # its answer to the shop's resync, later in the same connection
        assert store.publish(topic, _state(epoch, "online", 180, 180, 160.0), retain=True) == 0
        assert store.publish(topic, _state(epoch, "offline", 105, 0, 100.0), retain=True) == 0

        async def offline() -> dict[str, Any] | None:
            stores = (await pair.shop_api("GET", "/api/stores"))["stores"]
            return next((s for s in stores if s["store"] == STORE and not s["online"]), None)

        seen = await wait_until(offline, what="the shop to take the will")
        assert seen["last_seq"] == 180
        assert pair.shop_sql("SELECT last_seq, acked_seq FROM stores WHERE store = ?",
                             STORE) == [(180, 180)]
    finally:
        store.close()
        await pair.close()
