"""The link to the online shop over MQTT (used by ``sync``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from hub.config.base import StrictModel
from sync.broker_config import BrokerConnection
from sync.broker_setup import TOPIC_PREFIX_PATTERN
from sync.envelope import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_MAX_PAYLOAD_BYTES,
    MIN_MAX_PAYLOAD_BYTES,
    STORE_PATTERN,
)


class MqttConfig(StrictModel, BrokerConnection):
    """Broker connection and sync behaviour. Disabled by default so a store without a broker still
    runs; the outbox keeps everything until a broker appears. The client id is the store id."""

    enabled: bool = Field(default=False,
                          description="Connect to the broker and sync with the shop.")
    topic_prefix: str = Field(
        default="retail",
        pattern=TOPIC_PREFIX_PATTERN,
        description="First segment of every topic; the protocol version follows it.",
    )
    send_window: int = Field(
        default=1000, ge=1, le=100_000,
        description="Events sent ahead of the shop's acks at most; keeps a slow or absent shop "
        "from making the broker queue more than it keeps.",
    )
    ack_timeout_s: float = Field(
        default=15.0, gt=0, le=3600,
        description="With events unacknowledged and no ack for this long, send the first tenth "
        "of send_window after the last ack again (a shop that lost an event gets it back) and "
        "no more until an ack moves; each further replay without one waits twice as long, up to "
        "ack_timeout_max_s. An ack that moves reopens the whole window.",
    )
    ack_timeout_max_s: float = Field(
        default=300.0, gt=0, le=86_400,
        description="Longest wait between replays while no ack comes (never below "
        "ack_timeout_s: raised to it when only ack_timeout_s is set, refused when the file sets "
        "both the other way round): a stopped shop whose broker session lives on is queued a "
        "tenth of send_window per wait, not a whole window per ack_timeout_s.",
    )
    snapshot_interval_s: float = Field(
        default=1.0, gt=0, le=3600,
        description="Stock snapshots of SKUs that moved are republished at most this often; a "
        "full set goes half of send_window per interval beside them.",
    )
    full_snapshot_interval_s: float = Field(
        default=300.0, gt=0, le=86_400,
        description="Every SKU's snapshot is republished this often, so the shop can check its "
        "whole view for drift and sees products that never moved.",
    )
    poll_interval_s: float = Field(
        default=2.0, gt=0, le=3600,
        description="Check the outbox this often even without a wake-up (rows written by other "
        "processes, such as the CLI, have none).",
    )
    nearby_stores: dict[str, str] = Field(
        default_factory=dict, max_length=20,
        description="Other stores of the chain whose stock the kiosk shows when a product is out "
        "of stock here, as store id = display name (e.g. {\"stockholm-02\" = \"Market "
        "Södermalm\"}). The hub follows their retained stock snapshots on the broker.",
    )
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, ge=MIN_MAX_PAYLOAD_BYTES, le=MAX_MAX_PAYLOAD_BYTES,
        description="Incoming messages larger than this are dead-lettered unread; on MQTT 5 the "
        "broker is asked to deliver none over twice this (plus 64 KiB), so larger ones are "
        "never read at all. Also the largest event the hub sends: a larger one (the limit "
        "lowered since it was written) is dead-lettered here, not sent. Use the shop's "
        "sync.max_payload_bytes and `retail-hub broker config --max-payload-bytes`: the shop "
        "tells its own in its acks, and where they differ the hub logs it and holds back, in "
        "order, an event over the shop's until they match.",
    )

    @model_validator(mode="after")
    def _limits_above_starts(self) -> MqttConfig:
        """A longest wait below the first one, both written in the file, cannot be what was
        meant (which of the two is the typo?), so it is refused. With only one of them written,
        the default of the other gives way: raising ack_timeout_s to 600 s leaves the waits at
        600 s, as the descriptions say."""
        wrong = [
            f"{limit} {getattr(self, limit):g} is below {start} {getattr(self, start):g}"
            for start, limit in (("backoff_initial_s", "backoff_max_s"),
                                 ("ack_timeout_s", "ack_timeout_max_s"))
            if {start, limit} <= self.model_fields_set
            and getattr(self, limit) < getattr(self, start)
        ]
        if wrong:
            raise ValueError(f"{'; '.join(wrong)}: the longest wait cannot be shorter than the "
                             "first; raise the longest or lower the first")
        return self

    @field_validator("nearby_stores")
    @classmethod
    def _store_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for store, name in value.items():
            if not re.fullmatch(STORE_PATTERN, store):
                raise ValueError(f"{store!r} is not a store id (lowercase letters, digits, "
                                 "'-' and '_')")
            if not 0 < len(name) <= 100:
                raise ValueError(f"give {store!r} a display name of 1 to 100 characters")
        return value
