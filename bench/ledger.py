"""Durable stock movements per second and latency, through the HTTP API and directly, against a
plain SQLite insert loop with the same durability (WAL, synchronous=FULL, one commit per row).

    .venv/bin/python bench/ledger.py [--n 2000] [--concurrency 16]

Prints one JSON object. Ratios to the baseline hold on a noisy machine; absolute figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.app import start_hub  # noqa: E402
from hub.config import HubConfig  # noqa: E402
from hub.demo.store import CATALOG, IMAGES  # noqa: E402
from hub.inventory import MovementIn  # noqa: E402
from hub.services import build_services  # noqa: E402

TOKEN = "bench-staff-token-0123456789"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    return {
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
    }


def baseline(folder: Path, n: int) -> dict[str, float]:
    """One INSERT and COMMIT per row on a WAL database with synchronous=FULL."""
    conn = sqlite3.connect(folder / "plain.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, sku TEXT, qty INTEGER, ts REAL)")
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (sku, qty, ts) VALUES (?, ?, ?)", ("GS-000", 1, time.time()))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    return summary(latencies, elapsed)


def config_for(folder: Path) -> HubConfig:
    (folder / "token").write_text(TOKEN)
    return HubConfig.model_validate({
        "store": {"id": "bench", "name": "Bench", "database": str(folder / "hub.db"),
                  "images_dir": str(folder / "images")},
        "web": {"port": 0, "staff_token_file": str(folder / "token")},
    })


def direct(folder: Path, n: int) -> dict[str, float]:
    """Inventory.record called in a loop: the ledger, derived stock and outbox per movement."""
    services = build_services(config_for(folder), with_features=False)
    services.catalog.import_file(CATALOG, IMAGES)
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        services.inventory.record(MovementIn(sku=f"GS-{i % 81:03d}", qty=1, reason="receipt",
                                             ref=f"d-{i}"))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    services.close()
    return summary(latencies, elapsed)


async def http(folder: Path, n: int, concurrency: int) -> dict[str, Any]:
    """POST /api/stock/movements from ``concurrency`` clients on keep-alive connections."""
    config = config_for(folder)
    services = build_services(config, with_features=False)
    services.catalog.import_file(CATALOG, IMAGES)
    hub = await start_hub(config, services=services)
    url = f"{hub.url}/api/stock/movements"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            body = {"sku": f"GS-{i % 81:03d}", "qty": 1, "reason": "receipt", "ref": f"h-{i}"}
            t0 = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                assert response.status == 201, response.status
            latencies.append(time.perf_counter() - t0)

    try:
        async with aiohttp.ClientSession() as session:
            start = time.perf_counter()
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
        rows = services.db.query("SELECT count(*) AS n FROM stock_ledger WHERE ref LIKE 'h-%'")
        assert rows[0]["n"] == n
    finally:
        await hub.stop()
    return {**summary(latencies, elapsed), "concurrency": concurrency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="Movements per measurement.")
    parser.add_argument("--concurrency", type=int, default=16, help="HTTP clients in parallel.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("base", "direct", "http", "http1"):
            (root / name).mkdir()
        base = baseline(root / "base", args.n)
        direct_ = direct(root / "direct", args.n)
        http_ = asyncio.run(http(root / "http", args.n, args.concurrency))
        http_one = asyncio.run(http(root / "http1", max(200, args.n // 4), 1))
    result = {
        "benchmark": "ledger",
        "n": args.n,
        "baseline_plain_sqlite_insert": base,
        "direct_inventory_record": direct_,
        "http_api": http_,
        "http_api_one_client": http_one,
        "ratio_direct_to_baseline": round(direct_["per_s"] / base["per_s"], 3),
        "ratio_http_to_baseline": round(http_["per_s"] / base["per_s"], 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
