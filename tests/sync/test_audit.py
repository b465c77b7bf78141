"""The audit of the shop's replica against a store's ledger, on a real shop database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sync.shop.audit import LedgerEntry, audit_store
from sync.shop.store import ShopStore

STORE = "store-1"
LEDGER = [LedgerEntry(1, "m-1", "BAN-1", 10, 0), LedgerEntry(2, "m-2", "BAN-1", -1, 0)]


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    """A shop database that applied both ledger rows and shows BAN-1 at 9 on hand."""
    shop = ShopStore(tmp_path / "shop.db")
    shop.create_schema()
    conn = sqlite3.connect(shop.path)
    with conn:
        conn.executemany(
            "INSERT INTO movements (store, seq, movement_id, sku, qty, reserved_qty, reason, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, 'sale', 0)",
            [(STORE, e.seq, e.movement_id, e.sku, e.qty, e.reserved_qty) for e in LEDGER])
        conn.execute("INSERT INTO stock_view VALUES (?, 'BAN-1', 9, 0, 9, 2, 'movement', 0)",
                     (STORE,))
    conn.close()
    return shop.path


def show(shop_db: Path, sku: str, on_hand: int) -> None:
    conn = sqlite3.connect(shop_db)
    with conn:
        conn.execute("INSERT INTO stock_view VALUES (?, ?, ?, 0, ?, 2, 'snapshot', 0)",
                     (STORE, sku, on_hand, on_hand))
    conn.close()


def test_a_replica_that_matches_the_ledger_is_exact(shop_db: Path) -> None:
    report = audit_store(shop_db, STORE, LEDGER, {"BAN-1": (9, 0)})
    assert report.exact, report


def test_a_product_the_store_never_stocked_must_show_nothing(shop_db: Path) -> None:
    """A product imported without stock has no stock row in the store; the shop showing units of
    it is drift, and showing zero is not."""
    show(shop_db, "APL-1", 0)
    assert audit_store(shop_db, STORE, LEDGER, {"BAN-1": (9, 0)}).exact
    conn = sqlite3.connect(shop_db)
    with conn:
        conn.execute("UPDATE stock_view SET on_hand = 4, available = 4 WHERE sku = 'APL-1'")
    conn.close()
    report = audit_store(shop_db, STORE, LEDGER, {"BAN-1": (9, 0)})
    assert report.view_diff == {"APL-1": ((4, 0), (0, 0))}
    assert not report.exact


def test_a_stocked_product_missing_from_the_replica_is_drift(shop_db: Path) -> None:
    report = audit_store(shop_db, STORE, LEDGER, {"BAN-1": (9, 0), "PEA-1": (0, 0)})
    assert report.view_diff == {"PEA-1": (None, (0, 0))}
