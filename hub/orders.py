"""Click-and-collect orders and the reservations that hold their stock.

An online order is a request: the hub reserves every line or rejects the whole order with the
reason, so available stock never goes below zero because of an online order. The state machine:

    pending -> accepted | rejected | cancelled
    accepted -> ready | cancelled | expired
    ready -> collected | cancelled | expired

A rejected order carries a ``reason_code`` beside its English ``reason``, so the shop can tell
its member what to do without parsing text. Collecting turns the reservation into a sale
(``pickup`` movements); cancelling or expiring releases it (``release`` movements). Every change
is recorded in ``order_history``, published on the event bus and written to the outbox for the
shop, all in one transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from hub.clock import STEP_S, Clock, wall_lead
from hub.config.orders import OrdersConfig
from hub.db import Database, Transaction
from hub.errors import Conflict, InvalidInput, NotFound
from hub.events import Event, EventBus
from hub.inventory import Inventory, Sku
from hub.outbox import enqueue

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"ready", "cancelled", "expired"}),
    "ready": frozenset({"collected", "cancelled", "expired"}),
    "rejected": frozenset(),
    "collected": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}

#: The states no other follows: an order in one is finished.
FINAL_STATES = tuple(state for state, after in TRANSITIONS.items() if not after)

ORDER_STATUS = "order.status"
# ``reason_code`` of a rejected order (null in every other state):
OUT_OF_STOCK = "out_of_stock"  # a line's product is sold here but its available stock is short
NOT_SOLD_HERE = "not_sold_here"  # a line's product is not in the catalogue
STAFF = "staff"  # staff rejected it (API or CLI)
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class OrderLineIn(BaseModel):
    """One product and quantity of an order."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    qty: StrictInt = Field(ge=1, description="Units wanted (an integer: true or \"2\" is "
                           "refused, as the stock endpoints and the shop refuse it).")


class OrderIn(BaseModel):
    """An order as the online shop sends it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="The shop's order id; placing it twice is "
                    "harmless.")
    member: str | None = Field(default=None, pattern=ID_PATTERN, description="Member id.")
    lines: list[OrderLineIn] = Field(min_length=1, description="What to reserve.")


@dataclass(frozen=True)
class OrderLine:
    sku: str
    qty: int


@dataclass(frozen=True)
class Order:
    """An order as it stands now."""

    id: str
    member_id: str | None
    state: str
    reason: str | None
    reason_code: str | None  # set only when rejected: OUT_OF_STOCK, NOT_SOLD_HERE or STAFF
    created_at: float
    updated_at: float
    pickup_by: float | None
    lines: list[OrderLine] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class OrderService:
    """Takes orders in, moves them through their states and keeps their reservations."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        inventory: Inventory,
        config: OrdersConfig,
        bus: EventBus | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.inventory = inventory
        self.config = config
        self.bus = bus
        #: held orders accepted by this process -> the wall clock's lead over the monotonic one
        #: when their windows were measured (``follow_clock``)
        self._measured_at: dict[str, float] = {}

    # --- intake -----------------------------------------------------------------------------

    def place(self, order: OrderIn, actor: str = "shop") -> tuple[Order, bool]:
        """Record a new order (and, with auto-accept, reserve it); returns (order, already_known).

        The same order placed twice is applied once; the same id with different lines is refused.
        """
        if len(order.lines) > self.config.max_lines:
            raise InvalidInput(f"an order may have at most {self.config.max_lines} lines")
        for line in order.lines:
            if line.qty > self.config.max_line_qty:
                raise InvalidInput(
                    f"line for {line.sku}: at most {self.config.max_line_qty} units per line"
                )
        with self.db.transaction() as tx:
            existing = self._load(tx, order.id)
            if existing is not None:
                if _lines_key(existing.lines) != _lines_key(order.lines) or (
                    existing.member_id != order.member
                ):
                    raise Conflict(
                        f"order {order.id} already exists with different contents",
                        code="order_id_reused",
                    )
                return existing, True
            now = self.clock.now()
            tx.execute(
                "INSERT INTO orders (id, member_id, state, created_at, updated_at) "
                "VALUES (?, ?, 'pending', ?, ?)",
                (order.id, order.member, now, now),
            )
            for number, line in enumerate(order.lines, start=1):
                tx.execute(
                    "INSERT INTO order_lines (order_id, line_no, sku, qty) VALUES (?, ?, ?, ?)",
                    (order.id, number, line.sku, line.qty),
                )
            self._history(tx, order.id, None, "pending", actor, None)
            self._announce(tx, order.id)
            early = tx.execute("DELETE FROM early_cancels WHERE order_id = ? RETURNING reason",
                               (order.id,)).fetchone()
            if early is not None:  # its cancel came first: nothing is reserved
                self._move(tx, order.id, "cancelled", actor, early[0])
            elif self.config.auto_accept:
                self._accept(tx, order.id, actor="hub")
            return self._require(tx, order.id), False

    # --- transitions ------------------------------------------------------------------------

    def accept(self, order_id: str, actor: str = "staff") -> Order:
        """Reserve every line, or reject the order if any line cannot be reserved."""
        with self.db.transaction() as tx:
            self._accept(tx, order_id, actor)
            return self._require(tx, order_id)

    def reject(self, order_id: str, reason: str, actor: str = "staff") -> Order:
        with self.db.transaction() as tx:
            self._move(tx, order_id, "rejected", actor, reason, STAFF)
            return self._require(tx, order_id)

    def mark_ready(self, order_id: str, actor: str = "staff") -> Order:
        with self.db.transaction() as tx:
            self._move(tx, order_id, "ready", actor, None)
            return self._require(tx, order_id)

    def collect(self, order_id: str, actor: str = "staff") -> Order:
        """The member took the goods: reservations become sales."""
        with self.db.transaction() as tx:
            _check_transition(self._require(tx, order_id), "collected")
            self._settle(tx, order_id, "collected")
            self._move(tx, order_id, "collected", actor, None)
            return self._require(tx, order_id)

    def cancel(self, order_id: str, reason: str | None = None, actor: str = "staff") -> Order:
        with self.db.transaction() as tx:
            _check_transition(self._require(tx, order_id), "cancelled")
            self._settle(tx, order_id, "released")
            self._move(tx, order_id, "cancelled", actor, reason)
            return self._require(tx, order_id)

    def cancel_early(self, order_id: str, reason: str) -> bool:
        """Cancel ``order_id`` now, or when it is placed if it is not here yet; returns whether
        it was here.

        Why: the shop sends an order and its cancel as separate commands, and a placing that
        failed (the database busy) is sent again after the cancel; refused as unknown, the
        cancel was lost and the order, arriving later, held its stock for the whole pickup
        window."""
        with self.db.transaction() as tx:
            if self._load(tx, order_id) is not None:
                self.cancel(order_id, reason, actor="shop")
                return True
            tx.execute("INSERT INTO early_cancels (order_id, reason, received_at) VALUES "
                       "(?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
                       (order_id, reason, self.clock.now()))
            return False

    def transition(self, order_id: str, target: str, reason: str | None = None,
                   actor: str = "staff") -> Order:
        """Move an order to ``target`` by name (the API's and CLI's single entry point)."""
        actions = {
            "accepted": lambda: self.accept(order_id, actor),
            "rejected": lambda: self.reject(order_id, reason or "rejected by staff", actor),
            "ready": lambda: self.mark_ready(order_id, actor),
            "collected": lambda: self.collect(order_id, actor),
            "cancelled": lambda: self.cancel(order_id, reason, actor),
        }
        if target not in actions:
            raise InvalidInput(
                f"cannot set an order to {target!r}; use one of: {', '.join(sorted(actions))}"
            )
        return actions[target]()

    def expire_due(self) -> list[Order]:
        """Expire every held order whose pickup window has passed and release its stock."""
        now = self.clock.now()
        expired = []
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT id FROM orders WHERE state IN ('accepted', 'ready') AND pickup_by <= ? "
                "ORDER BY pickup_by",
                (now,),
            ).fetchall()
            for (order_id,) in rows:
                self._settle(tx, order_id, "released")
                self._move(tx, order_id, "expired", "hub", "not collected in the pickup window")
                expired.append(self._require(tx, order_id))
        return expired

    def follow_clock(self) -> list[Order]:
        """Move each pickup window this process measured by as much as the wall clock has been
        set since (more than ``STEP_S``), and tell the shop and staff the new ends.

        Why: an order accepted while a Pi's clock was three days behind (started after a power
        cut, before NTP) got a window that ended, by the corrected clock, before it began, and
        the next expiry check cancelled it for good. Each window is moved by the step its own
        measurement missed, so an order accepted after NTP keeps its window; orders accepted by
        earlier runs keep theirs: their clock is not known to have been wrong.
        """
        offset = wall_lead(self.clock)
        missed = {order_id: offset - measured for order_id, measured in self._measured_at.items()
                  if abs(offset - measured) > STEP_S}
        if not missed:  # the minute's usual case: no transaction at all
            return []
        moved = []
        with self.db.transaction() as tx:
            for order_id, step in sorted(missed.items()):
                if not tx.execute("UPDATE orders SET pickup_by = pickup_by + ? WHERE id = ? AND "
                                  "state IN ('accepted', 'ready')", (step, order_id)).rowcount:
                    continue  # its acceptance was rolled back, or it has ended
                tx.execute("UPDATE reservations SET expires_at = expires_at + ? WHERE "
                           "order_id = ? AND state = 'held'", (step, order_id))
                self._announce(tx, order_id)
                moved.append(self._require(tx, order_id))
        for order_id in missed:  # moved, or nothing left to move
            self._measured_at[order_id] = offset
        return moved

    # --- queries ----------------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        order = self._load_conn(self.db.conn().conn, order_id)
        if order is None:
            raise NotFound(f"no order with id {order_id!r}")
        return order

    def list(self, state: str | None = None, member_id: str | None = None,
             limit: int = 100) -> list[Order]:
        where, params = [], []
        if state is not None:  # one state, or several separated by commas ("pending,ready")
            states = [s.strip() for s in state.split(",")]
            unknown = [s for s in states if s not in TRANSITIONS]
            if unknown:
                raise InvalidInput(f"unknown order state {unknown[0][:40]!r}; use one or more of "
                                   f"{', '.join(sorted(TRANSITIONS))}, separated by commas")
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        if member_id is not None:
            where.append("member_id = ?")
            params.append(member_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        conn = self.db.conn().conn
        ids = conn.execute(
            f"SELECT id FROM orders {clause} ORDER BY created_at DESC, id LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [o for (order_id,) in ids if (o := self._load_conn(conn, order_id)) is not None]

    def history(self, order_id: str) -> list[dict[str, Any]]:
        self.get(order_id)
        return self.db.query(
            "SELECT from_state, to_state, actor, note, ts FROM order_history "
            "WHERE order_id = ? ORDER BY id",
            (order_id,),
        )

    # --- internals --------------------------------------------------------------------------

    def _accept(self, tx: Transaction, order_id: str, actor: str) -> None:
        order = self._require(tx, order_id)
        _check_transition(order, "accepted")
        wanted: dict[str, int] = defaultdict(int)
        for line in order.lines:
            wanted[line.sku] += line.qty
        short = []
        for sku, qty in sorted(wanted.items()):
            known = tx.execute("SELECT 1 FROM products WHERE sku = ?", (sku,)).fetchone()
            available = self.inventory._level(tx, sku).available if known else 0
            if not known or available < qty:
                short.append({"sku": sku, "requested": qty, "available": max(available, 0),
                              "known": bool(known)})
        if short:
            self._move(tx, order_id, "rejected", actor, _shortage_reason(short),
                       _shortage_code(short))
            return
        expires = self.clock.now() + self.config.pickup_window_hours * 3600
        for sku, qty in sorted(wanted.items()):
            self.inventory.apply(tx, sku=sku, qty=0, reserved_qty=qty, reason="reservation",
                                 order_id=order_id)
            tx.execute(
                "INSERT INTO reservations (order_id, sku, qty, expires_at, state) "
                "VALUES (?, ?, ?, ?, 'held')",
                (order_id, sku, qty, expires),
            )
        tx.execute("UPDATE orders SET pickup_by = ? WHERE id = ?", (expires, order_id))
        self._move(tx, order_id, "accepted", actor, None)
        self._measured_at[order_id] = wall_lead(self.clock)

    def _settle(self, tx: Transaction, order_id: str, outcome: str) -> None:
        """Turn held reservations into sales ('collected') or give them back ('released')."""
        held = tx.execute(
            "SELECT sku, qty FROM reservations WHERE order_id = ? AND state = 'held' ORDER BY sku",
            (order_id,),
        ).fetchall()
        for sku, qty in held:
            if outcome == "collected":
                self.inventory.apply(tx, sku=sku, qty=-qty, reserved_qty=-qty, reason="pickup",
                                     order_id=order_id)
            else:
                self.inventory.apply(tx, sku=sku, qty=0, reserved_qty=-qty, reason="release",
                                     order_id=order_id)
        tx.execute(
            "UPDATE reservations SET state = ? WHERE order_id = ? AND state = 'held'",
            (outcome, order_id),
        )

    def _move(self, tx: Transaction, order_id: str, target: str, actor: str,
              reason: str | None, reason_code: str | None = None) -> None:
        """Record the transition; ``reason_code`` is replaced, not kept like ``reason``: it
        says why the order is rejected, so every other state has none."""
        order = self._require(tx, order_id)
        _check_transition(order, target)
        if target not in ("accepted", "ready"):  # its window ends no more
            self._measured_at.pop(order_id, None)
        now = self.clock.now()
        tx.execute(
            "UPDATE orders SET state = ?, reason = coalesce(?, reason), reason_code = ?, "
            "updated_at = ? WHERE id = ?",
            (target, reason, reason_code, now, order_id),
        )
        self._history(tx, order_id, order.state, target, actor, reason)
        self._announce(tx, order_id)

    def _history(self, tx: Transaction, order_id: str, from_state: str | None, to_state: str,
                 actor: str, note: str | None) -> None:
        tx.execute(
            "INSERT INTO order_history (order_id, from_state, to_state, actor, note, ts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (order_id, from_state, to_state, actor, note, self.clock.now()),
        )

    def announce_again(self, tx: Transaction, order_id: str) -> bool:
        """Tell the shop the order's status as it is now, again (a shop restored from a backup
        has an older one); False when the hub no longer has the order."""
        if self._load(tx, order_id) is None:
            return False
        self._announce(tx, order_id)
        return True

    def _announce(self, tx: Transaction, order_id: str) -> None:
        """Tell the shop and the staff screens the order's new status (after the stock moved)."""
        order = self._require(tx, order_id)
        body = order.to_json()
        enqueue(tx, self.bus, ORDER_STATUS, body, self.clock.now())
        if self.bus is not None:
            bus = self.bus
            tx.after_commit(lambda: bus.publish(Event(ORDER_STATUS, body)))

    def _require(self, tx: Transaction, order_id: str) -> Order:
        order = self._load(tx, order_id)
        if order is None:
            raise NotFound(f"no order with id {order_id!r}")
        return order

    def _load(self, tx: Transaction, order_id: str) -> Order | None:
        return self._load_conn(tx.db.conn, order_id)

    @staticmethod
    def _load_conn(conn: Any, order_id: str) -> Order | None:
        row = conn.execute(
            "SELECT id, member_id, state, reason, reason_code, created_at, updated_at, pickup_by "
            "FROM orders WHERE id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        lines = [
            OrderLine(sku, qty)
            for sku, qty in conn.execute(
                "SELECT sku, qty FROM order_lines WHERE order_id = ? ORDER BY line_no", (order_id,)
            )
        ]
        return Order(*row, lines=lines)


def prune_finished(tx: Transaction, before: float, limit: int) -> int:
    """Delete up to ``limit`` orders that finished (no state follows theirs) before ``before``,
    with their lines, history and reservations; returns how many went.

    An order whose status the shop has not acknowledged yet (an ``order.status`` row still in
    the outbox) stays, however old. Replays need no finished order: the shop sends a command
    again only until it has its result, and until then the command's id in ``sync_inbox`` (kept
    as long) answers a repeat as a duplicate."""
    final = ", ".join(f"'{state}'" for state in FINAL_STATES)
    # The index of finished orders by age (migration 0090, on these states in this order):
    # the planner otherwise took the staff queue's index and read the young orders first.
    ids = [row[0] for row in tx.execute(
        f"SELECT id FROM orders INDEXED BY orders_finished WHERE state IN ({final}) AND "
        "updated_at < ? AND id NOT IN "
        "(SELECT json_extract(data, '$.id') FROM outbox WHERE type = ?) LIMIT ?",
        (before, ORDER_STATUS, limit))]
    marks = ", ".join("?" * len(ids))
    for table, column in (("order_lines", "order_id"), ("order_history", "order_id"),
                          ("reservations", "order_id"), ("orders", "id")):
        tx.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
    return len(ids)


def _check_transition(order: Order, target: str) -> None:
    if target not in TRANSITIONS[order.state]:
        allowed = ", ".join(sorted(TRANSITIONS[order.state])) or "nothing (it is final)"
        raise Conflict(
            f"order {order.id} is {order.state}; it cannot become {target} "
            f"(from {order.state} it can become: {allowed})",
            code="illegal_transition",
            details={"state": order.state, "target": target},
        )


def _shortage_reason(short: list[dict[str, Any]]) -> str:
    """Why an order was refused, in the words a shop can show its member: a product the store
    does not sell is not "not enough stock" (it had read "not enough stock: X (not sold in this
    store)")."""
    unknown = [s["sku"] for s in short if not s["known"]]
    low = [f"{s['sku']} (wanted {s['requested']}, available {s['available']})"
           for s in short if s["known"]]
    parts = ([f"not sold in this store: {', '.join(unknown)}"] if unknown else []) + (
        [f"not enough stock: {', '.join(low)}"] if low else [])
    return "; ".join(parts)


def _shortage_code(short: list[dict[str, Any]]) -> str:
    """The code of a shortage: a product the store does not sell wins over short stock, since
    offering the member a smaller quantity would not make that order acceptable."""
    return NOT_SOLD_HERE if any(not s["known"] for s in short) else OUT_OF_STOCK


def _lines_key(lines: Any) -> str:
    return json.dumps(sorted((line.sku, line.qty) for line in lines))
