"""Checks the shop's replica of a store against the store's own ledger, exactly.

The shop's stock view must be derivable from the movements it applied: every ledger row applied
once (no seq lost, none doubled, none invented), the applied quantities summing to the ledger's
per SKU, and the view showing the store's current numbers. The store side exports its ledger as
plain rows, so this check needs nothing from the hub's code.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LedgerEntry:
    """One row of a store's ledger."""

    seq: int
    movement_id: str
    sku: str
    qty: int
    reserved_qty: int


@dataclass
class AuditReport:
    """Differences between a store's ledger and the shop's replica (all empty: exact)."""

    store: str
    ledger_rows: int
    applied_rows: int
    lost: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    unit_diff: dict[str, tuple[int, int]] = field(default_factory=dict)
    view_diff: dict[str, tuple[tuple[int, int] | None, tuple[int, int]]] = field(
        default_factory=dict)

    @property
    def exact(self) -> bool:
        return not (self.lost or self.unexpected or self.doubled or self.unit_diff
                    or self.view_diff)

    def summary(self) -> dict[str, int | bool | str]:
        return {"store": self.store, "ledger_rows": self.ledger_rows,
                "applied_rows": self.applied_rows, "lost": len(self.lost),
                "doubled": len(self.doubled), "unexpected": len(self.unexpected),
                "skus_with_unit_diff": len(self.unit_diff),
                "skus_with_view_diff": len(self.view_diff), "exact": self.exact}


def audit_store(shop_db: Path, store: str, ledger: list[LedgerEntry],
                stock: dict[str, tuple[int, int]]) -> AuditReport:
    """Compare ``store``'s ``ledger`` and current ``stock`` (sku -> on_hand, reserved) with the
    shop database at ``shop_db``; a SKU missing from ``stock`` counts as (0, 0)."""
    conn = sqlite3.connect(f"file:{shop_db}?mode=ro", uri=True)
    try:
        applied = conn.execute("SELECT seq, movement_id, sku, qty, reserved_qty FROM movements "
                               "WHERE store = ?", (store,)).fetchall()
        doubled = [row[0] for row in conn.execute(
            "SELECT movement_id FROM movements WHERE store = ? GROUP BY movement_id "
            "HAVING count(*) > 1", (store,))]
        view = {sku: (on_hand, reserved) for sku, on_hand, reserved in conn.execute(
            "SELECT sku, on_hand, reserved FROM stock_view WHERE store = ?", (store,))}
    finally:
        conn.close()
    report = AuditReport(store, len(ledger), len(applied), doubled=doubled)
    ledger_seqs = {e.seq for e in ledger}
    shop_seqs = {row[0] for row in applied}
    report.lost = sorted(ledger_seqs - shop_seqs)
    report.unexpected = sorted(shop_seqs - ledger_seqs)
    ledger_units: dict[str, int] = defaultdict(int)
    shop_units: dict[str, int] = defaultdict(int)
    for e in ledger:
        ledger_units[e.sku] += e.qty
    for _, _, sku, qty, _ in applied:
        shop_units[sku] += qty
    for sku in ledger_units.keys() | shop_units.keys():
        if shop_units[sku] != ledger_units[sku]:
            report.unit_diff[sku] = (shop_units[sku], ledger_units[sku])
    # A SKU the shop shows but the store has no stock row for (imported, never stocked) must
    # show nothing on hand and nothing reserved.
    for sku in stock.keys() | view.keys():
        expected = stock.get(sku, (0, 0))
        if view.get(sku) != expected:
            report.view_diff[sku] = (view.get(sku), expected)
    return report
