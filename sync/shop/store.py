"""The shop service's SQLite database: applies store events exactly once and answers queries.

Writes run on one writer thread (one connection, ``synchronous=FULL``: an ack is only sent for
what is durably applied); reads run on a small pool with their own connections. Each batch of
messages is applied in one transaction: every event is recorded in ``applied`` with its effect,
and the per-store watermark (everything up to it applied) advances along the ``prev`` chain.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from sync import inbound, messages
from sync.envelope import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    WIDEST_TS,
    Envelope,
    ProtocolError,
    build,
    new_id,
    within_limit,
)
from sync.ports import DeadLetter

T = TypeVar("T")
#: How far past the furthest seq the shop knows of a store (its watermark, or the ``last_seq``
#: of the store's last state) an event or snapshot may be; one further is a dead letter
#: (``implausible_seq``). Why: one corrupt or forged seq near 2**63 was applied, and a snapshot
#: with it froze its SKU's stock view (later seqs never "win"), an event with it moved the
#: watermark over every real event to come, which were then ignored as duplicates. A store
#: numbers its events one by one and says where it stands in every state (each connection and
#: each resync), so a real event is at most about a send window ahead; one refused in error
#: (the state not read yet) is sent again on the store's ack timeout and applied then.
MAX_SEQ_AHEAD = 10_000_000


@dataclass(frozen=True)
class EventItem:
    """A store event with a valid envelope; ``problem`` is set when its data failed its schema
    (it is still recorded as applied, so one bad event cannot stall the stream). ``topic``:
    where it came, for a dead letter."""

    envelope: Envelope
    data: Any
    problem: DeadLetter | None = None
    topic: str = ""


@dataclass(frozen=True)
class SnapshotItem:
    envelope: Envelope
    snapshot: messages.StockSnapshot
    topic: str = ""


@dataclass(frozen=True)
class StateItem:
    envelope: Envelope
    state: messages.StoreState


@dataclass(frozen=True)
class DeadItem:
    letter: DeadLetter


Item = EventItem | SnapshotItem | StateItem | DeadItem


@dataclass(frozen=True)
class StockRow:
    """One SKU of one store as the shop shows it."""

    store: str
    sku: str
    on_hand: int
    reserved: int
    available: int
    seq: int

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "sku": self.sku, "available": self.available,
                "on_hand": self.on_hand, "reserved": self.reserved, "seq": self.seq}


@dataclass(frozen=True)
class PendingCommand:
    """A command the store has not answered yet."""

    seq: int
    id: str
    store: str
    type: str
    data: str
    epoch: int

    def payload(self, ts: float, epoch: int | None = None) -> bytes:
        """The envelope this command is sent in at ``ts`` (and in the store's run ``epoch``,
        by default the one it was read with): built here alone, so the size checked when the
        command is made is that of what is sent."""
        return build(store=self.store, epoch=self.epoch if epoch is None else epoch,
                     seq=self.seq, type_=self.type, ts=ts, data=self.data.encode(),
                     msg_id=self.id)

    def largest_payload(self) -> bytes:
        """The envelope as it may be sent at the widest: ``ts`` and the store's run are written
        at each send, so they are counted at their longest (an epoch of 19 digits, a ``ts`` of
        24 characters), a few dozen bytes more than a real send at most."""
        return self.payload(WIDEST_TS, MAX_SEQ)


@dataclass(frozen=True)
class OrderKey:
    """An Idempotency-Key of POST /api/orders, the fingerprint of the request that came with
    it, and the oldest time a key is kept from (older ones are forgotten)."""

    key: str
    fingerprint: str
    kept_since: float

    def order_id(self, member: str) -> str:
        """The id of the order this key makes for ``member``, derived from the key and the
        request: a retry after the shop lost the key (restored from a backup taken before
        the first request) names the same order, which the store already has and takes once
        (one id with the same contents is one order there), not a second order."""
        digest = hashlib.sha256(f"{member}\0{self.key}\0{self.fingerprint}".encode()).digest()
        return "o-" + base64.b32encode(digest).decode()[:26]


@dataclass(frozen=True)
class PruneBefore:
    """Times (Unix seconds) before which rows of each kind are deleted by retention."""

    reminders: float
    history: float  # answered commands, applied-event records
    dead_letters: float
    drift: float


@dataclass(frozen=True)
class Placed:
    """What POST /api/orders made, or found made by an earlier request with the same key
    (``command`` is None then: nothing new to send)."""

    order_id: str
    store: str
    command: PendingCommand | None


class KeyReused(Exception):
    """An Idempotency-Key already used for another request body (by the same member)."""

    def __init__(self, key: str, order_id: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for order {order_id!r}")
        self.key, self.order_id = key, order_id


#: Order states no command changes: a cancel of such an order is refused by the store.
FINAL_STATES = frozenset({"collected", "expired", "cancelled", "rejected"})
#: ``reason_code`` of an order whose order.place the store refused (more lines or units than it
#: takes, or data it cannot take): the store's own codes come with its order.status events.
INVALID_ORDER = "invalid_order"


#: What to do about a command too large to send, by its type: said by the API's 413 and in the
#: reason of a pending command rejected for its size. What makes a command large is the caller's
#: to change (the lines of an order, the text of a reason or name), never the store's.
TOO_LARGE_ADVICE = {
    messages.ORDER_PLACE: "split the order into several orders with fewer lines",
    messages.ORDER_CANCEL: "send a shorter reason",
    messages.MEMBER_UPSERT: "use a shorter display name",
}


def too_large_advice(command_type: str) -> str:
    """What to do about a ``command_type`` command too large to send (see TOO_LARGE_ADVICE)."""
    return TOO_LARGE_ADVICE.get(command_type, "send it in smaller parts")


class OrderFinal(Exception):
    """A cancel of an order the shop already knows to be in a final state."""

    def __init__(self, order_id: str, state: str) -> None:
        super().__init__(f"order {order_id!r} is {state}")
        self.order_id, self.state = order_id, state


class UnknownStore(Exception):
    """A command for a store that has never reported to the shop: nobody would ever answer it,
    so it would stay pending for good (a fuzz run had left 138,644 such opt-ins)."""

    def __init__(self, store: str) -> None:
        super().__init__(f"store {store!r} has not reported to the shop")
        self.store = store


@dataclass
class BatchOutcome:
    """What applying a batch changed, for the acks, the live feed and the metrics."""

    applied: int = 0
    duplicates: int = 0
    dead: list[str] = field(default_factory=list)  # reasons
    drift: int = 0
    stock: list[StockRow] = field(default_factory=list)
    acks: dict[str, tuple[int, int]] = field(default_factory=dict)  # store -> (epoch, watermark)
    births: list[str] = field(default_factory=list)
    snapshots_wanted: set[str] = field(default_factory=set)
    # stores whose history was cut back (restored from a backup): their seqs start again lower
    rewound: set[str] = field(default_factory=set)
    # stores heard from in a run older than one the shop knows: acked at once, so they learn it
    stale_runs: set[str] = field(default_factory=set)


class ShopStore:
    """The database file and the threads that use it."""

    def __init__(self, path: Path, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.path = path
        #: The largest command envelope a store takes (``sync.max_payload_bytes``): a command
        #: that would be larger is refused where it is made (``_add_command``).
        self.max_payload_bytes = max_payload_bytes
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shop-db-writer")
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shop-db-reader")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, partial(fn, *args))

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, partial(fn, *args))

    def create_schema(self) -> None:
        script = resources.files("sync.shop").joinpath("schema.sql").read_text(encoding="utf-8")
        conn = self._conn()
        conn.executescript(script)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(stores)")}
        if "born_epoch" not in columns:
            # A database from before births were told apart from events: its newest epoch is
            # the best guess at the newest birth (a guess too low would rewind a live stream).
            conn.executescript("BEGIN; ALTER TABLE stores ADD COLUMN born_epoch INTEGER NOT NULL "
                               "DEFAULT 0; UPDATE stores SET born_epoch = epoch; COMMIT;")
        # Older databases: their commands' results are taken to predate any restore.
        self._add_column("commands", "result_seq", "INTEGER")
        # Older databases: their movements' data is rebuilt from the row when handed back.
        self._add_column("movements", "data", "TEXT")
        # Older databases: their events count as of the earliest run.
        self._add_column("applied", "epoch", "INTEGER NOT NULL DEFAULT 0")
        # Older databases: their reminders go by the store's time, as they did.
        self._add_column("reminders", "received_at", "REAL")
        conn.execute("CREATE INDEX IF NOT EXISTS reminders_received ON reminders (received_at)")
        self._key_orders_by_store(conn, script)
        for table in ("orders", "order_events"):
            # Older databases: their orders and events have no reason code (the text says why).
            self._add_column(table, "reason_code", "TEXT")
        # Replaced by the partial indexes of pending commands and the (store, ref) one.
        conn.execute("DROP INDEX IF EXISTS commands_pending")

    def _add_column(self, table: str, column: str, definition: str) -> None:
        """Add ``column`` to ``table`` of an older database, looked for again in the write
        transaction: another shop instance on the database may be starting at the same time,
        and adding it twice would fail that start."""
        def missing() -> bool:
            return column not in {
                row[1] for row in self._conn().execute(f"PRAGMA table_info({table})")}

        if missing():
            with self._tx() as conn:
                if missing():
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    @staticmethod
    def _key_orders_by_store(conn: sqlite3.Connection, script: str) -> None:
        """Older databases keyed orders by id alone: rebuild the table keyed by (store, id).
        Orders two stores' events had already merged stay one row (of the store whose status
        came last); their histories are told apart by store from now on."""
        def keyed_by_id() -> bool:
            return {row[1]: row[5] for row in conn.execute("PRAGMA table_info(orders)")}.get(
                "store") == 0

        if not keyed_by_id():
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if keyed_by_id():  # another shop instance may have done it meanwhile
                columns = ("id, store, member, state, reason, lines, seq, pickup_by, created_at, "
                           "updated_at")
                conn.execute("ALTER TABLE orders RENAME TO orders_by_id")
                table = script[script.index("CREATE TABLE IF NOT EXISTS orders ("):]
                conn.execute(table[:table.index(");") + 2])
                conn.execute(f"INSERT INTO orders ({columns}) SELECT {columns} FROM orders_by_id")
                conn.execute("DROP TABLE orders_by_id")
                conn.execute("CREATE INDEX IF NOT EXISTS orders_member ON orders (member)")
                conn.execute("CREATE INDEX IF NOT EXISTS orders_id ON orders (id)")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- applying what stores send (writer thread) ---------------------------------------------

    def apply_batch(self, items: list[Item], now: float) -> BatchOutcome:
        """Apply messages in arrival order in one transaction."""
        out = BatchOutcome()
        with self._tx() as conn:
            touched: set[str] = set()
            watermarks = self._note_stores(conn, items, now, out)
            for item in items:
                if isinstance(item, DeadItem):
                    self._dead_letter(conn, item.letter)
                    out.dead.append(item.letter.reason)
                elif isinstance(item, StateItem):
                    store = item.envelope.store
                    self._apply_state(conn, item, now, out)
                    touched.add(store)
                    if store in watermarks:  # a rewind moves it for the events that follow
                        watermarks[store] = conn.execute(
                            "SELECT watermark FROM stores WHERE store = ?", (store,)).fetchone()[0]
                elif isinstance(item, SnapshotItem):
                    self._apply_snapshot(conn, item, now, out)
                elif self._apply_event(conn, item, watermarks, now, out):
                    touched.add(item.envelope.store)
            touched |= out.stale_runs
            for store in sorted(touched):
                out.acks[store] = self._advance(conn, store)
        return out

    def _store_row(self, conn: sqlite3.Connection, store: str, epoch: int,
                   now: float) -> tuple[int, int]:
        """(previous epoch, watermark) of ``store``, creating it; records the newer epoch."""
        conn.execute("INSERT OR IGNORE INTO stores (store) VALUES (?)", (store,))
        before, watermark = conn.execute(
            "SELECT epoch, watermark FROM stores WHERE store = ?", (store,)).fetchone()
        conn.execute("UPDATE stores SET epoch = max(epoch, ?), seen_at = ? WHERE store = ?",
                     (epoch, now, store))
        return before, watermark

    def _note_stores(self, conn: sqlite3.Connection, items: list[Item], now: float,
                     out: BatchOutcome) -> dict[str, int]:
        """Create and update every store the events of a batch name (once per store, not per
        event); returns their watermarks before the batch, and notes stores whose events are
        all of a run older than one the shop knows."""
        epochs: dict[str, int] = {}
        for item in items:
            if isinstance(item, EventItem):
                store = item.envelope.store
                epochs[store] = max(epochs.get(store, 0), item.envelope.epoch)
        watermarks = {}
        for store, epoch in epochs.items():
            before, watermarks[store] = self._store_row(conn, store, epoch, now)
            if epoch < before:
                out.stale_runs.add(store)
        return watermarks

    def _apply_event(self, conn: sqlite3.Connection, item: EventItem,
                     watermarks: dict[str, int], now: float, out: BatchOutcome) -> bool:
        env = item.envelope
        if self._implausible(conn, env, env.seq, watermarks[env.store], item.topic, now, out):
            return False
        inserted = watermarks[env.store] < env.seq and conn.execute(
            "INSERT OR IGNORE INTO applied (store, seq, prev, msg_id, type, dead, applied_at, "
            "epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (env.store, env.seq, env.prev, env.id, env.type, int(item.problem is not None), now,
             env.epoch),
        ).rowcount == 1
        if not inserted:
            known = conn.execute("SELECT msg_id, epoch FROM applied WHERE store = ? AND seq = ?",
                                 (env.store, env.seq)).fetchone()
            if known is not None and known[0] != env.id and env.epoch > known[1]:
                # A newer run has another event at this seq: the store's history was cut back
                # before it (a restore), and its birth, which says so, came late or not at all
                # (it wrote past the old watermark first, or its clock was behind).
                keep = self._history_kept(conn, env.store, env.seq - 1, (env.epoch, None))
                self._rewind(conn, env.store, watermarks[env.store], keep, env.seq - 1, now)
                out.rewound.add(env.store)
                watermarks[env.store] = conn.execute(
                    "SELECT watermark FROM stores WHERE store = ?", (env.store,)).fetchone()[0]
                out.snapshots_wanted.add(env.store)
                out.drift += 1
                return self._apply_event(conn, item, watermarks, now, out)
            if known is not None and known[0] != env.id:
                self._drift(conn, env.store, "seq_reused", None, env.seq,
                            {"applied": known[0], "received": env.id}, now)
                out.drift += 1
            elif known is not None and env.prev is not None:
                # The same event again with a nearer predecessor: a copy sent from a stale
                # cursor named one too far back, and kept, it broke the chain for good (the
                # watermark stuck before it). The nearest predecessor named is the true one.
                repaired = conn.execute(
                    "UPDATE applied SET prev = ? WHERE store = ? AND seq = ? AND "
                    "(prev IS NULL OR prev < ?)", (env.prev, env.store, env.seq, env.prev),
                ).rowcount
                out.duplicates += 1
                return repaired == 1  # the watermark may move along the mended chain
            out.duplicates += 1
            return False
        out.applied += 1
        if item.problem is not None:
            self._dead_letter(conn, item.problem)
            out.dead.append(item.problem.reason)
            return True
        data = item.data
        if isinstance(data, messages.Movement):
            self._apply_movement(conn, env, data, now, out)
        elif isinstance(data, messages.OrderStatus):
            self._apply_order_status(conn, env, data, now)
        elif isinstance(data, messages.CommandResult):
            self._apply_result(conn, env, data, now)
        elif isinstance(data, messages.MemberStatus):
            self._apply_member_status(conn, env.store, data)
        elif isinstance(data, messages.Reminder):
            conn.execute("INSERT INTO reminders (store, seq, member, data, ts, received_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (env.store, env.seq, data.member, bytes(env.data).decode(), env.ts, now))
        else:
            conn.execute("INSERT INTO other_events (store, seq, type, data, ts) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (env.store, env.seq, env.type, bytes(env.data).decode(), env.ts))
        return True

    def _apply_movement(self, conn: sqlite3.Connection, env: Envelope, m: messages.Movement,
                        now: float, out: BatchOutcome) -> None:
        conn.execute(
            "INSERT INTO movements (store, seq, movement_id, sku, qty, reserved_qty, reason, "
            "order_id, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (env.store, env.seq, m.movement_id, m.sku, m.qty, m.reserved_qty, m.reason,
             m.order_id, m.ts, bytes(env.data).decode()),
        )
        row = StockRow(env.store, m.sku, m.on_hand, m.reserved, m.available, env.seq)
        if self._set_stock(conn, row, "movement", now):
            out.stock.append(row)

    @staticmethod
    def _set_stock(conn: sqlite3.Connection, row: StockRow, source: str, now: float) -> bool:
        """Write ``row`` unless the view already reflects a later seq; True when written."""
        return conn.execute(
            "INSERT INTO stock_view (store, sku, on_hand, reserved, available, seq, source, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, sku) DO UPDATE SET "
            "on_hand = excluded.on_hand, reserved = excluded.reserved, "
            "available = excluded.available, seq = excluded.seq, source = excluded.source, "
            "updated_at = excluded.updated_at WHERE excluded.seq > stock_view.seq",
            (row.store, row.sku, row.on_hand, row.reserved, row.available, row.seq, source, now),
        ).rowcount == 1

    @staticmethod
    def _apply_order_status(conn: sqlite3.Connection, env: Envelope,
                            status: messages.OrderStatus, now: float) -> None:
        conn.execute("INSERT INTO order_events (store, seq, order_id, state, reason, "
                     "reason_code, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (env.store, env.seq, status.id, status.state, status.reason,
                      status.reason_code, status.updated_at))
        lines = json.dumps([{"sku": line.sku, "qty": line.qty} for line in status.lines])
        conn.execute(
            "INSERT INTO orders (id, store, member, state, reason, reason_code, lines, seq, "
            "pickup_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (store, id) DO UPDATE SET state = excluded.state, "
            "reason = excluded.reason, reason_code = excluded.reason_code, "
            "seq = excluded.seq, pickup_by = excluded.pickup_by, "
            "updated_at = excluded.updated_at "
            "WHERE excluded.seq > orders.seq",
            (status.id, env.store, status.member_id, status.state, status.reason,
             status.reason_code, lines, env.seq, status.pickup_by, status.created_at, now),
        )

    @staticmethod
    def _apply_member_status(conn: sqlite3.Connection, store: str,
                             status: messages.MemberStatus) -> None:
        """A member as ``store`` has it (the answer to member.announce): the store's word
        where it is newer than the shop's, so a shop restored from its backup gets back the
        opt-ins and withdrawals made since. A member the shop does not know is added only
        with a key (one who consents). The key is the member's: a consenting status newer
        than all the shop knows of the member brings the key the member's phone was given
        last (a withdrawal gives a new one, and the restore lost it); a member left with no
        store that has their consent gets a fresh unshared key, as a withdrawal gives, so a
        key withdrawn after the shop's backup is not handed out again."""
        key = status.beacon_key.lower() if status.consent and status.beacon_key else None
        conn.execute("INSERT OR IGNORE INTO members (id, display_name, beacon_key, created_at) "
                     "SELECT ?, ?, ?, ? WHERE ? IS NOT NULL",
                     (status.id, status.display_name, key, status.updated_at, key))
        if key is not None:
            conn.execute("UPDATE members SET beacon_key = ? WHERE id = ? AND ? > coalesce(("
                         "SELECT max(updated_at) FROM member_stores WHERE member = ?), 0)",
                         (key, status.id, status.updated_at, status.id))
        conn.execute("INSERT INTO member_stores (member, store, consent, updated_at) "
                     "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM members WHERE id = ?) "
                     "ON CONFLICT (member, store) DO UPDATE SET consent = excluded.consent, "
                     "updated_at = excluded.updated_at "
                     "WHERE excluded.updated_at > member_stores.updated_at",
                     (status.id, store, int(status.consent), status.updated_at, status.id))
        if not status.consent:
            conn.execute("UPDATE members SET beacon_key = ? WHERE id = ? AND NOT EXISTS ("
                         "SELECT 1 FROM member_stores WHERE member = ? AND consent = 1)",
                         (secrets.token_hex(16), status.id, status.id))

    @staticmethod
    def _apply_result(conn: sqlite3.Connection, env: Envelope, result: messages.CommandResult,
                      now: float) -> None:
        conn.execute(
            "UPDATE commands SET status = ?, reason = ?, resolved_at = ?, result_seq = ? "
            "WHERE id = ? AND status = 'pending'",
            (result.status, result.reason, now, env.seq, result.command_id),
        )
        if result.command_type == messages.STORE_RECOVER:
            ShopStore._recovery_answered(conn, result.command_id, result.status, result.reason,
                                         now, result.skipped)
        if result.status == "rejected" and result.command_type == messages.ORDER_PLACE:
            # The store never created the order, so no status event will come for it.
            ShopStore._order_refused(conn, env.store, result.command_id, result.reason, env.seq,
                                     now)

    @staticmethod
    def _recovery_answered(conn: sqlite3.Connection, command_id: str, status: str,
                           reason: str | None, now: float,
                           skipped: list[messages.SkippedEvent] | None = None) -> None:
        """The events store.recover ``command_id`` carried take its outcome: each its own when
        the store said which it skipped (the others were applied or already there), else the
        command's, with its note."""
        if skipped is None:
            conn.execute("UPDATE rewound_events SET outcome = ?, note = ?, recovered_at = ? "
                         "WHERE command_id = ?", (status, reason, now, command_id))
            return
        conn.execute("UPDATE rewound_events SET outcome = ?, note = NULL, recovered_at = ? "
                     "WHERE command_id = ?", (status, now, command_id))
        conn.executemany("UPDATE rewound_events SET outcome = 'skipped', note = ? "
                         "WHERE command_id = ? AND seq = ?",
                         [(skip.note, command_id, skip.seq) for skip in skipped])

    @staticmethod
    def _order_refused(conn: sqlite3.Connection, store: str, command_id: str,
                       reason: str | None, seq: int | None, now: float) -> None:
        """The order that command ``command_id`` places was refused (by the store, whose result
        event is ``seq``; or, too large to send, by the shop, ``seq`` None): it shows
        'rejected' with ``reason``, as no status event will ever come for it."""
        conn.execute(
            "UPDATE orders SET state = 'rejected', reason = ?, reason_code = ?, "
            "seq = coalesce(?, seq), updated_at = ? WHERE store = ? AND "
            "id = (SELECT ref FROM commands WHERE id = ?) AND state = 'requested'",
            (reason, INVALID_ORDER, seq, now, store, command_id),
        )

    def _apply_snapshot(self, conn: sqlite3.Connection, item: SnapshotItem, now: float,
                        out: BatchOutcome) -> None:
        env, snap = item.envelope, item.snapshot
        _, watermark = self._store_row(conn, env.store, env.epoch, now)
        if self._implausible(conn, env, max(env.seq, snap.seq), watermark, item.topic, now, out):
            return
        have = conn.execute("SELECT on_hand, reserved, available, seq FROM stock_view "
                            "WHERE store = ? AND sku = ?", (env.store, snap.sku)).fetchone()
        row = StockRow(env.store, snap.sku, snap.on_hand, snap.reserved, snap.available, snap.seq)
        if have is not None and have[3] == snap.seq:
            if tuple(have[:3]) != (snap.on_hand, snap.reserved, snap.available):
                self._drift(conn, env.store, "stock", snap.sku, snap.seq, {
                    "shop": dict(zip(("on_hand", "reserved", "available"), have[:3], strict=True)),
                    "store": {"on_hand": snap.on_hand, "reserved": snap.reserved,
                              "available": snap.available}}, now)
                out.drift += 1
                conn.execute("UPDATE stock_view SET on_hand = ?, reserved = ?, available = ?, "
                             "source = 'snapshot', updated_at = ? WHERE store = ? AND sku = ?",
                             (snap.on_hand, snap.reserved, snap.available, now, env.store,
                              snap.sku))
                out.stock.append(row)
        elif (have is None or have[3] < snap.seq) and self._set_stock(conn, row, "snapshot", now):
            out.stock.append(row)

    def _apply_state(self, conn: sqlite3.Connection, item: StateItem, now: float,
                     out: BatchOutcome) -> None:
        env, st = item.envelope, item.state
        before, watermark = self._store_row(conn, env.store, env.epoch, now)
        if env.epoch < before:
            # a late will or retained birth of an earlier run, or a store whose clock is behind
            out.stale_runs.add(env.store)
            return
        if st.state != "online":
            # Only the state is news: a will's numbers and ts are of the moment its connection
            # began (MQTT cannot change a will later), so they may be far behind the numbers
            # of the online states that followed on that connection.
            conn.execute("UPDATE stores SET online = 0 WHERE store = ?", (env.store,))
            return
        conn.execute("UPDATE stores SET last_seq = ?, acked_seq = ?, online = 1, state_at = ? "
                     "WHERE store = ?", (st.last_seq, st.acked_seq, env.ts, env.store))
        out.births.append(env.store)
        born = conn.execute("SELECT born_epoch FROM stores WHERE store = ?",
                            (env.store,)).fetchone()[0]
        conn.execute("UPDATE stores SET born_epoch = max(born_epoch, ?) WHERE store = ?",
                     (env.epoch, env.store))
        # Only a new run can have a shorter history; a retained birth of the current run may
        # simply predate what the shop has applied since. Judged against the last birth, not
        # the newest epoch seen: the new run's first events or snapshots can reach the shop
        # before its birth (same batch, another shop instance, a retained birth heard late).
        keep = watermark
        if env.epoch > born and watermark > st.last_seq:
            keep = self._history_kept(conn, env.store, st.last_seq,
                                      (env.epoch, st.inherited_seq))
        if keep < watermark:
            self._rewind(conn, env.store, watermark, keep, st.last_seq, now,
                         store_limit=st.max_payload_bytes)
            out.rewound.add(env.store)
            out.snapshots_wanted.add(env.store)
            out.drift += 1
        elif watermark < st.acked_seq:
            # The store forgot events this database never applied (it was lost or replaced):
            # take the store's word for where the stream stands and rebuild from snapshots,
            # and ask for its members (opt-ins this database may have lost).
            self._drift(conn, env.store, "history_gap", None, st.acked_seq,
                        {"watermark": watermark, "store_acked": st.acked_seq}, now)
            conn.execute("UPDATE stores SET watermark = ? WHERE store = ?",
                         (st.acked_seq, env.store))
            if conn.execute("SELECT 1 FROM commands WHERE store = ? AND type = ? AND "
                            "status = 'pending'", (env.store, messages.MEMBER_ANNOUNCE)
                            ).fetchone() is None:
                self._add_command(conn, env.store, messages.MEMBER_ANNOUNCE, {}, None, now)
            out.snapshots_wanted.add(env.store)
            out.drift += 1

    @staticmethod
    def _history_kept(conn: sqlite3.Connection, store: str, last_seq: int,
                      run: tuple[int, int | None]) -> int:
        """The newest seq of ``store``'s history that its new run still has, when it says its
        last seq is ``last_seq``: what the shop holds above it is lost with a restore, unless
        it is the new run's own.

        ``run`` is the new run's epoch and the seq it began at, as its birth says (None from
        an older hub). The restored hub may have written other events at the numbers after
        that seq before the shop heard it, so above it only the run's own (by epoch, in an
        unbroken line) are kept; without it, such an event rewinds the store a second time
        when it comes, and what the store lost comes back in two recoveries. The run's own
        events above ``last_seq`` are kept too: a birth is older than the events written after
        it, and the first birth the shop hears may come after them (a retained birth heard
        late), when nothing at all was lost."""
        epoch, inherited = run
        shared = last_seq if inherited is None else inherited
        # The newest event the restored history still has. Retention keeps every `applied` row
        # a restore from a backup within its window needs; from an older backup, the event may
        # be pruned from `applied` but is still among the business records, kept for good.
        keep: int = max(conn.execute(f"SELECT coalesce(max(seq), 0) FROM {table} WHERE store = "
                                     "? AND seq <= ?", (store, shared)).fetchone()[0]
                        for table in ("applied", "movements", "order_events", "other_events"))
        for (seq,) in conn.execute("SELECT seq FROM applied WHERE store = ? AND seq > ? AND "
                                   "epoch = ? ORDER BY seq", (store, keep, epoch)):
            if seq != keep + 1:
                break
            keep = seq
        return keep

    def _rewind(self, conn: sqlite3.Connection, store: str, watermark: int, keep: int,
                last_seq: int, now: float, store_limit: int | None = None) -> None:
        """The store came back with a shorter history (restored from a backup) that ends at
        ``keep``, below the shop's ``watermark``: set what came after it aside
        (``rewound_events``) and hand it back to the store to apply again (store.recover),
        rebuild the stock view from snapshots, and put orders and commands back where that
        history leaves them. What the store applies again comes back as new events, so the
        views follow the store throughout. ``last_seq`` is what the store said (for the drift
        record), ``store_limit`` its ``max_payload_bytes`` as its birth says (None from an
        older hub)."""
        self._set_aside(conn, store, keep, now)
        for table in ("applied", "movements", "order_events", "reminders", "other_events"):
            conn.execute(f"DELETE FROM {table} WHERE store = ? AND seq > ?", (store, keep))
        self._hand_back(conn, store, now, store_limit)
        conn.execute("DELETE FROM stock_view WHERE store = ?", (store,))
        # The restored store never saw the commands it answered after the backup (an order
        # placed or cancelled there): ask again. Commands answered before it are known to it
        # and are not resent (it would take them as duplicates and say nothing).
        conn.execute("UPDATE commands SET status = 'pending', reason = NULL, resolved_at = NULL, "
                     "result_seq = NULL, sent_at = NULL WHERE store = ? AND result_seq > ?",
                     (store, keep))
        # Orders show their last status the restored history has, or 'requested' when the
        # order is in none of it (its order.place is pending again, above).
        last = ("SELECT {} FROM order_events e WHERE e.store = orders.store AND "
                "e.order_id = orders.id ORDER BY e.seq DESC LIMIT 1")
        conn.execute(
            f"UPDATE orders SET state = coalesce(({last.format('state')}), 'requested'), "
            f"reason = ({last.format('reason')}), reason_code = ({last.format('reason_code')}), "
            f"seq = coalesce(({last.format('seq')}), 0), updated_at = ? "
            "WHERE store = ? AND seq > ?",
            (now, store, keep),
        )
        conn.execute("UPDATE stores SET watermark = ? WHERE store = ?", (keep, store))
        self._drift(conn, store, "rewind", None, keep, {"watermark": watermark,
                                                         "store_last_seq": last_seq}, now)

    @staticmethod
    def _set_aside(conn: sqlite3.Connection, store: str, keep: int, now: float) -> None:
        """Copy the events above ``keep`` into ``rewound_events`` before the live tables forget
        them; a movement applied before its data was kept gets it rebuilt from its row."""
        run = ("coalesce((SELECT a.epoch FROM applied a WHERE a.store = x.store AND "
               "a.seq = x.seq), 0)")
        columns = "(store, epoch, seq, type, id, data, ts, rewound_at)"
        conn.execute(
            f"INSERT OR IGNORE INTO rewound_events {columns} SELECT store, {run}, seq, ?, "
            "movement_id, coalesce(data, json_object('movement_id', movement_id, 'sku', sku, "
            "'qty', qty, 'reserved_qty', reserved_qty, 'reason', reason, 'order_id', order_id, "
            "'ts', ts)), ts, ? FROM movements x WHERE store = ? AND seq > ?",
            (messages.MOVEMENT, now, store, keep))
        conn.execute(
            f"INSERT OR IGNORE INTO rewound_events {columns} SELECT store, {run}, seq, ?, "
            "order_id, json_object('id', order_id, 'state', state, 'reason', reason, "
            "'reason_code', reason_code, 'updated_at', ts), ts, ? FROM order_events x "
            "WHERE store = ? AND seq > ?", (messages.ORDER_STATUS, now, store, keep))
        conn.execute(
            f"INSERT OR IGNORE INTO rewound_events {columns} SELECT store, {run}, seq, ?, NULL, "
            "data, ts, ? FROM reminders x WHERE store = ? AND seq > ?",
            (messages.REMINDER, now, store, keep))
        conn.execute(
            f"INSERT OR IGNORE INTO rewound_events {columns} SELECT store, {run}, seq, type, "
            "NULL, data, ts, ? FROM other_events x WHERE store = ? AND seq > ?",
            (now, store, keep))

    def _hand_back(self, conn: sqlite3.Connection, store: str, now: float,
                   store_limit: int | None) -> None:
        """Queue the business events just set aside as store.recover commands, in their
        original order, each batch within ``max_payload_bytes`` and the store's limit as its
        birth says (a lower one held the batches back, in order, until the two match; one
        event over it alone is still a batch of its own). Presence and other events, and
        movements that follow their order (its steps go back instead), are kept only."""
        limit = min(self.max_payload_bytes, store_limit or self.max_payload_bytes)
        recovered = ", ".join("?" * len(messages.RECOVERED_TYPES))
        reasons = ", ".join("?" * len(messages.RECOVERED_REASONS))
        conn.execute(
            "UPDATE rewound_events SET outcome = 'not_recovered', note = ? WHERE store = ? "
            f"AND rewound_at = ? AND command_id IS NULL AND outcome IS NULL AND (type NOT IN "
            f"({recovered}) OR (type = ? AND json_extract(data, '$.reason') NOT IN ({reasons})))",
            ("not a type the store takes back, or moved with its order", store, now,
             *messages.RECOVERED_TYPES, messages.MOVEMENT, *messages.RECOVERED_REASONS))
        rows = conn.execute(
            "SELECT epoch, seq, type, ts, data FROM rewound_events WHERE store = ? AND "
            "rewound_at = ? AND outcome IS NULL AND command_id IS NULL ORDER BY epoch, seq",
            (store, now)).fetchall()
        batch: list[tuple[int, str]] = []  # (seq, event JSON) of one run
        batch_epoch = size = 0
        for epoch, seq, type_, ts, data in rows:
            event = json.dumps({"seq": seq, "type": type_, "ts": ts, "data": json.loads(data)},
                               separators=(",", ":"))
            if batch and (epoch != batch_epoch or len(batch) == messages.MAX_RECOVERED_EVENTS
                          or size + 1 + len(event) > limit):
                self._recover_command(conn, store, batch_epoch, batch, now)
                batch = []
            if not batch:  # (less the comma before the first event, which it has not)
                batch_epoch, size = epoch, self._recover_overhead(store, epoch) - 1
            if size + 1 + len(event) > self.max_payload_bytes:
                conn.execute("UPDATE rewound_events SET outcome = 'not_recovered', note = ? "
                             "WHERE store = ? AND epoch = ? AND seq = ?",
                             (f"larger than max_payload_bytes {self.max_payload_bytes} on its "
                              "own", store, epoch, seq))
                continue
            batch.append((seq, event))
            size += 1 + len(event)
        if batch:
            self._recover_command(conn, store, batch_epoch, batch, now)

    def _recover_overhead(self, store: str, epoch: int) -> int:
        """The envelope of a store.recover with no events, at its widest: with the widest
        seq the command can get (sized with seq 0, a batch a few bytes under the limit came
        out over it, and the rewind failed the same way at every retry)."""
        body = json.dumps({"epoch": epoch, "events": []}, separators=(",", ":"))
        return len(PendingCommand(MAX_SEQ, new_id(), store, messages.STORE_RECOVER, body,
                                  0).largest_payload())

    def _recover_command(self, conn: sqlite3.Connection, store: str, epoch: int,
                         batch: list[tuple[int, str]], now: float) -> None:
        data = {"epoch": epoch, "events": [json.loads(event) for _, event in batch]}
        ref = f"{epoch}:{batch[0][0]}-{batch[-1][0]}"
        command = self._add_command(conn, store, messages.STORE_RECOVER, data, ref, now)
        conn.executemany("UPDATE rewound_events SET command_id = ? WHERE store = ? AND "
                         "epoch = ? AND seq = ?",
                         [(command.id, store, epoch, seq) for seq, _ in batch])

    def _implausible(self, conn: sqlite3.Connection, env: Envelope, seq: int, watermark: int,
                     topic: str, now: float, out: BatchOutcome) -> bool:
        """True, with a dead letter, when ``seq`` is more than ``MAX_SEQ_AHEAD`` past the
        furthest the shop knows ``env.store`` has written."""
        (last_seq,) = conn.execute("SELECT last_seq FROM stores WHERE store = ?",
                                   (env.store,)).fetchone()
        known = max(watermark, last_seq)
        if seq <= known + MAX_SEQ_AHEAD:
            return False
        error = ProtocolError(
            "implausible_seq", f"{env.type} of store {env.store} at seq {seq}, more than "
            f"{MAX_SEQ_AHEAD} past seq {known}, the furthest the shop knows the store has "
            f"written (its watermark {watermark}, last_seq {last_seq} in its last state): "
            "corrupt or forged, so not applied. A store that did write that far says so in its "
            "next state (on connecting, or answering a resync), and the event it sends again "
            "is applied then")
        self._dead_letter(conn, inbound.letter(topic, msgspec.json.encode(env), error, now))
        out.dead.append(error.reason)
        return True

    @staticmethod
    def _advance(conn: sqlite3.Connection, store: str) -> tuple[int, int]:
        """Move the watermark along the prev chain; returns (epoch, watermark)."""
        epoch, watermark = conn.execute("SELECT epoch, watermark FROM stores WHERE store = ?",
                                        (store,)).fetchone()
        start = watermark
        # One event follows each seq in a timeline; should two claim the same prev, the lower seq
        # is the true successor (advancing to the higher would skip events).
        # (Fetched whole and reduced here, so SQLite uses the (store, prev) index.)
        while nexts := conn.execute("SELECT seq FROM applied WHERE store = ? AND prev = ?",
                                    (store, watermark)).fetchall():
            watermark = min(seq for (seq,) in nexts)
        if watermark != start:
            conn.execute("UPDATE stores SET watermark = ? WHERE store = ?", (watermark, store))
        return epoch, watermark

    @staticmethod
    def _drift(conn: sqlite3.Connection, store: str, kind: str, sku: str | None, seq: int | None,
               detail: dict[str, Any], now: float) -> None:
        conn.execute("INSERT INTO drift (store, kind, sku, seq, detail, detected_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (store, kind, sku, seq, json.dumps(detail, sort_keys=True), now))

    @staticmethod
    def _dead_letter(conn: sqlite3.Connection, letter: DeadLetter) -> None:
        conn.execute("INSERT INTO dead_letters (topic, reason, message, size, payload, "
                     "received_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (letter.topic, letter.reason, letter.message, letter.size, letter.payload,
                      letter.received_at))

    # --- retention (writer thread) --------------------------------------------------------------

    def prune(self, before: PruneBefore, limit: int) -> dict[str, int]:
        """Delete at most ``limit`` old rows of each table in one transaction; returns how many
        went from each (a count of ``limit`` means there may be more). What is kept and why:
        ``sync/shop/retention.py``."""
        def delete(table: str, where: str, *params: Any) -> int:
            return conn.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                                f"WHERE {where} LIMIT ?)", (*params, limit)).rowcount

        with self._tx() as conn:
            return {
                # by when the shop received them: a store's clock behind (a Pi started without
                # a battery clock stamps 1970) had them deleted at once, one ahead kept personal
                # data past its age
                "reminders": delete("reminders", "received_at < ? OR (received_at IS NULL AND "
                                    "ts < ?)", before.reminders, before.reminders),
                "rewound_reminders": delete("rewound_events", "type = ? AND rewound_at < ?",
                                            messages.REMINDER, before.reminders),
                "commands": delete("commands", "status <> 'pending' AND resolved_at < ?",
                                   before.history),
                "applied": self._prune_applied(conn, before.history, limit),
                "dead_letters": delete("dead_letters", "received_at < ?", before.dead_letters),
                "drift": delete("drift", "detected_at < ?", before.drift),
            }

    @staticmethod
    def _prune_applied(conn: sqlite3.Connection, before: float, limit: int) -> int:
        """Delete `applied` rows applied before ``before``, at or below their store's watermark,
        except each store's newest such row (its anchor) and everything above it."""
        deleted = 0
        for store, watermark in conn.execute("SELECT store, watermark FROM stores").fetchall():
            if deleted >= limit:
                break
            # (+seq: through applied_age, the rows older than the window, not the whole store)
            (anchor,) = conn.execute(
                "SELECT max(seq) FROM applied WHERE store = ? AND applied_at < ? AND +seq <= ?",
                (store, before, watermark)).fetchone()
            if anchor is not None:
                deleted += conn.execute(
                    "DELETE FROM applied WHERE rowid IN (SELECT rowid FROM applied WHERE "
                    "store = ? AND seq < ? AND applied_at < ? LIMIT ?)",
                    (store, anchor, before, limit - deleted)).rowcount
        return deleted

    # --- what the shop asks of stores (writer thread) ------------------------------------------

    def place_order(self, order_id: str, store: str, member: str | None,
                    lines: list[dict[str, Any]], now: float,
                    key: OrderKey | None = None) -> Placed:
        """Record the order as 'requested' and the command that asks the store for it.

        With ``key``: when ``member`` used it since ``key.kept_since``, the order it made is
        returned instead (or KeyReused raised when the fingerprint differs). Checked and
        recorded in the one write transaction, so two requests with a key (two shop instances)
        make one order. The order a key makes gets the key's own id (``OrderKey.order_id``),
        ``order_id`` when that id was used longer ago than keys are kept."""
        with self._tx() as conn:
            if key is not None and member is not None:
                conn.execute("DELETE FROM order_keys WHERE created_at < ?", (key.kept_since,))
                known = conn.execute("SELECT request, order_id, store FROM order_keys "
                                     "WHERE member = ? AND key = ?", (member, key.key)).fetchone()
                if known is not None:
                    if known[0] != key.fingerprint:
                        raise KeyReused(key.key, known[1])
                    return Placed(known[1], known[2], None)
                keyed_id = key.order_id(member)
                made = conn.execute("SELECT created_at FROM orders WHERE store = ? AND id = ?",
                                    (store, keyed_id)).fetchone()
                if made is not None and made[0] >= key.kept_since:
                    # The key was lost, not its order (the shop was restored from a backup
                    # taken before the first request; the store's status brought the order
                    # back): answer with it, and know the key again from when it was used.
                    self._keep_key(conn, member, key, keyed_id, store, made[0])
                    return Placed(keyed_id, store, None)
                if made is None:
                    order_id = keyed_id
            self._require_store(conn, store)
            conn.execute("INSERT INTO orders (id, store, member, state, lines, created_at, "
                         "updated_at) VALUES (?, ?, ?, 'requested', ?, ?, ?)",
                         (order_id, store, member, json.dumps(lines), now, now))
            if key is not None and member is not None:
                self._keep_key(conn, member, key, order_id, store, now)
            data = {"id": order_id, "member": member, "lines": lines}
            command = self._add_command(conn, store, messages.ORDER_PLACE, data, order_id, now)
            return Placed(order_id, store, command)

    @staticmethod
    def _keep_key(conn: sqlite3.Connection, member: str, key: OrderKey, order_id: str,
                  store: str, used_at: float) -> None:
        conn.execute("INSERT INTO order_keys (member, key, request, order_id, store, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (member, key.key, key.fingerprint, order_id, store, used_at))

    def cancel_order(self, order_id: str, store: str, reason: str | None,
                     now: float) -> PendingCommand:
        """Record an order.cancel for the store; OrderFinal when the order is known to be in a
        state the store would refuse it in (checked in the write transaction, so against
        everything applied so far)."""
        with self._tx() as conn:
            (state,) = conn.execute("SELECT state FROM orders WHERE store = ? AND id = ?",
                                    (store, order_id)).fetchone()
            if state in FINAL_STATES:
                raise OrderFinal(order_id, state)
            data = {"id": order_id, "reason": reason}
            return self._add_command(conn, store, messages.ORDER_CANCEL, data, order_id, now)

    def opt_in(self, member: str, store: str, display_name: str, consent: bool,
               new_key: str, now: float) -> tuple[str | None, PendingCommand]:
        """Give ``member`` a beacon key (once; the same key for every store) and tell ``store``.

        Without consent the store is sent no display name: it forgets the name with the key,
        and the command keeps a small fixed size, so that no size limit can ever refuse a
        member's opting out (a long name once made it a 413 while the store kept the key)."""
        with self._tx() as conn:
            self._require_store(conn, store)
            conn.execute("INSERT OR IGNORE INTO members (id, display_name, beacon_key, "
                         "created_at) VALUES (?, ?, ?, ?)", (member, display_name, new_key, now))
            if display_name:
                conn.execute("UPDATE members SET display_name = ? WHERE id = ?",
                             (display_name, member))
            key, name = conn.execute("SELECT beacon_key, display_name FROM members WHERE id = ?",
                                     (member,)).fetchone()
            conn.execute("INSERT INTO member_stores (member, store, consent, updated_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (member, store) DO UPDATE SET "
                         "consent = excluded.consent, updated_at = excluded.updated_at",
                         (member, store, int(consent), now))
            data = {"id": member, "display_name": name if consent else "", "consent": consent,
                    "beacon_key": key if consent else None}
            command = self._add_command(conn, store, messages.MEMBER_UPSERT, data, member, now)
            return (key if consent else None), command

    def withdraw(self, member: str, new_key: str, now: float) -> list[PendingCommand]:
        """Withdraw ``member``'s consent at every store that ever had it: each store is told to
        delete the key, and the shop replaces its copy with a fresh unshared key, so the old one
        exists nowhere once the stores have applied the commands (a later opt-in hands out the
        new key).

        Stores that never reported are told too (opt-ins of older versions reached them): a
        store appearing later must hear of the withdrawal with its pending opt-in."""
        with self._tx() as conn:
            stores = [row[0] for row in conn.execute(
                "SELECT store FROM member_stores WHERE member = ? ORDER BY store", (member,))]
            conn.execute("UPDATE member_stores SET consent = 0, updated_at = ? WHERE member = ?",
                         (now, member))
            conn.execute("UPDATE members SET beacon_key = ? WHERE id = ?", (new_key, member))
            data = {"id": member, "display_name": "", "consent": False, "beacon_key": None}
            return [self._add_command(conn, store, messages.MEMBER_UPSERT, data, member, now)
                    for store in stores]

    @staticmethod
    def _require_store(conn: sqlite3.Connection, store: str) -> None:
        """Refuse what would create a command for ``store`` before it has ever reported."""
        if conn.execute("SELECT 1 FROM stores WHERE store = ?", (store,)).fetchone() is None:
            raise UnknownStore(store)

    def _add_command(self, conn: sqlite3.Connection, store: str, type_: str,
                     data: dict[str, Any], ref: str | None, now: float) -> PendingCommand:
        """Queue a command for ``store``; :class:`~sync.envelope.TooLarge` (the caller's
        transaction rolls back) when its envelope could be over ``max_payload_bytes``: the
        store would only dead-letter it, or the broker drop it, while the shop sent it again
        for ever. Checked here, where every command is made, so none is queued that can
        never be delivered."""
        command_id = new_id()
        body = json.dumps(data, separators=(",", ":"))
        cur = conn.execute("INSERT INTO commands (id, store, type, data, status, ref, created_at) "
                           "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                           (command_id, store, type_, body, ref, now))
        epoch = conn.execute("SELECT coalesce(max(epoch), 0) FROM stores WHERE store = ?",
                             (store,)).fetchone()[0]
        command = PendingCommand(int(cur.lastrowid or 0), command_id, store, type_, body, epoch)
        within_limit(command.largest_payload(), self.max_payload_bytes,
                     f"the {type_} command for store {store!r}")
        return command

    def refuse_command(self, seq: int, reason: str, letter: DeadLetter, now: float) -> bool:
        """The pending command ``seq`` is too large to send (queued before the limit was
        lowered, or by an older version): record it ``rejected`` with ``reason``, as a store's
        refusal is recorded, so it is never sent again; an order it places shows 'rejected'
        (``invalid_order``); ``letter`` is kept with the dead letters. False when it was no
        longer pending (the store answered it meanwhile)."""
        with self._tx() as conn:
            row = conn.execute("SELECT id, store, type FROM commands WHERE seq = ? AND "
                               "status = 'pending'", (seq,)).fetchone()
            if row is None:
                return False
            command_id, store, type_ = row
            conn.execute("UPDATE commands SET status = 'rejected', reason = ?, resolved_at = ? "
                         "WHERE seq = ?", (reason, now, seq))
            if type_ == messages.ORDER_PLACE:
                self._order_refused(conn, store, command_id, reason, None, now)
            elif type_ == messages.STORE_RECOVER:  # its events would wait for an answer for ever
                self._recovery_answered(conn, command_id, "rejected", reason, now)
            self._dead_letter(conn, letter)
            return True

    def mark_sent(self, seqs: list[int], now: float) -> None:
        with self._tx() as conn:
            conn.executemany("UPDATE commands SET sent_at = ?, attempts = attempts + 1 "
                             "WHERE seq = ?", [(now, seq) for seq in seqs])

    def dead_letter(self, letter: DeadLetter) -> None:
        with self._tx() as conn:
            self._dead_letter(conn, letter)

    # --- queries (reader threads) ---------------------------------------------------------------

    def pending_commands(self, store: str | None, sent_before: float | None) -> list[
            PendingCommand]:
        """Unanswered commands (of ``store``; not sent since ``sent_before``), oldest first.

        Only stores that have reported: a store that never did cannot be listening, gets its
        commands on its first birth, and its commands (older versions stored them) must not
        take the places of real ones in the first 1000."""
        where, params = ["c.status = 'pending'"], []
        if store is not None:
            where.append("c.store = ?")
            params.append(store)
        if sent_before is not None:  # periodic resend: only to stores that are listening
            where.append("(c.sent_at IS NULL OR c.sent_at < ?) AND coalesce(s.online, 0) = 1")
            params.append(sent_before)
        rows = self._conn().execute(
            "SELECT c.seq, c.id, c.store, c.type, c.data, coalesce(s.epoch, 0) FROM commands c "
            f"JOIN stores s USING (store) WHERE {' AND '.join(where)} ORDER BY c.seq "
            "LIMIT 1000", params).fetchall()
        return [PendingCommand(*row) for row in rows]

    def stores(self) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT store, online, epoch, last_seq, watermark, seen_at FROM stores "
            "ORDER BY store").fetchall()
        return [{"store": r[0], "online": bool(r[1]), "epoch": r[2], "last_seq": r[3],
                 "applied_seq": r[4], "seen_at": r[5]} for r in rows]

    def store_positions(self) -> list[tuple[str, int, int]]:
        """(store, epoch, watermark) of every store known."""
        return self._conn().execute("SELECT store, epoch, watermark FROM stores").fetchall()

    def stock(self, store: str | None = None, sku: str | None = None) -> list[StockRow]:
        where, params = [], []
        if store is not None:
            where.append("store = ?")
            params.append(store)
        if sku is not None:
            where.append("sku = ?")
            params.append(sku)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._conn().execute(
            f"SELECT store, sku, on_hand, reserved, available, seq FROM stock_view {clause} "
            "ORDER BY store, sku", params).fetchall()
        return [StockRow(*row) for row in rows]

    def store_known(self, store: str) -> bool:
        return self._conn().execute("SELECT 1 FROM stores WHERE store = ?",
                                    (store,)).fetchone() is not None

    def order_stores(self, order_id: str) -> list[str]:
        """The stores that have an order ``order_id`` (more than one: staff at two stores chose
        the same id)."""
        return [row[0] for row in self._conn().execute(
            "SELECT store FROM orders WHERE id = ? ORDER BY store", (order_id,))]

    def order(self, order_id: str, store: str) -> dict[str, Any] | None:
        conn = self._conn()
        row = conn.execute("SELECT id, store, member, state, reason, reason_code, lines, "
                           "pickup_by, created_at, updated_at FROM orders "
                           "WHERE store = ? AND id = ?", (store, order_id)).fetchone()
        if row is None:
            return None
        history = conn.execute("SELECT state, reason, reason_code, ts, seq FROM order_events "
                               "WHERE store = ? AND order_id = ? ORDER BY seq",
                               (store, order_id)).fetchall()
        # The newest cancel asked of the store, and its outcome once the store answered.
        cancel = conn.execute("SELECT status, reason, created_at FROM commands WHERE type = ? "
                              "AND ref = ? AND store = ? ORDER BY seq DESC LIMIT 1",
                              (messages.ORDER_CANCEL, order_id, row[1])).fetchone()
        return {"id": row[0], "store": row[1], "member": row[2], "state": row[3],
                "reason": row[4], "reason_code": row[5], "lines": json.loads(row[6]),
                "pickup_by": row[7], "created_at": row[8], "updated_at": row[9],
                "history": [{"state": h[0], "reason": h[1], "reason_code": h[2], "ts": h[3],
                             "seq": h[4]} for h in history],
                "cancel": None if cancel is None else {
                    "status": cancel[0], "reason": cancel[1] if cancel[0] == "rejected" else None,
                    "requested_at": cancel[2]}}

    def reminders(self, member: str, limit: int) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT store, seq, data, ts FROM reminders WHERE member = ? "
            "ORDER BY ts DESC, seq DESC LIMIT ?", (member, limit)).fetchall()
        return [{"store": r[0], "seq": r[1], "ts": r[3], "data": json.loads(r[2])} for r in rows]

    def member_known(self, member: str) -> bool:
        return self._conn().execute("SELECT 1 FROM members WHERE id = ?",
                                    (member,)).fetchone() is not None
