"""The golden path of DESIGN.md across real processes: mosquitto, the shop service and the hub.

A member opts in through the shop and gets a beacon key; orders online for pickup; the hub
reserves; staff mark the order ready; the member's phone walks in (advertisements relayed by the
door scanner node over the store's broker); the hub says "arrived" and exactly one reminder
reaches the shop for that member and one alert the staff feed; the order is collected and the
shop's stock view shows the final stock within a second.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho

from hub.demo.store import CATALOG, IMAGES
from tests.e2e.walk_in import advertisement
from tests.fixtures.hub_process import ROOT, start_hub, write_hub_config
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.sync.conftest import wait_until
from tests.sync.processes import shop_toml, start_shop

STORE = "golden-01"
PREFIX = "f0e1d2c3b4a59687"
TOKEN = "process-test-token-0123456789"
SKU = "GS-045"  # Oatly Oat Milk
#: The walk-in is announced this long after it is decided (the default 30 s made the walk a
#: tenth of the suite's time; the rule itself is tested in tests/beacons).
CONFIRM_S = 5.0
#: She stays on the shop floor, heard, this long after her reminder came (then the walk ends).
LINGER_S = 4.0


def hub_config(folder: Path, port: int, broker: int) -> Path:
    extra = (
        f"\n[mqtt]\nenabled = true\nport = {broker}\nack_timeout_s = 2.0\n"
        "snapshot_interval_s = 0.2\npoll_interval_s = 0.5\nbackoff_initial_s = 0.05\n"
        "backoff_max_s = 0.5\nkeepalive_s = 5\n"
        "\n[vision]\nenabled = false\n\n[voice]\nenabled = false\n"
        f'\n[beacons]\nenabled = true\nsource = "mqtt"\nrelay_port = {broker}\n'
        f'chain_prefix = "{PREFIX}"\n'
        # Equal start and end: no quiet hours, so the test passes at any time of day.
        "\n[beacons.reminders]\nquiet_start = 00:00:00\nquiet_end = 00:00:00\n"
        f"\n[beacons.presence]\nconfirm_s = {CONFIRM_S}\n"
    )
    return write_hub_config(folder, port, STORE, extra)


class Staff:
    """The staff feed: every hub event pushed over the authenticated WebSocket."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def listen(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.ws_connect(f"{url}/api/staff/events") as ws:
            await ws.send_json({"token": TOKEN})
            async for message in ws:
                self.events.append(json.loads(message.data))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


def walk_in(broker: int, key: bytes, done: threading.Event,
            seconds: float = CONFIRM_S + 18) -> None:
    """Publish the phone's advertisements in real time, as the door relay node would: the walk
    past the door scanner (about 8 s), then on the shop floor until ``done`` (a while after
    the reminder came) or long enough to be confirmed."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="door-node")
    client.connect("127.0.0.1", broker)
    client.loop_start()
    rng = random.Random(7)
    start = time.time()
    topic = f"retail/v1/{STORE}/scanners/door/adv"
    try:
        while (offset := time.time() - start) < seconds and not done.is_set():
            line = advertisement(time.time(), offset, bytes.fromhex(PREFIX), key, rng)
            client.publish(topic, line, qos=0)
            time.sleep(0.25)
    finally:
        client.loop_stop()
        client.disconnect()


async def test_golden_path(tmp_path: Path, mosquitto: Mosquitto) -> None:
    hub_port = free_port()
    config = hub_config(tmp_path / "hub", hub_port, mosquitto.port)
    subprocess.run([sys.executable, "-m", "hub.cli", "catalog", "import", str(CATALOG),
                    "--images", str(IMAGES), "--config", str(config)], check=True, cwd=ROOT,
                   capture_output=True)
    shop_config, shop_port = shop_toml(tmp_path / "shop", mosquitto.port)
    shop_proc = start_shop(shop_config, shop_port)
    hub_proc = start_hub(config, hub_port)
    hub = f"http://127.0.0.1:{hub_port}"
    shop = f"http://127.0.0.1:{shop_port}"
    staff_headers = {"Authorization": f"Bearer {TOKEN}"}
    staff = Staff()
    try:
        async with aiohttp.ClientSession() as http:
            feed = asyncio.create_task(staff.listen(http, hub))

            async def shop_stock() -> dict[str, Any] | None:
                async with http.get(f"{shop}/api/stores/{STORE}/stock/{SKU}") as r:
                    return await r.json() if r.status == 200 else None

            start = await wait_until(shop_stock, 60, "the shop's first view of the store")

            # 1. The member opts in; the shop issues the key and sends it to the store.
            async with http.post(f"{shop}/api/members/m-ann/opt-in",
                                 json={"store": STORE, "display_name": "Ann"}) as r:
                assert r.status == 202
                key = bytes.fromhex((await r.json())["beacon_key"])

            async def key_at_store() -> bool:
                async with http.get(f"{hub}/api/members", headers=staff_headers) as r:
                    members = (await r.json())["members"]
                return any(m["id"] == "m-ann" and m["has_key"] for m in members)

            await wait_until(key_at_store, 30, "the member's key at the store")

            # 2. She orders online for pickup; the hub reserves.
            async with http.post(f"{shop}/api/orders", json={
                    "store": STORE, "member": "m-ann", "lines": [{"sku": SKU, "qty": 2}]}) as r:
                assert r.status == 202
                order_id = (await r.json())["id"]

            async def hub_order() -> dict[str, Any] | None:
                async with http.get(f"{hub}/api/orders/{order_id}", headers=staff_headers) as r:
                    order = await r.json() if r.status == 200 else None
                return order if order and order["state"] == "accepted" else None

            await wait_until(hub_order, 30, "the hub to accept the order")

            # 3. Staff pick it and mark it ready.
            async with http.post(f"{hub}/api/orders/{order_id}/transition",
                                 json={"to": "ready"}, headers=staff_headers) as r:
                assert r.status == 200

            # 4. She walks in; the door relay node forwards what it hears.
            reminded = threading.Event()
            walking = asyncio.create_task(
                asyncio.to_thread(walk_in, mosquitto.port, key, reminded))

            async def reminders() -> list[dict[str, Any]]:
                async with http.get(f"{shop}/api/members/m-ann/reminders") as r:
                    return (await r.json())["reminders"]

            try:
                await wait_until(reminders, CONFIRM_S + 33, "the reminder at the shop")
                await asyncio.sleep(LINGER_S)  # still heard on the shop floor: nothing doubles
            finally:
                reminded.set()
                await walking
            arrivals = [e for e in staff.of_type("presence")
                        if e["data"].get("event") == "arrived"]
            assert [e["data"]["member"] for e in arrivals] == ["m-ann"]
            await asyncio.sleep(2)  # anything doubled would have arrived by now
            sent = await reminders()
            assert len(sent) == 1, sent
            assert order_id in json.dumps(sent[0]["data"])
            alerts = staff.of_type("arrival.alert")
            assert len(alerts) == 1 and alerts[0]["data"]["order_id"] == order_id

            # 5. She collects; the shop's stock view follows within a second.
            async with http.post(f"{hub}/api/orders/{order_id}/transition",
                                 json={"to": "collected"}, headers=staff_headers) as r:
                assert r.status == 200
            collected_at = time.monotonic()

            async def final_stock() -> dict[str, Any] | None:
                view = await shop_stock()
                done = view and view["on_hand"] == start["on_hand"] - 2
                return view if done and view["available"] == start["available"] - 2 else None

            view = await wait_until(final_stock, 1.0, "the final stock at the shop")
            assert time.monotonic() - collected_at <= 1.0
            async with http.get(f"{hub}/api/stock/{SKU}") as r:
                ledger = await r.json()
            assert (view["on_hand"], view["available"]) == (ledger["on_hand"],
                                                            ledger["available"])
            async with http.get(f"{shop}/api/orders/{order_id}") as r:
                assert (await r.json())["state"] == "collected"
            feed.cancel()
    finally:
        for proc in (hub_proc, shop_proc):
            proc.terminate()
            proc.wait(timeout=30)
