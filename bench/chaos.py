"""Chaos soak: many broker kills and several hub kills (SIGKILL) under a steady load of stock
movements and online orders, then the shop's view is audited against the hub's ledger.

    .venv/bin/python bench/chaos.py [--seconds 120] [--rate 50] [--broker-kills 20] [--hub-kills 4]

Prints one JSON object with the kills done, the movements and orders acknowledged by the hub, and
the audit: ledger rows lost or doubled in the shop's view, units off per SKU, view differences.
Also checks every order the shop accepted reached the hub exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sync import CATALOG, SKUS, STORE, Rig  # noqa: E402
from hub.db import Database  # noqa: E402
from tests.fixtures.hub_process import start_hub  # noqa: E402
from tests.fixtures.mosquitto import Mosquitto  # noqa: E402
from tests.sync.processes import STAFF_TOKEN, audit_files, kill  # noqa: E402


async def load(rig: Rig, rate: float, stop: asyncio.Event,
               counts: dict[str, int], order_ids: list[str]) -> None:
    """Movements at ``rate`` per second and an order every 50 movements; refused requests (the
    hub being down) are counted, not retried."""
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        n = 0
        start = time.time()
        while not stop.is_set():
            await asyncio.sleep(max(0.0, start + n / rate - time.time()))
            n += 1
            body = {"sku": rng.choice(SKUS), "qty": rng.randint(1, 3),
                    "reason": rng.choice(["sale", "sale", "receipt"])}
            try:
                async with http.post(f"{rig.hub_url}/api/stock/movements", json=body,
                                     headers=headers) as response:
                    counts["movements" if response.status == 201 else "refused"] += 1
                if n % 50 == 0:
                    order = {"store": STORE, "member": f"m-{n}",
                             "lines": [{"sku": rng.choice(SKUS), "qty": 1}]}
                    async with http.post(f"{rig.shop_url}/api/orders", json=order) as response:
                        if response.status == 202:
                            order_ids.append((await response.json())["id"])
            except (aiohttp.ClientError, TimeoutError):
                counts["refused"] += 1


async def chaos(rig: Rig, seconds: float, broker_kills: int, hub_kills: int,
                counts: dict[str, int]) -> None:
    rng = random.Random(11)
    events = sorted([(rng.uniform(1, seconds - 2), "broker") for _ in range(broker_kills)]
                    + [(rng.uniform(1, seconds - 2), "hub") for _ in range(hub_kills)])
    start = time.time()
    for at, what in events:
        await asyncio.sleep(max(0.0, start + at - time.time()))
        if what == "broker":
            rig.broker.kill()
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            rig.broker.start()
        else:
            kill(rig.hub)
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            rig.hub = await asyncio.to_thread(start_hub, rig.hub_config, rig.web_port)
        counts[f"{what}_kills"] += 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=50.0, help="movements per second")
    parser.add_argument("--broker-kills", type=int, default=20)
    parser.add_argument("--hub-kills", type=int, default=4)
    parser.add_argument("--settle", type=float, default=300.0, help="seconds allowed to settle")
    args = parser.parse_args()
    counts = {"movements": 0, "refused": 0, "broker_kills": 0, "hub_kills": 0}
    order_ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sync-chaos-") as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "mosquitto")
        broker.start()
        rig = Rig(folder, broker)
        try:
            stop = asyncio.Event()
            loader = asyncio.create_task(load(rig, args.rate, stop, counts, order_ids))
            await chaos(rig, args.seconds, args.broker_kills, args.hub_kills, counts)
            stop.set()
            await loader
            started = time.time()
            report = audit_files(rig.hub_db, rig.shop_db, STORE)
            while not report.exact and time.time() - started < args.settle:
                await asyncio.sleep(0.5)
                report = audit_files(rig.hub_db, rig.shop_db, STORE)
            settle_s = time.time() - started
            orders = await orders_check(rig, order_ids, args.settle)
        finally:
            rig.stop()
            broker.kill()
    print(json.dumps({
        "seconds": args.seconds, "rate_per_s": args.rate, **counts,
        "catalogue_receipts": len(CATALOG), "orders": orders,
        "settle_s": round(settle_s, 1), "lost": len(report.lost),
        "doubled": len(report.doubled), "unexpected": len(report.unexpected),
        "skus_with_unit_diff": len(report.unit_diff),
        "skus_with_view_diff": len(report.view_diff), "exact": report.exact,
        "audit": report.summary(),
    }, indent=2))


async def orders_check(rig: Rig, order_ids: list[str], timeout: float) -> dict[str, int]:
    """Every order the shop took reaches the hub once and the shop shows the hub's state."""
    deadline = time.time() + timeout
    db = Database(rig.hub_db)
    try:
        while True:
            hub = {row["id"]: row["state"] for row in db.query("SELECT id, state FROM orders")}
            async with aiohttp.ClientSession() as http:
                shop = {}
                for order_id in order_ids:
                    async with http.get(f"{rig.shop_url}/api/orders/{order_id}") as response:
                        shop[order_id] = (await response.json())["state"]
            missing = [o for o in order_ids if o not in hub]
            differ = [o for o in order_ids if o in hub and hub[o] != shop[o]]
            if (not missing and not differ) or time.time() > deadline:
                break
            await asyncio.sleep(1.0)
    finally:
        db.close()
    return {"placed": len(order_ids), "missing_at_hub": len(missing),
            "state_differs": len(differ)}


if __name__ == "__main__":
    asyncio.run(main())
