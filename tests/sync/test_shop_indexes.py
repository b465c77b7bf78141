"""The command lookups the shop makes every few seconds (pending commands) and on every order
read (its cancel) use their indexes, on a new database and on one from before they existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sync import messages
from sync.envelope import build, decode
from sync.shop.store import ShopStore, StateItem

STORE = "store-1"
SCHEMA = Path(__file__).resolve().parents[2] / "sync" / "shop" / "schema.sql"


def plans(store: ShopStore, call: Any) -> list[str]:
    """The query plans of the statements ``call`` runs on ``store``'s connection."""
    conn = store._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return [" | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements]


def assert_indexed(store: ShopStore) -> None:
    state = messages.StoreState(state="online", epoch=1, last_seq=0, acked_seq=0)
    store.apply_batch([StateItem(decode(build(store=STORE, epoch=1, seq=0, type_=messages.STATE,
                                              ts=0.0, data=state), 65536), state)], 1.0)
    store.place_order("o-1", STORE, "mem-1", [{"sku": "BAN-1", "qty": 1}], 1.0)
    store.cancel_order("o-1", STORE, None, 2.0)
    lookups = {
        "commands_pending_seq": lambda: store.pending_commands(None, None),
        "commands_pending_store": lambda: store.pending_commands(STORE, None),
        "commands_ref": lambda: store.order("o-1", STORE),
    }
    for index, call in lookups.items():
        plan = [p for p in plans(store, call) if "commands" in p or "SCAN c" in p]
        steps = [step for p in plan for step in p.split(" | ")
                 if step.split()[1:2] in (["c"], ["commands"])]
        # the commands are found through the index, in order, never by a scan of the table
        assert steps and all(f"INDEX {index}" in step for step in steps), (index, plan)
        assert not any("TEMP B-TREE" in p for p in plan), plan
    resend = plans(store, lambda: store.pending_commands(None, 5.0))
    assert any("INDEX commands_pending_seq" in p for p in resend), resend


def test_the_command_lookups_use_their_indexes(tmp_path: Path) -> None:
    store = ShopStore(tmp_path / "shop.db")
    store.create_schema()
    try:
        assert_indexed(store)
    finally:
        store.close()


def test_an_existing_database_gets_the_indexes(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA.read_text())
    # as a database of before: the one index on commands it had
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name = 'commands' AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    conn.execute("CREATE INDEX commands_pending ON commands (store, status, sent_at)")
    conn.commit()
    conn.close()
    store = ShopStore(path)
    store.create_schema()
    try:
        assert_indexed(store)
        assert store._conn().execute("SELECT name FROM sqlite_master WHERE name = "
                                     "'commands_pending'").fetchall() == []
    finally:
        store.close()
