"""The outbox: messages for the online shop, written in the same transaction as the change they
describe, so a change is never committed without its message nor announced without its change.
``sync`` drains it and deletes rows only when the shop acknowledges their sequence number."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ulid import ULID

from hub.db import Transaction
from hub.events import Event, EventBus

OUTBOX_WRITTEN = "outbox.written"


def enqueue(
    tx: Transaction,
    bus: EventBus | None,
    type_: str,
    data: dict[str, Any],
    ts: float,
    seq: int | None = None,
) -> int:
    """Add a message to the outbox and return its sequence number (a fresh one unless given)."""
    if seq is None:
        seq = tx.next_seq()
    tx.execute(
        "INSERT INTO outbox (seq, msg_id, type, data, ts) VALUES (?, ?, ?, ?, ?)",
        (seq, str(ULID()), type_, json.dumps(data, separators=(",", ":"), sort_keys=True), ts),
    )
    if bus is not None:
        tx.after_commit(lambda: bus.publish(Event(OUTBOX_WRITTEN, {"seq": seq})))
    return seq


def backlog(conn: sqlite3.Connection) -> tuple[int, float | None]:
    """Messages still to send to the shop and the time of the oldest, None when there is none:
    the rows it has not acknowledged (acknowledged rows are deleted), less those refused for
    their size. A refused row stays until the shop acks a later one; counted, a refused newest
    row (nothing after it to ack) kept the gauge, and an alert on a stuck outbox, up for good."""
    count, oldest = conn.execute(
        "SELECT count(*), min(ts) FROM outbox WHERE refused_at IS NULL").fetchone()
    return int(count), oldest
