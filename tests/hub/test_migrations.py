"""Schema migrations on a database that already holds a store's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import db as db_module
from hub.db import Database, available_migrations


def test_image_ids_are_not_reused_and_the_rebuild_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a deleted photo's id went to the next photo enrolled, so a "remove photo" sent
    again removed the newer one. 0040 rebuilds the table with AUTOINCREMENT; the embeddings
    that reference it must survive (dropping the table cascades)."""
    every = available_migrations()
    monkeypatch.setattr(db_module, "available_migrations", lambda: [m for m in every if m[0] < 40])
    database = Database(tmp_path / "hub.db")
    database.migrate()
    with database.transaction() as tx:
        tx.execute("INSERT INTO products (sku, names, aliases, category, price_cents, shelf, "
                   "updated_at) VALUES ('P', '{}', '{}', '', 0, '', 0)")
        for n in (1, 2):
            tx.execute("INSERT INTO product_images (id, sku, path, kind, sha256, added_at) "
                       "VALUES (?, 'P', ?, 'reference', ?, 0)", (n, f"P/{n}.jpg", f"h{n}"))
            tx.execute("INSERT INTO product_embeddings VALUES (?, 'm', 1, x'0000803f')", (n,))
    monkeypatch.setattr(db_module, "available_migrations", lambda: [m for m in every if m[0] <= 40])
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
