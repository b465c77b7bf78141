"""The envelope every message of protocol v1 travels in, and its strict decoding.

Everything a receiver needs to apply a message exactly once is in the envelope, not in MQTT
features: ``store`` and ``seq`` identify a store event for good, ``epoch`` tells a restart or a
restore from backup apart, ``prev`` (events only) chains each event to the one before it so a
receiver can tell "not yet arrived" from "never existed" even where the store-wide sequence has
gaps. Decoding never raises anything but :class:`ProtocolError`, whose ``reason`` is a short
stable code for dead-letter rows and metrics.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

import msgspec
from ulid import ULID

from untrusted.json_keys import check_unique_keys, may_repeat_a_key

SCHEMA_VERSION = 1
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER is signed 64-bit
#: ``max_payload_bytes``, the largest encoded envelope an end sends or reads: its default, and
#: the range the hub's and the shop's configs accept. Every message of a fixed shape (state,
#: stock snapshot, ack, resync) is well under the smallest, so only messages whose size grows
#: with their content (outbox events, commands) can ever be refused for their size.
DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024
MIN_MAX_PAYLOAD_BYTES = 1024
MAX_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: The float whose JSON text is the longest (24 characters): an envelope's ``ts`` is written
#: when it is sent, so a size checked before that counts the widest ``ts`` it may carry.
WIDEST_TS = -2.2250738585072014e-308
ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
STORE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
T = TypeVar("T")


def whole(pattern: str) -> str:
    r"""``pattern`` (``^...$``) for msgspec, which checks with ``re.search``: there ``$`` also
    matches before a trailing newline, so 'store-1\n' passed as a store id. ``\Z`` ends it at the
    very end; the ``$`` form stays for JSON Schema and pydantic, which anchor it there."""
    return pattern.removesuffix("$") + r"\Z"


Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
MessageId = Annotated[str, msgspec.Meta(pattern=whole(ULID_PATTERN))]
StoreId = Annotated[str, msgspec.Meta(pattern=whole(STORE_PATTERN))]
MessageType = Annotated[str, msgspec.Meta(pattern=whole(TYPE_PATTERN), max_length=64)]


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One message. ``data`` stays raw JSON until the type's schema decodes it."""

    id: MessageId
    store: StoreId
    epoch: Seq
    seq: Seq
    type: MessageType
    ts: float
    schema: Annotated[int, msgspec.Meta(ge=1)]
    data: msgspec.Raw
    prev: Seq | None = None


class ProtocolError(Exception):
    """A message that cannot be applied; ``reason`` is one of the dead-letter reason codes:
    ``too_large``, ``malformed_json``, ``invalid_envelope``, ``unsupported_schema``,
    ``invalid_data``, ``unknown_type``, ``wrong_store``, ``unexpected_topic``,
    ``implausible_seq``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class TooLarge(ProtocolError):
    """A payload over ``max_payload_bytes`` (reason ``too_large``), received or about to be
    sent; ``size`` and ``limit`` in bytes, for a message a person can act on."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__("too_large", f"{what} of {size} bytes exceeds {limit} "
                         "(max_payload_bytes)")
        self.what = what
        self.size = size
        self.limit = limit


def within_limit(payload: bytes, max_bytes: int, what: str = "payload") -> bytes:
    """``payload`` unchanged when it is at most ``max_bytes`` long, else :class:`TooLarge`.

    The one size rule of protocol v1, for both directions: a receiver dead-letters a larger
    message unread (:func:`decode`), and a sender refuses to publish one. Why the sender too: a
    message over the receiver's limit can only become a dead letter there, and one over twice
    it plus 64 KiB the broker drops without a trace (MQTT 5 Maximum Packet Size, mosquitto's
    ``max_packet_size``), so a shop re-sent such a command for ever. Both ends take their own
    ``max_payload_bytes`` as the other's: the chain sets one value everywhere."""
    if len(payload) > max_bytes:
        raise TooLarge(what, len(payload), max_bytes)
    return payload


def new_id() -> str:
    """A fresh message id (ULID: sortable by creation time, unique without coordination)."""
    return str(ULID())


def build(
    *,
    store: str,
    epoch: int,
    seq: int,
    type_: str,
    ts: float,
    data: msgspec.Struct | dict[str, Any] | bytes,
    msg_id: str | None = None,
    prev: int | None = None,
) -> bytes:
    """Encode an envelope; ``data`` given as bytes is already-encoded JSON (outbox rows are)."""
    raw = data if isinstance(data, bytes) else msgspec.json.encode(data)
    return msgspec.json.encode(
        Envelope(
            id=msg_id or new_id(),
            store=store,
            epoch=epoch,
            seq=seq,
            type=type_,
            ts=ts,
            schema=SCHEMA_VERSION,
            data=msgspec.Raw(raw),
            prev=prev,
        )
    )


_ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)


def decode(payload: bytes, max_bytes: int) -> Envelope:
    """Check size, JSON, envelope schema (a key given twice in it included) and schema
    version, in that order. A key given twice in ``data`` is :func:`decode_data`'s to refuse,
    as ``invalid_data``: an event whose envelope is good is still recorded, a command still
    answered (rejected)."""
    within_limit(payload, max_bytes)
    try:
        envelope = _ENVELOPE_DECODER.decode(payload)
    except msgspec.ValidationError as exc:
        raise ProtocolError("invalid_envelope", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("malformed_json", str(exc)) from None
    if key := _repeated_envelope_key(payload, bytes(envelope.data)):
        raise ProtocolError("invalid_envelope",
                            f"the key {json.dumps(key)} appears twice in the envelope")
    if envelope.schema != SCHEMA_VERSION:
        raise ProtocolError(
            "unsupported_schema",
            f"schema version {envelope.schema}; this receiver reads version {SCHEMA_VERSION}",
        )
    return envelope


def _repeated_envelope_key(payload: bytes, data: bytes) -> str | None:
    """The key the envelope's own object gives twice, or None. msgspec keeps the last of two
    (``"seq": 5, "seq": 500`` is seq 500), where a reader that takes the first (another
    broker client, the shop's tools) would apply another message.

    Why the data is cut out first: every event repeats ``seq`` and ``ts`` in it, so the quick
    look (:func:`may_repeat_a_key`) over the whole payload never ruled a repeat out, and the
    exact parse cost four times the decoding. Cutting out the first occurrence of the data's
    text leaves the envelope's keys whole: no key of it can lie inside a JSON value written
    before the data, save a first ``data`` value, whose key then shows ``data`` repeated."""
    if not may_repeat_a_key(payload.replace(data, b"", 1)):
        return None
    repeats: list[str | None] = []  # per object, innermost first: the envelope's comes last

    def note(pairs: list[tuple[str, Any]]) -> None:
        keys = [key for key, _ in pairs]
        repeats.append(next((key for i, key in enumerate(keys) if key in keys[:i]), None))

    try:
        json.loads(payload, object_pairs_hook=note)
    except (ValueError, RecursionError):  # JSON msgspec reads and Python's json does not
        return None  # (a number of over 4300 digits, deep nesting): data for decode_data
    return repeats[-1] if repeats else None


def decode_data(envelope: Envelope, schema: type[T]) -> T:
    """The envelope's ``data`` decoded into ``schema``; a key given twice in one of its objects
    is refused (msgspec would keep the last: ``"qty": 1, "qty": 100`` read as 100)."""
    try:
        check_unique_keys(bytes(envelope.data))
        return msgspec.json.decode(envelope.data, type=schema)
    except (ValueError, RecursionError) as exc:  # msgspec's DecodeError, DuplicateKeyError, or
        # what Python's json refuses of the JSON msgspec took (a number of over 4300 digits)
        raise ProtocolError("invalid_data", f"{envelope.type}: {exc}") from None
