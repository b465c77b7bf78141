"""A hub killed with SIGKILL in the middle of a burst of movements restarts with a consistent
ledger and without losing any movement it acknowledged."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp

from hub.demo.store import CATALOG, IMAGES
from tests.fixtures.hub_process import start_hub, write_hub_config
from tests.fixtures.ports import free_port

TOKEN = "process-test-token-0123456789"


async def burst(port: int, acked: list[str], stop_after: int) -> None:
    """Send movements from 16 concurrent clients until ``stop_after`` are acknowledged."""
    url = f"http://127.0.0.1:{port}/api/stock/movements"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    counter = iter(range(10**6))

    async def worker(session: aiohttp.ClientSession) -> None:
        while len(acked) < stop_after:
            i = next(counter)
            body = {"sku": f"GS-{i % 5:03d}", "qty": 1 + i % 4, "reason": "receipt",
                    "ref": f"burst-{i}"}
            try:
                async with session.post(url, json=body, headers=headers) as response:
                    if response.status == 201:
                        acked.append(body["ref"])
            except aiohttp.ClientError:
                return

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(16)))


def test_sigkill_mid_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    config = write_hub_config(tmp_path, port)
    subprocess.run([sys.executable, "-m", "hub.cli", "catalog", "import", str(CATALOG),
                    "--images", str(IMAGES), "--config", str(config)], check=True,
                   capture_output=True)
    proc = start_hub(config, port)
    acked: list[str] = []

    async def run_and_kill() -> None:
        sender = asyncio.create_task(burst(port, acked, stop_after=10**9))
        while len(acked) < 150:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(sender, timeout=30)

    asyncio.run(run_and_kill())
    assert proc.wait(timeout=10) == -signal.SIGKILL

    proc = start_hub(config, port)
    try:
        db = sqlite3.connect(tmp_path / "hub.db")
        refs = {r for (r,) in db.execute("SELECT ref FROM stock_ledger WHERE ref LIKE 'burst-%'")}
        missing = set(acked) - refs
        assert not missing, f"{len(missing)} acknowledged movements lost"
        derived = dict(db.execute("SELECT sku, on_hand FROM stock"))
        summed = dict(db.execute("SELECT sku, SUM(qty) FROM stock_ledger GROUP BY sku"))
        assert derived == summed
        outbox = db.execute("SELECT count(*) FROM outbox WHERE type = 'stock.movement'").fetchone()
        ledger = db.execute("SELECT count(*) FROM stock_ledger").fetchone()
        assert outbox == ledger, "every movement has its outbox message"
        integrity = db.execute("PRAGMA integrity_check").fetchone()
        assert integrity == ("ok",)
        # The restarted hub serves the recovered stock and keeps counting from the last seq.
        meta = db.execute("SELECT value FROM store_meta WHERE key = 'last_seq'").fetchone()
        last_seq = int(meta[0])
        db.close()

        async def after() -> dict[str, object]:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"http://127.0.0.1:{port}/api/stock/movements",
                    json={"sku": "GS-000", "qty": 1, "reason": "receipt"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as response:
                    assert response.status == 201
                    return json.loads(await response.text())

        movement = asyncio.run(after())
        assert movement["seq"] == last_seq + 1
        assert movement["stock"]["on_hand"] == derived["GS-000"] + 1  # type: ignore[index]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, "SIGTERM stops the hub cleanly"
