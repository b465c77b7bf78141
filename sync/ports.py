"""What the sync agent needs from the store it runs in, as a typed interface.

``sync`` never imports ``hub``: the hub implements :class:`StoreLink` (``hub/sync_link.py``) on
its database and services, and tests or other hosts can implement it on anything else. Every
method is a coroutine because every one of them touches the store's database, which must stay
off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sync.messages import Command


@dataclass(frozen=True)
class OutboxRow:
    """A message the store committed for the shop; ``data`` is its JSON text."""

    seq: int
    msg_id: str
    type: str
    data: str
    ts: float


@dataclass(frozen=True)
class Position:
    """How far the store's sequence has got and how much of it the shop has acknowledged.

    ``restored_at`` is the last seq of the backup the store was restored from, until the shop
    has acknowledged a run since (None otherwise): a run that begins before then, the restored
    hub restarted again, still inherits only that much of the history the shop holds."""

    last_seq: int
    acked_seq: int
    restored_at: int | None = None

    @property
    def inherited(self) -> int:
        """The history a run beginning now takes over, as its birth says (``inherited_seq``)."""
        return self.last_seq if self.restored_at is None else min(self.last_seq,
                                                                  self.restored_at)


@dataclass(frozen=True)
class StockLevel:
    """One SKU's stock as of ``seq`` (the last ledger row that touched it, 0 if none): on the
    shelf, promised to orders, and free to sell online."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    seq: int


@dataclass(frozen=True)
class CommandIn:
    """A validated command from the shop."""

    id: str
    type: str
    data: Command
    sent_at: float


@dataclass(frozen=True)
class Outcome:
    """What applying a command did. ``duplicate``: its id was applied before, nothing changed."""

    status: Literal["applied", "rejected", "duplicate"]
    reason: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """An incoming message that could not be applied, or an outgoing one refused for its size
    (``too_large``: ``topic`` is where it was to go), kept with why."""

    topic: str
    reason: str
    message: str
    payload: bytes  # the first bytes only, see ``size``
    size: int
    received_at: float


class StoreLink(Protocol):
    """The store side of the link: its outbox, its sequence and its services."""

    async def begin_epoch(self, now: float, above: int = 0) -> int:
        """Start a new epoch (every start, and after a restore) and return it; never reused,
        and above ``above`` (a run the shop already knows)."""

    async def position(self) -> Position:
        """The store's last sequence number and the last one the shop acknowledged."""

    async def outbox_after(self, seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` outbox rows with a sequence number above ``seq``, in order."""

    async def acknowledge(self, seq: int) -> int:
        """The shop has applied everything up to ``seq``: forget those rows; returns the acked
        sequence number now recorded (never above the store's last sequence number)."""

    async def stock_since(self, seq: int | None) -> list[StockLevel]:
        """Stock of every SKU changed after ``seq``; with None, of every product."""

    async def execute(self, command: CommandIn) -> Outcome:
        """Apply ``command`` once: its effect, the record of its id and its result event for the
        shop commit together; a command id seen before changes nothing."""

    async def reject(self, command_id: str, command_type: str, reason: str) -> Outcome:
        """Record (once) that a command cannot be applied and tell the shop why."""

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Keep a message that could not be applied."""

    async def set_aside(self, seq: int, letter: DeadLetter) -> None:
        """Outbox row ``seq`` is too large to send: keep ``letter`` and mark the row refused,
        together, so it no longer counts as waiting to be sent (it stays until an ack covers
        it, like every row)."""

    async def announce_orders(self) -> int:
        """Write the status of the store's orders the shop may have lost (open ones, and those
        finished lately) as new events; returns how many. Called when the shop asks for
        snapshots: it lost track of the store (its database restored or replaced, or the
        store's history cut back), and the status events of orders it no longer has were
        acknowledged and are gone."""

    def nearby_stock(self, store: str, level: StockLevel) -> None:
        """Another store's stock of one SKU, from its retained snapshot (kept in memory)."""
