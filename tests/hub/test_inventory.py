"""The stock ledger: directions, idempotent references, review flags, derived stock, append-only."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from hub.errors import Conflict, InvalidInput, NotFound
from hub.inventory import CountIn, MovementIn
from hub.orders import OrderIn
from hub.services import Services


def move(svc: Services, sku: str, qty: int, reason: str, ref: str | None = None):
    return svc.inventory.record(MovementIn(sku=sku, qty=qty, reason=reason, ref=ref))


def ledger_totals(svc: Services) -> dict[str, tuple[int, int]]:
    rows = svc.db.query("SELECT sku, SUM(qty) AS q, SUM(reserved_qty) AS r FROM stock_ledger "
                        "GROUP BY sku")
    return {r["sku"]: (r["q"], r["r"]) for r in rows}


def test_reasons_move_stock_in_their_direction(stocked: Services) -> None:
    assert move(stocked, "BAN-1", 3, "sale")[0].qty == -3
    assert move(stocked, "BAN-1", -3, "sale")[0].qty == -3
    assert move(stocked, "BAN-1", 5, "receipt")[0].qty == 5
    assert move(stocked, "BAN-1", 1, "return")[0].qty == 1
    assert move(stocked, "BAN-1", -2, "adjustment")[0].qty == -2
    assert move(stocked, "BAN-1", 4, "write_off")[0].qty == -4
    level = stocked.inventory.stock("BAN-1")
    assert (level.on_hand, level.reserved, level.available) == (40 - 3 - 3 + 5 + 1 - 2 - 4, 0, 34)


def test_sequence_is_store_wide_and_increasing(stocked: Services) -> None:
    seqs = [move(stocked, sku, 1, "receipt")[0].seq for sku in ("BAN-1", "OAT-1", "BAN-1")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert stocked.inventory.stock("BAN-1").seq == seqs[2]


def test_reference_applies_once(stocked: Services) -> None:
    first, dup = move(stocked, "OAT-1", 2, "sale", ref="till-7:1001")
    again, dup2 = move(stocked, "OAT-1", 2, "sale", ref="till-7:1001")
    assert (dup, dup2) == (False, True)
    assert again.movement_id == first.movement_id and again.seq == first.seq
    assert stocked.inventory.stock("OAT-1").on_hand == 8
    with pytest.raises(Conflict, match="already used for a different movement"):
        move(stocked, "OAT-1", 3, "sale", ref="till-7:1001")


def test_a_count_adjusts_on_hand_to_it_once(stocked: Services) -> None:
    """Why: staff counted a shelf and had to work out the difference from the number the hub
    showed, which sales may have moved meanwhile."""
    stocked.orders.place(OrderIn(id="C1", member=None,  # 3 of the 10 set aside
                                 lines=[{"sku": "OAT-1", "qty": 3}]))  # type: ignore[list-item]
    counted, duplicate = stocked.inventory.count(CountIn(sku="OAT-1", counted=7, note="aisle 3"))
    assert (counted.change, duplicate) == (-3, False)
    assert counted.movement is not None
    assert (counted.movement.reason, counted.movement.note) == ("adjustment", "counted 7: aisle 3")
    level = stocked.inventory.stock("OAT-1")
    assert (level.on_hand, level.reserved, level.available) == (7, 3, 4)
    again, _ = stocked.inventory.count(CountIn(sku="OAT-1", counted=7))
    assert (again.change, again.movement) == (0, None), "a count sent twice moved stock twice"
    short, _ = stocked.inventory.count(CountIn(sku="OAT-1", counted=1, ref="count-9"))
    assert short.change == -6 and short.movement is not None and short.movement.flagged
    replayed, duplicate = stocked.inventory.count(CountIn(sku="OAT-1", counted=1, ref="count-9"))
    assert duplicate and replayed.movement == short.movement
    with pytest.raises(Conflict, match="already used for a different movement"):
        stocked.inventory.count(CountIn(sku="BAN-1", counted=1, ref="count-9"))
    with pytest.raises(NotFound):
        stocked.inventory.count(CountIn(sku="GHOST", counted=1))
    assert ledger_totals(stocked)["OAT-1"][0] == stocked.inventory.stock("OAT-1").on_hand


def test_in_store_sale_below_zero_is_accepted_and_flagged(stocked: Services) -> None:
    movement, _ = move(stocked, "APL-1", 2, "sale")
    assert movement.flagged
    assert movement.stock.on_hand == -2
    flagged = stocked.inventory.movements(flagged=True)
    assert [m["movement_id"] for m in flagged] == [movement.movement_id]
    ok, _ = move(stocked, "OAT-1", 1, "sale")
    assert not ok.flagged


def test_a_negative_receipt_or_return_is_refused_not_turned_round(stocked: Services) -> None:
    """Why: a receipt of -5 was recorded as +5 without a word; whoever sent it meant stock to
    go down (a correction), and the opposite was booked."""
    for reason in ("receipt", "return"):
        with pytest.raises(InvalidInput, match=rf"a {reason} adds stock, so qty -5 contradicts"):
            move(stocked, "BAN-1", -5, reason)
    assert stocked.inventory.stock("BAN-1").on_hand == 40
    blank, _ = stocked.inventory.record(
        MovementIn(sku="BAN-1", qty=1, reason="receipt", note="   ")
    )
    assert blank.note is None


def test_unknown_sku_and_zero_quantity(stocked: Services) -> None:
    with pytest.raises(NotFound, match="import it into the catalogue"):
        move(stocked, "NOPE", 1, "receipt")
    with pytest.raises(InvalidInput, match="at least one unit"):  # 400: the input, not the state
        move(stocked, "OAT-1", 0, "adjustment")


def test_derived_stock_equals_ledger_sum(stocked: Services) -> None:
    for i in range(30):
        move(stocked, ("OAT-1", "BAN-1", "APL-1")[i % 3], (i % 7) - 3 or 1, "adjustment")
    totals = ledger_totals(stocked)
    for level in stocked.inventory.all_stock():
        assert (level.on_hand, level.reserved) == totals.get(level.sku, (0, 0))


def test_ledger_is_append_only(stocked: Services) -> None:
    conn = stocked.db.conn().conn
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE stock_ledger SET qty = 100")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM stock_ledger")


def test_every_movement_is_in_the_outbox_with_its_seq(stocked: Services) -> None:
    movement, _ = move(stocked, "OAT-1", 1, "sale")
    row = stocked.db.query_one("SELECT type, data FROM outbox WHERE seq = ?", (movement.seq,))
    assert row is not None and row["type"] == "stock.movement"
    assert '"available":9' in row["data"]


def test_failed_transaction_leaves_nothing(stocked: Services) -> None:
    before = stocked.db.query_one("SELECT value FROM store_meta WHERE key = 'last_seq'")
    with pytest.raises(RuntimeError), stocked.db.transaction() as tx:
        stocked.inventory.apply(tx, sku="OAT-1", qty=5, reserved_qty=0, reason="receipt")
        raise RuntimeError("power cut")
    assert stocked.inventory.stock("OAT-1").on_hand == 10
    assert stocked.db.query_one("SELECT value FROM store_meta WHERE key = 'last_seq'") == before


async def test_group_commit_isolates_failures(stocked: Services) -> None:
    """Writes that share one commit succeed or fail on their own."""
    jobs = [MovementIn(sku="OAT-1" if i % 3 else "GHOST", qty=1, reason="receipt", ref=f"g-{i}")
            for i in range(60)]
    results = await asyncio.gather(*(stocked.db.write(stocked.inventory.record, m) for m in jobs),
                                   return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 20 and all(isinstance(f, NotFound) for f in failures)
    assert stocked.inventory.stock("OAT-1").on_hand == 10 + 40
    refs = {r["ref"] for r in stocked.db.query("SELECT ref FROM stock_ledger WHERE ref LIKE 'g-%'")}
    assert refs == {f"g-{i}" for i in range(60) if i % 3}
    outbox = stocked.db.query_one("SELECT count(*) AS n FROM outbox")["n"]
    ledger = stocked.db.query_one("SELECT count(*) AS n FROM stock_ledger")["n"]
    assert outbox == ledger


async def test_a_write_that_fills_the_disk_fails_alone(stocked: Services) -> None:
    """Why: a full disk makes SQLite roll back the whole group commit, not just the failing
    write's savepoint; the writes after it then committed one by one while every caller was
    told "cannot commit", so a movement retried after that error counted twice. Now the
    others are written and only the one that cannot be fails, with SQLite's reason."""
    def cap() -> None:  # a disk with about 400 kB left
        conn = stocked.db.conn().conn
        conn.execute("CREATE TABLE filler (data BLOB)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 100}")

    def fill() -> None:
        stocked.db.conn().conn.execute("INSERT INTO filler VALUES (?)", (bytes(4_000_000),))

    await stocked.db.write(cap)
    gate = threading.Event()
    held = asyncio.ensure_future(stocked.db.write(gate.wait, 10))  # the next ones share a batch
    moves = [MovementIn(sku="OAT-1", qty=1, reason="receipt", ref=f"full-{i}") for i in range(4)]
    writes = [asyncio.ensure_future(stocked.db.write(stocked.inventory.record, m))
              for m in moves[:2]]
    writes.append(asyncio.ensure_future(stocked.db.write(fill)))
    writes += [asyncio.ensure_future(stocked.db.write(stocked.inventory.record, m))
               for m in moves[2:]]
    await asyncio.sleep(0.05)
    gate.set()
    assert await held is True
    results = await asyncio.gather(*writes, return_exceptions=True)
    failed = results.pop(2)
    assert isinstance(failed, sqlite3.OperationalError) and "full" in str(failed), failed
    assert not any(isinstance(r, Exception) for r in results), results
    assert stocked.inventory.stock("OAT-1").on_hand == 10 + 4
    rows = stocked.db.query("SELECT ref FROM stock_ledger WHERE ref LIKE 'full-%'")
    assert {r["ref"] for r in rows} == {f"full-{i}" for i in range(4)}
