"""The ``data`` schemas of protocol v1, one per message type.

Store -> shop events are read leniently (fields a newer hub adds are ignored, missing or mistyped
fields are errors): the store is the authority and may grow its messages without breaking older
shops. Shop -> store commands are strict (unknown fields are errors): a command the hub does not
fully understand must not be half-applied.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from sync.envelope import MAX_MAX_PAYLOAD_BYTES, MIN_MAX_PAYLOAD_BYTES, MessageId, Seq, whole

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A name people read (a member's, on the staff page): any text without control characters or
#: line breaks, which would break a banner's line or a log line.
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
ID = Annotated[str, msgspec.Meta(pattern=whole(ID_PATTERN))]
Sku = Annotated[str, msgspec.Meta(pattern=whole(SKU_PATTERN))]
Text = Annotated[str, msgspec.Meta(max_length=500)]
OrderState = Literal[
    "pending", "accepted", "rejected", "ready", "collected", "cancelled", "expired"
]
#: Why the store rejected an order, for programs (``reason`` is English for people): one of
#: docs/asyncapi.yaml's codes, read as any short code so that a later hub's new code is kept
#: (and shown as a plain rejection) rather than its order.status refused by an older shop.
ReasonCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z_]{0,39}\Z")]

#: An end's ``max_payload_bytes``, told to the other end (state, ack).
PayloadLimit = Annotated[int, msgspec.Meta(ge=MIN_MAX_PAYLOAD_BYTES, le=MAX_MAX_PAYLOAD_BYTES)]

# --- store -> shop ---------------------------------------------------------------------------

MOVEMENT = "stock.movement"
ORDER_STATUS = "order.status"
COMMAND_RESULT = "command.result"
REMINDER = "reminder"
BEACON_HEALTH = "beacon.health"
SNAPSHOT = "stock.snapshot"
STATE = "store.state"
MEMBER_STATUS = "member.status"


class Movement(msgspec.Struct, kw_only=True):
    """A ledger row and the stock it left: the shop's view is rebuilt from these exactly."""

    movement_id: str
    seq: Seq
    sku: Sku
    qty: int
    reserved_qty: int
    reason: str
    order_id: str | None = None
    ts: float
    on_hand: int
    reserved: int
    available: int


class OrderLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku: Sku
    qty: Annotated[int, msgspec.Meta(ge=1, le=100_000)]


class EventOrderLine(msgspec.Struct, kw_only=True):
    sku: Sku
    qty: int


class OrderStatus(msgspec.Struct, kw_only=True):
    """An order's state after a change (the hub sends one per transition)."""

    id: ID
    member_id: str | None = None
    state: OrderState
    reason: str | None = None
    reason_code: ReasonCode | None = None  # hubs from before it leave it out
    created_at: float
    updated_at: float
    pickup_by: float | None = None
    lines: list[EventOrderLine]


class MemberStatus(msgspec.Struct, kw_only=True):
    """A member as the store has it, sent when the shop asks (member.announce): a shop restored
    from its backup gets back the opt-ins and withdrawals made since. ``updated_at`` is when the
    store last changed it (the store's clock); the key only while the member consents."""

    id: ID
    display_name: Annotated[str, msgspec.Meta(max_length=100, pattern=whole(NAME_PATTERN))] = ""
    consent: bool
    beacon_key: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{32}\Z")] | None = None
    updated_at: float


class SkippedEvent(msgspec.Struct, kw_only=True):
    """An event of a store.recover the store could not take, and why."""

    seq: Seq
    note: str


class CommandResult(msgspec.Struct, kw_only=True):
    """What the hub did with a command: sent when it is applied or refused, and the same again
    when the command comes again after the shop acknowledged the first (a restored shop)."""

    command_id: MessageId
    command_type: str
    status: Literal["applied", "rejected"]
    reason: str | None = None
    ref: str | None = None
    #: Of an applied store.recover, the events skipped (the others were applied or already
    #: there), so the shop can tell each one's outcome; None for other commands (and from hubs
    #: before it).
    skipped: list[SkippedEvent] | None = None


class Reminder(msgspec.Struct, kw_only=True):
    """An arrival reminder for a member; other fields are kept as sent."""

    member: ID


class StockSnapshot(msgspec.Struct, kw_only=True):
    """One SKU's stock as of ``seq`` (the last ledger row that touched it; 0 if none)."""

    sku: Sku
    on_hand: int
    reserved: int
    available: int
    seq: Seq


class StoreState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Birth (online) and will (offline): the epoch and how far the store's sequence has got.

    A will's numbers are those of the moment its connection began: the broker holds it from the
    CONNECT, and MQTT offers no way to change it on a live connection."""

    state: Literal["online", "offline"]
    epoch: Seq
    last_seq: Seq
    acked_seq: Seq
    #: The hub's ``[mqtt] max_payload_bytes`` (hubs from before it leave it out). A shop that
    #: reads it holds back commands larger than it, and tells the store its own in its acks.
    max_payload_bytes: PayloadLimit | None = None
    #: The store's last seq when this run began: the history it took over (hubs from before it
    #: leave it out); after a restore, until the shop acknowledges a run since, where the
    #: restored history ends. A shop with more of the store's history than ``last_seq`` (a
    #: restore) keeps only events up to it, and this run's own: the restored hub may have
    #: written others at the numbers after it before the shop heard it.
    inherited_seq: Seq | None = None


# --- shop -> store ---------------------------------------------------------------------------

ACK = "sync.ack"
ORDER_PLACE = "order.place"
ORDER_CANCEL = "order.cancel"
MEMBER_UPSERT = "member.upsert"
CATALOG_UPDATE = "catalog.update"
RESYNC = "sync.resync"
STORE_RECOVER = "store.recover"
MEMBER_ANNOUNCE = "member.announce"
#: The event types a store.recover hands back (stock movements staff and tills made, order
#: steps, member reminders sent); presence and other events are not (personal, ephemeral).
RECOVERED_TYPES = (MOVEMENT, ORDER_STATUS, REMINDER)
#: The movement reasons handed back: those staff and tills record. Reservations, pickups and
#: releases move with their order (its order.status is handed back instead).
RECOVERED_REASONS = ("receipt", "return", "sale", "write_off", "adjustment")
#: Events one store.recover carries at most (the shop closes a batch there, whatever its size).
MAX_RECOVERED_EVENTS = 5000


class Ack(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The shop has applied every event of the store up to and including ``acked_seq``.

    ``max_payload_bytes``: the shop's ``sync.max_payload_bytes``, sent only to a store whose
    state gave its own (an older hub would refuse the unknown field): the hub holds back events
    larger than it instead of sending what the shop can only dead-letter."""

    acked_seq: Seq
    max_payload_bytes: PayloadLimit | None = None


class OrderPlace(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: ID
    member: ID | None = None
    lines: Annotated[list[OrderLine], msgspec.Meta(min_length=1, max_length=500)]


class OrderCancel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: ID
    reason: Text | None = None


class MemberUpsert(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: ID
    display_name: Annotated[str, msgspec.Meta(max_length=100, pattern=whole(NAME_PATTERN))] = ""
    consent: bool
    beacon_key: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{32}\Z")] | None = None


class CatalogUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Product rows in the hub's catalogue import format (checked row by row by the hub)."""

    products: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=5000)]


class Resync(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Send again every event after ``after_seq`` (the shop's contiguous watermark), and with
    ``snapshots`` republish every SKU's snapshot."""

    after_seq: Seq | None = None
    snapshots: bool = False


class MemberAnnounce(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Send every member the store has as a member.status event: the shop lost its own record
    of them (restored from a backup, or a new database). Its own command, not a resync option,
    so a store from before it refuses it (unknown type) rather than the resync."""


class RecoveredEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One event of the store's lost history, as the store had sent it (``data`` is its event
    data, checked by the store event by event: one it cannot take is skipped, not the batch)."""

    seq: Seq
    type: Annotated[str, msgspec.Meta(max_length=64)]
    ts: float
    data: dict[str, Any]


class StoreRecover(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Events a restored store had sent after the backup it was restored from (run ``epoch``),
    handed back by the shop, in their original order, for the store to apply again."""

    epoch: Seq
    events: Annotated[list[RecoveredEvent],
                      msgspec.Meta(min_length=1, max_length=MAX_RECOVERED_EVENTS)]


class RecoveredMovement(msgspec.Struct, kw_only=True):
    """The fields of a handed-back stock.movement the store applies again (the rest, the stock
    it left then, is recomputed). A count comes back as the change it made (``qty``), so that
    what the restored store recorded meanwhile stays."""

    movement_id: str
    sku: Sku
    qty: int
    reason: str
    ref: str | None = None
    note: str | None = None


class RecoveredOrderStep(msgspec.Struct, kw_only=True):
    """The fields of a handed-back order.status the store takes again: the step, not the rest
    (stock moves with it as the step is taken here)."""

    id: ID
    state: OrderState
    reason: str | None = None


class RecoveredReminder(msgspec.Struct, kw_only=True):
    """The fields of a handed-back reminder the store records as sent."""

    member: ID
    order_id: ID
    arrived_at: float
    zone: str | None = None


Command = (OrderPlace | OrderCancel | MemberUpsert | CatalogUpdate | Resync | StoreRecover
           | MemberAnnounce)

#: Command type -> its data schema; any other type on a command topic is dead-lettered.
COMMANDS: dict[str, type[Command]] = {
    ORDER_PLACE: OrderPlace,
    ORDER_CANCEL: OrderCancel,
    MEMBER_UPSERT: MemberUpsert,
    CATALOG_UPDATE: CatalogUpdate,
    RESYNC: Resync,
    STORE_RECOVER: StoreRecover,
    MEMBER_ANNOUNCE: MemberAnnounce,
}
