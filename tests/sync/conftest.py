"""Fixtures of the sync tests: a real mosquitto, a hub with sync enabled (in this process, on the
system clock) and the shop service, on temp files; and a wait-until helper."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
import pytest_asyncio
from paho.mqtt.enums import CallbackAPIVersion

from hub.app import RunningHub, start_hub
from hub.backup import copy_database
from hub.clock import Clock
from hub.config import HubConfig
from hub.sync_link import audit_export
from sync.shop.audit import AuditReport, audit_store
from sync.shop.config import ShopConfig
from sync.shop.service import ShopService
from tests.fixtures.mosquitto import Mosquitto, mosquitto  # noqa: F401 - the fixture

STAFF_TOKEN = "sync-test-staff-token-0123456789"
STORE = "store-1"

#: Short intervals so recovery paths run within a test's seconds.
FAST_MQTT: dict[str, Any] = {
    "enabled": True, "ack_timeout_s": 2.0, "snapshot_interval_s": 0.1, "poll_interval_s": 0.5,
    "backoff_initial_s": 0.05, "backoff_max_s": 0.5, "keepalive_s": 5,
}
#: The other features are not under test here and would only cost CPU (or need their models).
OTHER_FEATURES_OFF: dict[str, Any] = {
    name: {"enabled": False} for name in ("vision", "voice", "beacons")}
CATALOG = [
    (1, {"sku": "OAT-1", "names": {"en": "Oat milk"}, "stock": 50}),
    (2, {"sku": "BAN-1", "names": {"en": "Banana"}, "stock": 200}),
    (3, {"sku": "APL-1", "names": {"en": "Apple"}, "stock": 0}),
]


def hub_config(folder: Path, broker_port: int, store: str = STORE, **mqtt: Any) -> HubConfig:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "staff-token").write_text(STAFF_TOKEN + "\n")
    return HubConfig.model_validate({
        "store": {"id": store, "name": store, "database": str(folder / "hub.db"),
                  "images_dir": str(folder / "images")},
        "web": {"host": "127.0.0.1", "port": 0, "staff_token_file": str(folder / "staff-token")},
        "mqtt": {**FAST_MQTT, "port": broker_port, **mqtt},
        **OTHER_FEATURES_OFF,
    })


def shop_config(folder: Path, broker_port: int, protocol: str = "5", **sync: Any) -> ShopConfig:
    return ShopConfig.model_validate({
        "database": str(folder / "shop.db"),
        "http": {"host": "127.0.0.1", "port": 0},
        "mqtt": {"port": broker_port, "protocol": protocol, "backoff_initial_s": 0.05,
                 "backoff_max_s": 0.5, "keepalive_s": 5,
                 "shared_group": "shop" if protocol == "5" else None},
        "sync": {"ack_interval_s": 0.02, "resend_after_s": 2.0, **sync},
    })


async def wait_until(check: Callable[[], Any] | Callable[[], Awaitable[Any]],
                     timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def applied(shop: ShopService, timeout: float = 30.0) -> None:
    """Wait until ``shop`` has finished with every message it received so far.

    Its database shows a batch as soon as the writer thread commits it; the batch's metrics,
    acks and live-feed rows follow on the event loop afterwards. A test that sees a commit and
    then looks at those without letting the loop run races the shop (and loses on a busy
    machine), so it waits for this first.
    """
    try:
        await asyncio.wait_for(shop.shop.link.idle.wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"the shop still busy after {timeout} s") from None


class SyncPair:
    """A hub and the shop service on one broker, with the calls tests make on both."""

    def __init__(self, folder: Path, broker: Mosquitto, protocol: str = "5") -> None:
        self.folder = folder
        self.broker = broker
        self.protocol = protocol
        self.store = STORE
        self.hub: RunningHub | None = None
        self.shop: ShopService | None = None
        self.http = aiohttp.ClientSession()
        self.staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}

    async def start_hub(self, clock: Clock | None = None, **mqtt: Any) -> RunningHub:
        self.hub = await start_hub(hub_config(self.folder / "hub", self.broker.port,
                                              protocol=self.protocol, **mqtt), clock=clock)
        return self.hub

    async def start_shop(self, **sync: Any) -> ShopService:
        self.shop = ShopService(shop_config(self.folder / "shop", self.broker.port,
                                            self.protocol, **sync))
        await self.shop.start()
        await wait_until(self.shop.shop.link.subscribed.is_set, 10, "the shop to subscribe")
        return self.shop

    async def stop_hub(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None

    async def stop_shop(self) -> None:
        if self.shop is not None:
            await self.shop.stop()
            self.shop = None

    async def close(self) -> None:
        await self.stop_shop()
        await self.stop_hub()
        await self.http.close()

    @property
    def shop_db(self) -> Path:
        return self.folder / "shop" / "shop.db"

    async def back_up_shop(self) -> Path:
        """Stop the shop, copy its database whole and consistent (as the hub's backups are
        made), and start it again; returns the copy."""
        await self.stop_shop()
        saved = self.folder / "shop-backup.db"

        def copy() -> None:
            conn = sqlite3.connect(self.shop_db)
            try:
                copy_database(conn, saved)
            finally:
                conn.close()

        await asyncio.to_thread(copy)
        await self.start_shop()
        return saved

    async def put_back_shop(self, saved: Path) -> None:
        """Stop the shop and put the copy ``saved`` in place of its database (an operator's
        restore); the caller starts it again."""
        await self.stop_shop()
        for leftover in ("-wal", "-shm"):
            self.shop_db.with_name(self.shop_db.name + leftover).unlink(missing_ok=True)
        shutil.copyfile(saved, self.shop_db)

    def shop_sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``query`` on the shop's database file (committed), as an operator would."""
        conn = sqlite3.connect(self.shop_db)
        try:
            with conn:
                return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    async def reported(self, store: str | None = None, timeout: float = 30.0) -> None:
        """Wait until ``store`` (this pair's by default) has reported to the shop, which takes
        commands (orders, opt-ins) only for stores it has heard from."""
        wanted = store or self.store

        def known() -> bool:
            return bool(self.shop_sql("SELECT 1 FROM stores WHERE store = ?", wanted))

        await wait_until(known, timeout, f"{wanted} to report to the shop")

    async def import_catalog(self) -> None:
        assert self.hub is not None
        svc = self.hub.services
        report = await svc.db.write(svc.catalog.import_rows, CATALOG, self.folder)
        assert not report.rejected

    async def hub_api(self, method: str, path: str, body: Any = None,
                      expect: int | tuple[int, ...] = (200, 201)) -> Any:
        assert self.hub is not None
        async with self.http.request(method, self.hub.url + path, json=body,
                                     headers=self.staff) as response:
            data = await response.json()
            wanted = expect if isinstance(expect, tuple) else (expect,)
            assert response.status in wanted, (response.status, data)
            return data

    async def shop_api(self, method: str, path: str, body: Any = None,
                       expect: int | tuple[int, ...] = 200) -> Any:
        assert self.shop is not None
        async with self.http.request(method, self.shop.url + path, json=body) as response:
            data = await response.json()
            wanted = expect if isinstance(expect, tuple) else (expect,)
            assert response.status in wanted, (response.status, data)
            return data

    def audit(self) -> AuditReport:
        assert self.hub is not None
        ledger, stock = audit_export(self.hub.services.db)
        return audit_store(self.shop_db, self.store, ledger, stock)

    async def settled(self, timeout: float = 30.0) -> AuditReport:
        """Wait until the shop's view equals the hub's ledger exactly and the shop has finished
        with what it applied, and return the audit."""
        report: AuditReport | None = None

        def exact() -> bool:
            nonlocal report
            report = self.audit()
            return report.exact and report.ledger_rows > 0

        try:
            await wait_until(exact, timeout, "the shop's view to equal the hub's ledger")
        except AssertionError:
            raise AssertionError(f"not settled: {report}") from None
        assert report is not None
        if self.shop is not None:
            await applied(self.shop, timeout)
        return report


@pytest_asyncio.fixture
async def pair(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[SyncPair]:  # noqa: F811
    """A hub (catalogue imported) and the shop, both started, on MQTT 5; the store has reported
    to the shop (its birth comes in the background, after the shop subscribed)."""
    sync_pair = SyncPair(tmp_path, mosquitto)
    await sync_pair.start_hub()
    await sync_pair.import_catalog()
    await sync_pair.start_shop()
    await sync_pair.reported()
    yield sync_pair
    await sync_pair.close()


class RawClient:
    """A bare paho client (its own network thread) for publishing what no real endpoint would."""

    def __init__(self, port: int, client_id: str, protocol: int = paho.MQTTv5,
                 username: str | None = None, password: str | None = None,
                 ca_file: Path | None = None) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.received: list[paho.MQTTMessage] = []
        self.pubacks: dict[int, int] = {}  # packet id -> PUBACK reason code
        self.subacks: dict[int, list[int]] = {}
        self.connack: int | None = None
        self.client.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "connack", int(rc.value))
        self.client.on_message = lambda _c, _u, message: self.received.append(message)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(
            mid, int(rc.value))
        self.client.on_subscribe = lambda _c, _u, mid, codes, _p: self.subacks.__setitem__(
            mid, [int(c.value) for c in codes])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        deadline = time.monotonic() + 5
        while self.connack is None and time.monotonic() < deadline:
            time.sleep(0.01)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code (0: accepted)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 5
        while info.mid not in self.pubacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe at QoS 1 and return the SUBACK reason codes."""
        _, mid = self.client.subscribe(topic, qos=1)
        deadline = time.monotonic() + 5
        while mid not in self.subacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.subacks[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
