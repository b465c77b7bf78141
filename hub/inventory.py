"""Stock: the append-only ledger and the stock levels derived from it.

The store is the single writer of its stock. Every change is a ledger row with a number from the
store-wide sequence; the ``stock`` table follows the ledger in the same transaction (a trigger),
and an outbox message for the shop is written in that transaction too. In-store sales are always
accepted, even when they take stock below zero (they are flagged for review); online reservations
never take available stock below zero (that rule lives in ``orders``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from ulid import ULID

from hub.clock import Clock
from hub.db import Database, Transaction
from hub.errors import Conflict, InvalidInput, NotFound
from hub.events import Event, EventBus
from hub.metrics import Metrics
from hub.outbox import enqueue
from sync.ports import StockLevel  # the same level the shop receives: one definition

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_MOVEMENT_QTY = 100_000

#: Reasons staff and tills may record, with the direction they move on-hand stock
#: (+1 in, -1 out, 0: the sign of ``qty`` decides).
PUBLIC_REASONS: dict[str, int] = {
    "receipt": 1,
    "return": 1,
    "sale": -1,
    "write_off": -1,
    "adjustment": 0,
}
PublicReason = Literal["receipt", "return", "sale", "write_off", "adjustment"]

STOCK_CHANGED = "stock.changed"
MOVEMENT_MESSAGE = "stock.movement"

Sku = Annotated[str, Field(pattern=SKU_PATTERN, description="Product SKU.")]


class StockEntry(BaseModel):
    """What every stock entry by a till, staff member or script carries."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Client reference (receipt number, scanner event id). A movement with a "
        "reference already recorded is applied once.",
    )
    note: str | None = Field(
        default=None,
        max_length=500,
        description="Free text for staff; surrounding spaces are dropped and a blank note is none.",
    )

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        """A note of only spaces showed as a blank line in the ledger."""
        return (value.strip() or None) if value is not None else None


class MovementIn(StockEntry):
    """A stock movement as a till, staff member or script submits it."""

    qty: StrictInt = Field(
        ge=-MAX_MOVEMENT_QTY,
        le=MAX_MOVEMENT_QTY,
        description="Units moved. For sale and write_off stock goes down whatever the sign (a "
        "till may send the units sold or the change, -2); receipt and return take a positive "
        "number (a negative one contradicts them and is refused); for adjustment the sign "
        "decides.",
    )
    reason: PublicReason = Field(description="Why the stock moved.")


class CountIn(StockEntry):
    """The units of a product staff counted in the store (a stock take).

    Why not an adjustment: staff count the shelf and had to work out the difference from the
    number the hub showed, which may have moved while they counted; the hub takes the
    difference from its own number in the transaction that records it."""

    counted: StrictInt = Field(
        ge=0,
        le=MAX_MOVEMENT_QTY,
        description="Units in the store now, those set aside for orders included.",
    )


@dataclass(frozen=True)
class Count:
    """A stock take's outcome: the adjustment it recorded (None when the count matched)."""

    counted: int
    change: int
    movement: Movement | None
    stock: StockLevel

    def to_json(self) -> dict[str, Any]:
        return {"counted": self.counted, "change": self.change,
                "movement": self.movement.to_json() if self.movement else None,
                "stock": asdict(self.stock)}


@dataclass(frozen=True)
class Movement:
    """One ledger row, with the stock level it left behind."""

    movement_id: str
    seq: int
    sku: str
    qty: int
    reserved_qty: int
    reason: str
    ref: str | None
    order_id: str | None
    flagged: bool
    note: str | None
    ts: float
    stock: StockLevel

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Inventory:
    """Records movements and answers stock questions."""

    def __init__(self, db: Database, clock: Clock, bus: EventBus | None = None,
                 metrics: Metrics | None = None) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.metrics = metrics

    def record(self, movement: MovementIn) -> tuple[Movement, bool]:
        """Apply a movement once; returns it and whether it was already recorded (same ``ref``)."""
        direction = PUBLIC_REASONS[movement.reason]
        if movement.qty == 0:
            raise InvalidInput("a movement must move at least one unit", code="zero_quantity")
        if direction > 0 and movement.qty < 0:
            raise InvalidInput(
                f"a {movement.reason} adds stock, so qty {movement.qty} contradicts it: give "
                f"{-movement.qty}, or record an adjustment of {movement.qty} to take stock away",
                code="contrary_quantity",
            )
        qty = abs(movement.qty) * direction if direction else movement.qty
        with self.db.transaction() as tx:
            if movement.ref is not None:
                existing = self._by_ref(tx, movement.ref)
                if existing is not None:
                    if (existing.sku, existing.qty, existing.reason) != (
                        movement.sku,
                        qty,
                        movement.reason,
                    ):
                        raise Conflict(
                            f"reference {movement.ref!r} was already used for a different "
                            f"movement ({existing.reason} {existing.qty:+d} of {existing.sku})",
                            code="ref_reused",
                        )
                    return existing, True
            self.require_product(tx, movement.sku)
            before = self._level(tx, movement.sku)
            flagged = qty < 0 and before.available + qty < 0
            return (
                self.apply(
                    tx,
                    sku=movement.sku,
                    qty=qty,
                    reserved_qty=0,
                    reason=movement.reason,
                    ref=movement.ref,
                    note=movement.note,
                    flagged=flagged,
                ),
                False,
            )

    def count(self, count: CountIn) -> tuple[Count, bool]:
        """Adjust on-hand stock to a count; returns it and whether its ``ref`` was recorded
        already. A count that matches records nothing, so a count sent twice changes stock
        once even without a reference."""
        with self.db.transaction() as tx:
            if count.ref is not None and (existing := self._by_ref(tx, count.ref)) is not None:
                if (existing.sku, existing.reason) != (count.sku, "adjustment"):
                    raise Conflict(
                        f"reference {count.ref!r} was already used for a different movement "
                        f"({existing.reason} {existing.qty:+d} of {existing.sku})",
                        code="ref_reused",
                    )
                return Count(self._counted(tx, existing), existing.qty, existing,
                             existing.stock), True
            self.require_product(tx, count.sku)
            before = self._level(tx, count.sku)
            change = count.counted - before.on_hand
            if change == 0:
                return Count(count.counted, 0, None, before), False
            note = f"counted {count.counted}" + (f": {count.note}" if count.note else "")
            movement = self.apply(
                tx, sku=count.sku, qty=change, reserved_qty=0, reason="adjustment",
                ref=count.ref, note=note, flagged=before.available + change < 0,
                counted=count.counted,
            )
            return Count(count.counted, change, movement, movement.stock), False

    def apply(
        self,
        tx: Transaction,
        *,
        sku: str,
        qty: int,
        reserved_qty: int,
        reason: str,
        ref: str | None = None,
        order_id: str | None = None,
        note: str | None = None,
        flagged: bool = False,
        counted: int | None = None,
    ) -> Movement:
        """Write one ledger row and its outbox message inside ``tx`` (orders use this too).

        ``counted``: the stock take a count's adjustment records, told to the shop with it (the
        shop's record of the count; ``qty`` is the change it made)."""
        now = self.clock.now()
        seq = tx.next_seq()
        movement_id = str(ULID())
        tx.execute(
            "INSERT INTO stock_ledger (seq, movement_id, sku, qty, reserved_qty, reason, ref, "
            "order_id, flagged, note, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, movement_id, sku, qty, reserved_qty, reason, ref, order_id, int(flagged), note,
             now),
        )
        movement = Movement(
            movement_id=movement_id,
            seq=seq,
            sku=sku,
            qty=qty,
            reserved_qty=reserved_qty,
            reason=reason,
            ref=ref,
            order_id=order_id,
            flagged=flagged,
            note=note,
            ts=now,
            stock=self._level(tx, sku),
        )
        message = _message(movement)
        if counted is not None:
            message["counted"] = counted
        enqueue(tx, self.bus, MOVEMENT_MESSAGE, message, now, seq=seq)
        if self.metrics is not None:
            counter = self.metrics.ledger_writes.labels(reason)
            tx.after_commit(counter.inc)
        if self.bus is not None:
            bus, level = self.bus, movement.stock
            tx.after_commit(lambda: bus.publish(Event(STOCK_CHANGED, asdict(level))))
        return movement

    def stock(self, sku: str) -> StockLevel:
        """Current stock of ``sku``; zero for a known product that never moved."""
        db = self.db.conn()
        if not db["products"].count_where("sku = ?", [sku]):
            raise NotFound(f"no product with SKU {sku!r}")
        return self._level_of(db.conn, sku)

    def all_stock(self) -> list[StockLevel]:
        rows = self.db.query(
            "SELECT p.sku, coalesce(s.on_hand, 0) AS on_hand, coalesce(s.reserved, 0) AS reserved, "
            "coalesce(s.last_seq, 0) AS seq FROM products p LEFT JOIN stock s USING (sku) "
            "ORDER BY p.sku"
        )
        return [_level_row(r) for r in rows]

    def movements(self, sku: str | None = None, flagged: bool | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """Ledger rows, newest first."""
        where, params = [], []
        if sku is not None:
            where.append("sku = ?")
            params.append(sku)
        if flagged is not None:
            where.append("flagged = ?")
            params.append(int(flagged))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.query(
            f"SELECT * FROM stock_ledger {clause} ORDER BY seq DESC LIMIT ?", [*params, limit]
        )
        for row in rows:
            row["flagged"] = bool(row["flagged"])
        return rows

    @staticmethod
    def require_product(tx: Transaction, sku: str) -> None:
        if tx.execute("SELECT 1 FROM products WHERE sku = ?", (sku,)).fetchone() is None:
            raise NotFound(f"no product with SKU {sku!r}; import it into the catalogue first")

    def _level(self, tx: Transaction, sku: str) -> StockLevel:
        return self._level_of(tx.db.conn, sku)

    @staticmethod
    def _level_of(conn: Any, sku: str) -> StockLevel:
        row = conn.execute(
            "SELECT on_hand, reserved, last_seq FROM stock WHERE sku = ?", (sku,)
        ).fetchone()
        on_hand, reserved, seq = row if row else (0, 0, 0)
        return StockLevel(sku, on_hand, reserved, on_hand - reserved, seq)

    @staticmethod
    def _counted(tx: Transaction, adjustment: Movement) -> int:
        """What a recorded count found: the on-hand stock its adjustment left, i.e. today's
        less every movement of the product since. Why not the request's: a count sent again
        with its ``ref`` and another number was answered with the new number, which was never
        recorded."""
        row = tx.execute(
            "SELECT COALESCE(SUM(qty), 0) FROM stock_ledger WHERE sku = ? AND seq > ?",
            (adjustment.sku, adjustment.seq),
        ).fetchone()
        return adjustment.stock.on_hand - int(row[0])

    def _by_ref(self, tx: Transaction, ref: str) -> Movement | None:
        row = tx.execute(
            "SELECT movement_id, seq, sku, qty, reserved_qty, reason, ref, order_id, flagged, "
            "note, ts FROM stock_ledger WHERE ref = ?",
            (ref,),
        ).fetchone()
        if row is None:
            return None
        return Movement(*row[:8], bool(row[8]), row[9], row[10], stock=self._level(tx, row[2]))


def ledger_prune_point(tx: Transaction, before: float) -> int:
    """The seq through which retention may delete ledger rows: every row up to it is older
    than ``before`` and acknowledged by the shop (its movement event is out of the outbox).

    A prefix of the sequence, not every old row: a row stays while an older-numbered one must
    (one stamped by a clock that was ahead stops pruning there), so a kept count's
    ``_counted`` still sums every movement after it."""
    (acked,) = tx.execute("SELECT value FROM sync_state WHERE key = 'acked_seq'").fetchone()
    # in seq order from the oldest: it reads the old rows only, which are the ones to go
    young = tx.execute("SELECT seq FROM stock_ledger WHERE ts >= ? ORDER BY seq LIMIT 1",
                       (before,)).fetchone()
    return min(int(acked), young[0] - 1) if young else int(acked)


def prune_ledger(tx: Transaction, through: int, limit: int, now: float) -> int:
    """Delete up to ``limit`` of the oldest ledger rows numbered up to ``through``, adding
    their sums to ``stock_ledger_pruned``; returns how many went.

    Each product's newest row (``stock.last_seq``) stays, however old: the catalogue import
    gives starting stock only to a product with no ledger row, and without it a product that
    has not moved for the retention age would get its starting stock a second time."""
    keep = "seq <= ? AND seq NOT IN (SELECT last_seq FROM stock)"
    last = tx.execute(f"SELECT max(seq) FROM (SELECT seq FROM stock_ledger WHERE {keep} "
                      "ORDER BY seq LIMIT ?)", (through, limit)).fetchone()[0]
    if last is None:
        return 0
    tx.execute(
        "INSERT INTO stock_ledger_pruned (sku, qty, reserved_qty, rows, through_seq, pruned_at) "
        f"SELECT sku, sum(qty), sum(reserved_qty), count(*), max(seq), ? FROM stock_ledger "
        f"WHERE {keep} GROUP BY +sku ON CONFLICT (sku) DO UPDATE SET "
        "qty = qty + excluded.qty, reserved_qty = reserved_qty + excluded.reserved_qty, "
        "rows = rows + excluded.rows, through_seq = max(through_seq, excluded.through_seq), "
        "pruned_at = excluded.pruned_at", (now, last))
    tx.execute("INSERT INTO store_meta (key, value) VALUES ('ledger_pruning', '1')")
    deleted = tx.execute(f"DELETE FROM stock_ledger WHERE {keep}", (last,)).rowcount
    tx.execute("DELETE FROM store_meta WHERE key = 'ledger_pruning'")
    return int(deleted)


def _level_row(row: dict[str, Any]) -> StockLevel:
    return StockLevel(
        row["sku"], row["on_hand"], row["reserved"], row["on_hand"] - row["reserved"], row["seq"]
    )


def _message(movement: Movement) -> dict[str, Any]:
    """The outbox payload of a movement: the row plus the stock it left, for the shop's view."""
    body = asdict(movement)
    stock = body.pop("stock")
    body["on_hand"] = stock["on_hand"]
    body["reserved"] = stock["reserved"]
    body["available"] = stock["available"]
    return body
