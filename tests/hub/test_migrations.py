"""Schema migrations on a database that already holds a store's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import db as db_module
from hub.db import Database, available_migrations


def _before(version: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """A store's database as it stood before migration ``version``; its next ``migrate`` applies
    that one migration, as upgrading the hub would."""
    every = available_migrations()
    monkeypatch.setattr(db_module, "available_migrations",
                        lambda: [m for m in every if m[0] < version])
    database = Database(tmp_path / "hub.db")
    database.migrate()
    monkeypatch.setattr(db_module, "available_migrations",
                        lambda: [m for m in every if m[0] <= version])
    return database


def test_image_ids_are_not_reused_and_the_rebuild_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a deleted photo's id went to the next photo enrolled, so a "remove photo" sent
    again removed the newer one. 0040 rebuilds the table with AUTOINCREMENT; the embeddings
    that reference it must survive (dropping the table cascades)."""
    database = _before(40, tmp_path, monkeypatch)
    with database.transaction() as tx:
        tx.execute("INSERT INTO products (sku, names, aliases, category, price_cents, shelf, "
                   "updated_at) VALUES ('P', '{}', '{}', '', 0, '', 0)")
        for n in (1, 2):
            tx.execute("INSERT INTO product_images (id, sku, path, kind, sha256, added_at) "
                       "VALUES (?, 'P', ?, 'reference', ?, 0)", (n, f"P/{n}.jpg", f"h{n}"))
            tx.execute("INSERT INTO product_embeddings VALUES (?, 'm', 1, x'0000803f')", (n,))
    assert database.migrate() == ["0040_image_ids.sql"]
    kept = database.query("SELECT image_id FROM product_embeddings ORDER BY image_id")
    assert [r["image_id"] for r in kept] == [1, 2]
    with database.transaction() as tx:
        tx.execute("DELETE FROM product_images WHERE id = 2")
        (new_id,) = tx.execute(
            "INSERT INTO product_images (sku, path, kind, sha256, added_at) "
            "VALUES ('P', 'P/3.jpg', 'reference', 'h3', 0) RETURNING id"
        ).fetchone()
    assert new_id == 3
    assert [r["image_id"] for r in database.query("SELECT image_id FROM product_embeddings")] == [1]
    database.close()


def test_the_newest_orders_are_listed_without_sorting_them_all(tmp_path: Path) -> None:
    """Why: the staff queue's list (newest first) read and sorted every order the store had."""
    database = Database(tmp_path / "hub.db")
    database.migrate()
    for where in ("", "WHERE state = 'ready'"):
        plan = " / ".join(row["detail"] for row in database.query(
            f"EXPLAIN QUERY PLAN SELECT id FROM orders {where} "
            "ORDER BY created_at DESC, id LIMIT 500"))
        assert "TEMP B-TREE" not in plan, plan
    database.close()


def test_orders_rejected_before_reason_codes_have_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0060 adds the code to a store's existing orders: null, as their reason alone says why."""
    database = _before(60, tmp_path, monkeypatch)
    with database.transaction() as tx:
        tx.execute("INSERT INTO orders (id, state, reason, created_at, updated_at) "
                   "VALUES ('old', 'rejected', 'not sold in this store: GHOST', 0, 0)")
    assert database.migrate() == ["0060_order_reason_codes.sql"]
    assert database.query("SELECT reason, reason_code FROM orders") == [
        {"reason": "not sold in this store: GHOST", "reason_code": None}]
    database.close()
