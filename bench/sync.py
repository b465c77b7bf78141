"""Sync figures, end to end through real processes, against raw paho QoS 1 on the same broker.

    .venv/bin/python bench/sync.py [--n 3000] [--rate 100] [--seconds 10] [--drain 100000]

* throughput: movements per second from the hub's HTTP API (16 concurrent clients) until the shop
  service's view has applied them all; baseline: one paho client publishing QoS 1 to another;
* latency at a steady rate: POST to the hub -> the change arrives on the shop's SSE stream
  (p50/p99); baseline: paho publish -> paho receive at the same rate;
* drain: 100,000 movements recorded while the store was offline (through the hub's own
  ``Inventory.record``, 1,000 per commit), then the hub starts: seconds until the shop has applied
  them all, and the same count published raw.

Prints one JSON object. Ratios to the baselines hold on a noisy machine; absolute figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.clock import SystemClock  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.inventory import Inventory, MovementIn  # noqa: E402
from tests.fixtures.hub_process import start_hub  # noqa: E402
from tests.fixtures.mosquitto import Mosquitto  # noqa: E402
from tests.fixtures.ports import free_port  # noqa: E402
from tests.sync.processes import (  # noqa: E402
    STAFF_TOKEN,
    audit_files,
    hub_toml,
    import_catalog,
    kill,
    shop_toml,
    start_shop,
)

STORE = "bench-store"
SKUS = [f"SKU-{n:03d}" for n in range(50)]
CATALOG = [(n + 1, {"sku": sku, "names": {"en": sku}, "stock": 1000})
           for n, sku in enumerate(SKUS)]
PAYLOAD_BYTES = 420  # about the size of a stock.movement envelope
RAW_WINDOW = 1000  # raw messages published ahead of PUBACKs, like the hub's send window


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- raw paho baseline --------------------------------------------------------------------------

class RawPair:
    """A paho publisher and subscriber (each with its own network thread) on one topic."""

    def __init__(self, port: int) -> None:
        self.arrived: list[tuple[float, float]] = []  # (sent, received)
        self.done = threading.Event()
        self.expect = 0
        self.sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="raw-sub",
                               protocol=paho.MQTTv5)
        self.sub.on_message = self._message
        self.sub.connect("127.0.0.1", port)
        self.sub.subscribe("raw/bench", qos=1)
        self.sub.loop_start()
        self.pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="raw-pub",
                               protocol=paho.MQTTv5)
        self.pub.max_inflight_messages_set(100)
        self.acked = threading.Semaphore(RAW_WINDOW)  # paho's own queue is O(n) per PUBACK
        self.pub.on_publish = lambda *_: self.acked.release()
        self.pub.connect("127.0.0.1", port)
        self.pub.loop_start()
        time.sleep(0.5)

    def _message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        self.arrived.append((float(message.payload[:20]), time.time()))
        if len(self.arrived) >= self.expect:
            self.done.set()

    def run(self, count: int, rate: float | None) -> tuple[float, list[float]]:
        """Publish ``count`` messages (at ``rate`` per second, or as fast as possible); returns
        (elapsed seconds until the last arrived, latencies)."""
        self.arrived.clear()
        self.done.clear()
        self.expect = count
        start = time.time()
        for n in range(count):
            if rate:
                time.sleep(max(0.0, start + n / rate - time.time()))
            self.acked.acquire()
            stamp = f"{time.time():<20.6f}".encode()
            self.pub.publish("raw/bench", stamp.ljust(PAYLOAD_BYTES, b" "), qos=1)
        self.done.wait(600)
        elapsed = max(r for _, r in self.arrived) - start
        return elapsed, [r - s for s, r in self.arrived]

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_stop()


# --- the real thing -----------------------------------------------------------------------------

class Rig:
    """Broker, hub process and shop process on temp files."""

    def __init__(self, folder: Path, broker: Mosquitto) -> None:
        self.folder = folder
        self.broker = broker
        self.web_port = free_port()
        self.hub_config = hub_toml(folder / "hub", self.web_port, broker.port, STORE)
        self.hub_db = folder / "hub" / "hub.db"
        self.shop_db = folder / "shop" / "shop.db"
        import_catalog(self.hub_db, CATALOG, folder)
        self.shop_config, self.shop_port = shop_toml(folder / "shop", broker.port)
        self.hub = start_hub(self.hub_config, self.web_port)
        self.shop = start_shop(self.shop_config, self.shop_port)
        self.hub_url = f"http://127.0.0.1:{self.web_port}"
        self.shop_url = f"http://127.0.0.1:{self.shop_port}"

    def stop(self) -> None:
        for proc in (self.hub, self.shop):
            if proc.poll() is None:
                kill(proc)

    async def applied(self, http: aiohttp.ClientSession) -> int:
        async with http.get(f"{self.shop_url}/api/stores") as response:
            stores = (await response.json())["stores"]
        return next((s["applied_seq"] for s in stores if s["store"] == STORE), 0)

    async def hub_last_seq(self, http: aiohttp.ClientSession) -> int:
        async with http.get(f"{self.hub_url}/api/stock") as response:
            return max(level["seq"] for level in (await response.json())["stock"])

    async def wait_applied(self, http: aiohttp.ClientSession, seq: int,
                           timeout: float = 900) -> float:
        deadline = time.time() + timeout
        while (await self.applied(http)) < seq:
            if time.time() > deadline:
                raise RuntimeError(f"the shop never applied seq {seq}")
            await asyncio.sleep(0.02)
        return time.time()


async def post_movement(http: aiohttp.ClientSession, url: str, rng: random.Random) -> int:
    body = {"sku": rng.choice(SKUS), "qty": 1, "reason": rng.choice(["sale", "receipt"])}
    async with http.post(f"{url}/api/stock/movements", json=body,
                         headers={"Authorization": f"Bearer {STAFF_TOKEN}"}) as response:
        assert response.status == 201, await response.text()
        return int((await response.json())["seq"])


async def throughput(rig: Rig, count: int, concurrency: int = 16) -> dict[str, float]:
    rng = random.Random(1)
    async with aiohttp.ClientSession() as http:
        await rig.wait_applied(http, await rig.hub_last_seq(http))
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(count):
            queue.put_nowait(n)
        seqs: list[int] = []

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                seqs.append(await post_movement(http, rig.hub_url, rng))

        start = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        api_done = time.time()
        end = await rig.wait_applied(http, max(seqs))
    return {"movements": count, "per_s": round(count / (end - start), 1),
            "hub_api_only_per_s": round(count / (api_done - start), 1)}


async def steady(rig: Rig, rate: float, seconds: float) -> dict[str, float]:
    rng = random.Random(2)
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rig.shop_url}/api/stock/stream?store={STORE}",
                            timeout=aiohttp.ClientTimeout(total=None)) as stream:

            async def listen() -> None:
                async for line in stream.content:
                    if line.startswith(b"id: "):
                        seq = int(line[4:].decode().strip().rsplit(":", 1)[1])
                        received.setdefault(seq, time.time())

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.3)

            async def one() -> None:
                started = time.time()
                sent[await post_movement(http, rig.hub_url, rng)] = started

            start = time.time()
            tasks = []
            for n in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, start + n / rate - time.time()))
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
            deadline = time.time() + 30
            while not set(sent) <= set(received) and time.time() < deadline:
                await asyncio.sleep(0.05)
            listener.cancel()
    latencies = [received[s] - t for s, t in sent.items() if s in received]
    return {"rate_per_s": rate, "count": len(sent), "missing_on_stream": len(sent) - len(latencies),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1)}


def record_offline(hub_db: Path, count: int, batch: int = 1000) -> float:
    """``count`` movements through ``Inventory.record``, ``batch`` per commit; returns seconds."""
    rng = random.Random(3)
    db = Database(hub_db)
    start = time.time()
    try:
        inventory = Inventory(db, SystemClock())
        for done in range(0, count, batch):
            with db.transaction():
                for _ in range(min(batch, count - done)):
                    inventory.record(MovementIn(sku=rng.choice(SKUS), qty=1,
                                                reason=rng.choice(["sale", "receipt"])))
    finally:
        db.close()
    return time.time() - start


async def drain(rig: Rig, count: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http:
        await rig.wait_applied(http, await rig.hub_last_seq(http))
        kill(rig.hub)
        recorded_s = record_offline(rig.hub_db, count)
        db = Database(rig.hub_db)
        try:
            last = int(db.query_one("SELECT max(seq) AS s FROM outbox")["s"])  # type: ignore[index]
        finally:
            db.close()
        start = time.time()
        rig.hub = start_hub(rig.hub_config, rig.web_port)
        end = await rig.wait_applied(http, last)
    return {"movements": count, "recorded_offline_s": round(recorded_s, 1),
            "drain_s": round(end - start, 1), "drain_per_s": round(count / (end - start), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="movements for the throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="steady rate per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the steady run")
    parser.add_argument("--drain", type=int, default=100_000, help="movements queued offline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "mosquitto")
        broker.start()
        raw = RawPair(broker.port)
        rig = Rig(folder, broker)
        try:
            raw_elapsed, _ = raw.run(args.n, None)
            raw_steady_elapsed, raw_latency = raw.run(int(args.rate * args.seconds), args.rate)
            ours = await throughput(rig, args.n)
            ours_steady = await steady(rig, args.rate, args.seconds)
            raw_drain_elapsed, _ = raw.run(args.drain, None)
            ours_drain = await drain(rig, args.drain)
            report = audit_files(rig.hub_db, rig.shop_db, STORE)
        finally:
            raw.close()
            rig.stop()
            broker.kill()
    raw_per_s = args.n / raw_elapsed
    result = {
        "throughput": {**ours, "raw_paho_qos1_per_s": round(raw_per_s, 1),
                       "ratio_to_raw": round(ours["per_s"] / raw_per_s, 3)},
        "latency_steady": {**ours_steady, "raw_paho_p50_ms": round(
            percentile(raw_latency, 0.5) * 1000, 2), "raw_paho_p99_ms": round(
            percentile(raw_latency, 0.99) * 1000, 2),
            "raw_elapsed_s": round(raw_steady_elapsed, 2)},
        "drain": {**ours_drain, "raw_paho_same_count_s": round(raw_drain_elapsed, 1)},
        "audit": report.summary(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
