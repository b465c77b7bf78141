"""Many stores against one broker and one shop service: how far the protocol scales.

    .venv/bin/python bench/stores.py [--sizes 10,50,200] [--rate 0.5] [--seconds 20] [--max-n 800]

Each simulated store is the hub's real sync path without its web server: its own SQLite ledger
(``Inventory.record``), outbox and ``HubSync`` agent with its own MQTT connection, all in this
process. The shop service runs as its own process (``retail-hub shop``) against one mosquitto.
For each N, every store records movements at ``--rate`` per second for ``--seconds``; the bench
measures the throughput the shop applied, the end-to-end latency from the store's commit to the
change on the shop's Server-Sent Events stream (p50/p99), and the shop's CPU per store. After the
given sizes it keeps doubling N until the system no longer sustains the load (p99 above
``--p99-limit`` or changes missing), and reports the largest N that did. A raw paho QoS 1 stream at
the same total rate on the same broker is the baseline.

Prints one JSON object. On this 2-core machine the stores' side (N agents and ledgers in one
Python process) competes with the shop for the CPU, so the largest N is a floor for the shop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sync import RawPair, percentile  # noqa: E402
from hub.inventory import MovementIn  # noqa: E402
from hub.services import Services, build_services  # noqa: E402
from hub.sync_link import HubSync  # noqa: E402
from tests.fixtures.mosquitto import Mosquitto  # noqa: E402
from tests.sync.conftest import hub_config  # noqa: E402
from tests.sync.processes import shop_toml, start_shop  # noqa: E402

SKUS = [f"SKU-{n:02d}" for n in range(20)]
CATALOG = [(n + 1, {"sku": sku, "names": {"en": sku}, "stock": 100_000})
           for n, sku in enumerate(SKUS)]
BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_connections -1
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Store:
    """One simulated store: ledger, outbox and sync agent."""

    def __init__(self, folder: Path, broker: int, store_id: str) -> None:
        config = hub_config(folder, broker, store=store_id, snapshot_interval_s=1.0,
                            poll_interval_s=2.0, ack_timeout_s=10.0)
        self.services: Services = build_services(config, with_features=False)
        self.services.catalog.import_rows(CATALOG, folder)
        self.sync = HubSync(self.services)
        self.id = store_id
        self.committed: dict[int, float] = {}

    async def start(self) -> None:
        self.services.bus.bind(asyncio.get_running_loop())
        await self.sync.start()

    async def sell(self, rate: float, seconds: float, rng: random.Random) -> None:
        """Record movements at ``rate`` per second (Poisson arrivals) for ``seconds``."""
        end = time.time() + seconds
        await asyncio.sleep(rng.expovariate(rate))
        while time.time() < end:
            movement = MovementIn(sku=rng.choice(SKUS), qty=1,
                                  reason=rng.choice(["sale", "return"]))
            result, _ = await self.services.db.write(self.services.inventory.record, movement)
            self.committed[result.seq] = time.time()
            await asyncio.sleep(rng.expovariate(rate))

    async def stop(self) -> None:
        await self.sync.stop()
        self.services.close()


async def listen(shop_url: str, received: dict[tuple[str, int], float],
                 ready: asyncio.Event) -> None:
    """Record when each (store, seq) change reaches the shop's SSE stream."""
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{shop_url}/api/stock/stream") as stream:
            ready.set()
            async for line in stream.content:
                if line.startswith(b"id: "):
                    store, seq = line[4:].decode().strip().rsplit(":", 1)
                    received.setdefault((store, int(seq)), time.time())


async def run_size(folder: Path, broker: Mosquitto, shop_url: str, shop_pid: int, n: int,
                   rate: float, seconds: float) -> dict[str, Any]:
    stores = [Store(folder / f"n{n}" / f"s{i:04d}", broker.port, f"n{n}-s{i:04d}")
              for i in range(n)]
    received: dict[tuple[str, int], float] = {}
    ready = asyncio.Event()
    listener = asyncio.create_task(listen(shop_url, received, ready))
    try:
        await ready.wait()
        for store in stores:
            await store.start()
        await asyncio.sleep(3)  # births, resyncs and the catalogue's first movements settle
        for store in stores:
            store.committed.clear()
        cpu_before, started = cpu_seconds(shop_pid), time.time()
        rng = random.Random(n)
        await asyncio.gather(*(s.sell(rate, seconds, random.Random(rng.random()))
                               for s in stores))
        wanted = {(s.id, seq): t for s in stores for seq, t in s.committed.items()}
        deadline = time.time() + 30
        while not wanted.keys() <= received.keys() and time.time() < deadline:
            await asyncio.sleep(0.1)
        finished = max([received[k] for k in wanted if k in received], default=time.time())
        cpu = cpu_seconds(shop_pid) - cpu_before
        latencies = [received[k] - t for k, t in wanted.items() if k in received]
        elapsed = finished - started
        return {
            "stores": n,
            "offered_per_s": round(n * rate, 1),
            "movements": len(wanted),
            "missing": len(wanted) - len(latencies),
            "applied_per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "shop_cpu_ms_per_store_per_s": round(cpu / elapsed / n * 1000, 3),
            "shop_cpu_share": round(cpu / elapsed, 3),
        }
    finally:
        listener.cancel()
        for store in stores:
            await store.stop()


def baseline(port: int, total_rate: float, seconds: float) -> dict[str, float]:
    pair = RawPair(port)
    try:
        count = int(total_rate * seconds)
        _, latencies = pair.run(count, total_rate)
    finally:
        pair.close()
    return {"rate_per_s": total_rate, "count": count,
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200", help="Store counts to measure.")
    parser.add_argument("--rate", type=float, default=0.5, help="Movements per store per second.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Load time per size.")
    parser.add_argument("--max-n", type=int, default=800, help="Stop doubling here.")
    parser.add_argument("--p99-limit", type=float, default=2000.0,
                        help="Largest p99 (ms) that still counts as sustained.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "broker", BROKER_CONFIG)
        broker.start()
        shop_config, shop_port = shop_toml(folder / "shop", broker.port)
        shop = start_shop(shop_config, shop_port)
        shop_url = f"http://127.0.0.1:{shop_port}"
        results, largest = [], 0
        try:
            n = sizes[0]
            queue = list(sizes)
            while queue:
                n = queue.pop(0)
                result = await run_size(folder, broker, shop_url, shop.pid, n, args.rate,
                                        args.seconds)
                result["sustained"] = result["missing"] == 0 and \
                    result["p99_ms"] <= args.p99_limit
                results.append(result)
                print(json.dumps(result), file=sys.stderr)
                if result["sustained"]:
                    largest = max(largest, n)
                    if not queue and n * 2 <= args.max_n:
                        queue.append(n * 2)
            raw = baseline(broker.port, max(sizes) * args.rate, args.seconds)
        finally:
            shop.terminate()
            shop.wait(timeout=30)
            broker.stop()
    print(json.dumps({
        "benchmark": "stores",
        "rate_per_store_per_s": args.rate,
        "seconds_per_size": args.seconds,
        "sizes": results,
        "largest_sustained_n": largest,
        "baseline_raw_paho_qos1_at_largest_given_rate": raw,
        "load_average": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
