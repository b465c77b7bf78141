"""Retention of the stock ledger and finished orders on years of a busy store: the whole run's
time, the longest one batch held the database's writer, and as the baseline a plain SQLite
``DELETE`` of as many rows of a table with the ledger's indexes, in one transaction.

    .venv/bin/python bench/retention.py [--rows 1000000] [--skus 2000] [--orders 100000]

The ledger's rows are spread evenly over three years, so about two thirds are older than the
default 400 days; the shop has acknowledged them all. Prints one JSON object. Ratios to the
baseline hold on a noisy machine; absolute figures do not.

On the build machine (2 shared cores), 1 M ledger rows and 100,000 orders: 634,703 rows and
63,471 orders deleted in 27.4 s in 142 transactions (the longest 0.97 s), 3.8 times the
baseline's single DELETE (7.2 s, which held the writer all that time); 300,000 rows: 3.6 s,
each transaction 82 ms at the median, 125 ms at the longest. Later hourly runs each delete an
hour's rows.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub import retention  # noqa: E402
from hub.clock import ManualClock  # noqa: E402
from hub.config import HubConfig  # noqa: E402
from hub.config.retention import RetentionConfig  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.retention import DAY_S, Retention  # noqa: E402
from hub.services import build_services  # noqa: E402

SPAN_S = 3 * 365 * DAY_S


def fill(conn: sqlite3.Connection, rows: int, skus: int, orders: int, now: float) -> None:
    """``rows`` ledger rows over ``skus`` products and ``orders`` collected orders (one line,
    three history rows each), all spread over ``SPAN_S`` before ``now``; everything acked."""
    start = now - SPAN_S
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO products (sku, names, updated_at) VALUES (?, '{}', ?)",
                     ((f"SKU-{i:05d}", start) for i in range(skus)))
    conn.executemany(
        "INSERT INTO stock_ledger (seq, movement_id, sku, qty, reason, ts) "
        "VALUES (?, ?, ?, ?, 'receipt', ?)",
        ((seq, f"m{seq:026d}", f"SKU-{seq % skus:05d}", 1 + seq % 3,
          start + SPAN_S * seq / (rows + 1)) for seq in range(1, rows + 1)))
    conn.execute("UPDATE store_meta SET value = ? WHERE key = 'last_seq'", (str(rows),))
    conn.execute("UPDATE sync_state SET value = ? WHERE key = 'acked_seq'", (rows,))
    for i in range(orders):
        at = start + SPAN_S * i / (orders + 1)
        conn.execute("INSERT INTO orders (id, state, created_at, updated_at) "
                     "VALUES (?, 'collected', ?, ?)", (f"o-{i}", at, at))
        conn.execute("INSERT INTO order_lines VALUES (?, 1, 'SKU-00000', 1)", (f"o-{i}",))
        conn.executemany("INSERT INTO order_history (order_id, to_state, actor, ts) "
                         "VALUES (?, ?, 'bench', ?)",
                         ((f"o-{i}", state, at) for state in ("pending", "ready", "collected")))
    conn.execute("COMMIT")


def baseline(folder: Path, rows: int, deleted: int) -> float:
    """Seconds to delete the first ``deleted`` of ``rows`` rows of a table with the ledger's
    indexes in one transaction: no batches, no sums kept, no newest rows spared."""
    conn = sqlite3.connect(folder / "plain.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, movement_id TEXT UNIQUE, sku TEXT, "
                 "qty INTEGER, ts REAL)")
    conn.execute("CREATE INDEX t_sku ON t (sku, id)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, 1, 0)",
                     ((i, f"m{i:026d}", f"SKU-{i % 2000:05d}") for i in range(1, rows + 1)))
    conn.execute("COMMIT")
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM t WHERE id <= ?", (deleted,))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


class TimedDatabase:
    """Wraps ``Database.write`` to time each call (each batch is one)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.writes: list[float] = []
        self._write = db.write

    async def write(self, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await self._write(fn, *args)
        finally:
            self.writes.append(time.perf_counter() - t0)


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    clock = ManualClock()
    config = HubConfig.model_validate({
        "store": {"id": "bench", "name": "Bench", "database": str(folder / "hub.db"),
                  "images_dir": str(folder / "img")},
        "web": {"staff_token_file": str(folder / "token")},
    })
    (folder / "token").write_text("bench-staff-token-0123456789\n")
    services = build_services(config, clock, with_features=False)
    try:
        conn = sqlite3.connect(config.store.database, isolation_level=None)
        t0 = time.perf_counter()
        fill(conn, args.rows, args.skus, args.orders, clock.now())
        conn.close()
        filled_s = time.perf_counter() - t0
        timed = TimedDatabase(services.db)
        services.db.write = timed.write  # type: ignore[method-assign]
        job = Retention(RetentionConfig(), services.db, clock)
        t0 = time.perf_counter()
        deleted = await job.run_once()
        total_s = time.perf_counter() - t0
        level = services.db.query_one(
            "SELECT (SELECT sum(on_hand) FROM stock) AS stock, "
            "(SELECT sum(qty) FROM stock_ledger) + (SELECT sum(qty) FROM stock_ledger_pruned) "
            "AS ledger")
        assert level is not None and level["stock"] == level["ledger"], level
    finally:
        services.close()
    base_s = baseline(folder, args.rows, deleted["stock_ledger"])
    return {
        "ledger_rows": args.rows, "skus": args.skus, "orders": args.orders,
        "fill_s": round(filled_s, 2),
        "deleted": {k: v for k, v in deleted.items() if k in ("stock_ledger", "orders")},
        "batch_rows": retention.BATCH_ROWS, "batches": len(timed.writes),
        "run_s": round(total_s, 3),
        "write_p50_ms": round(sorted(timed.writes)[len(timed.writes) // 2] * 1000, 1),
        "longest_write_ms": round(max(timed.writes) * 1000, 1),
        "ledger_rows_per_s": round(deleted["stock_ledger"] / total_s),
        "baseline_plain_delete_s": round(base_s, 3),
        "ratio_to_baseline": round(total_s / base_s, 2),
        "ledger_adds_up_to_stock": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skus", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(run(args, Path(tmp))), indent=2))


if __name__ == "__main__":
    main()
