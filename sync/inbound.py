"""The checks every received message passes before anyone acts on it (both ends use them), and
the dead-letter record of what fails them."""

from __future__ import annotations

from dataclasses import dataclass

from sync import envelope
from sync.envelope import Envelope, ProtocolError
from sync.mqtt_client import Incoming
from sync.ports import DeadLetter
from sync.topics import ParsedTopic, parse_topic

#: Dead letters keep at most this much of the payload: enough to debug, bounded in size.
KEPT_PAYLOAD_BYTES = 4096


@dataclass(frozen=True)
class Received:
    """A message whose topic, size, JSON, envelope and schema version are all valid."""

    topic: ParsedTopic
    envelope: Envelope


def check(prefix: str, message: Incoming, max_bytes: int) -> Received:
    """Validate ``message``; the envelope's store must be the store its topic names, so a
    store can never speak for another even where a broker's ACL is missing."""
    topic = parse_topic(prefix, message.topic)
    if topic is None:
        raise ProtocolError("unexpected_topic", f"{message.topic!r} is not a protocol topic")
    env = envelope.decode(message.payload, max_bytes)
    if env.store != topic.store:
        raise ProtocolError(
            "wrong_store", f"envelope of store {env.store!r} on the topic of {topic.store!r}"
        )
    return Received(topic, env)


def dead_letter(message: Incoming, error: ProtocolError, now: float) -> DeadLetter:
    """The dead-letter record of a refused message (payload truncated)."""
    return letter(message.topic, message.payload, error, now)


def letter(topic: str, payload: bytes, error: ProtocolError, now: float) -> DeadLetter:
    """The dead-letter record of ``payload`` on ``topic``, received or refused for sending (an
    end's own message over ``max_payload_bytes``): the same record, so an operator finds both
    in one table, with the reason, the size and the first ``KEPT_PAYLOAD_BYTES``."""
    return DeadLetter(
        topic=topic,
        reason=error.reason,
        message=error.message[:1000],
        payload=payload[:KEPT_PAYLOAD_BYTES],
        size=len(payload),
        received_at=now,
    )
