"""The topic tree of protocol v1: one subtree per store under a versioned prefix.

::

    {prefix}/v1/{store}/state                 store -> shop  retained birth (online) / will
    {prefix}/v1/{store}/events/{kind}         store -> shop  outbox events
    {prefix}/v1/{store}/snapshot/stock/{sku}  store -> shop  retained per-SKU stock snapshot
    {prefix}/v1/{store}/cmd                   shop -> store  commands
    {prefix}/v1/{store}/ack                   shop -> store  application-level acks

Everything a receiver needs is in the payload (the envelope); the topic only routes, so the
protocol works the same on MQTT 3.1.1 and 5 and behind any broker's ACLs.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1"

#: Outbox message type -> event topic kind. Types not listed still travel, under ``other``.
EVENT_KINDS: dict[str, str] = {
    "stock.movement": "stock",
    "order.status": "order",
    "reminder": "reminder",
    "beacon.health": "beacon",
    "command.result": "result",
    "member.status": "member",
}
OTHER_KIND = "other"


@dataclass(frozen=True)
class StoreTopics:
    """The topics of one store."""

    prefix: str
    store: str

    @property
    def root(self) -> str:
        return f"{self.prefix}/{VERSION}/{self.store}"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def cmd(self) -> str:
        return f"{self.root}/cmd"

    @property
    def ack(self) -> str:
        return f"{self.root}/ack"

    def event(self, message_type: str) -> str:
        """The topic of an outbox message; unknown types go to ``events/other``, never nowhere."""
        return f"{self.root}/events/{EVENT_KINDS.get(message_type, OTHER_KIND)}"

    def snapshot(self, sku: str) -> str:
        return f"{self.root}/snapshot/stock/{sku}"


@dataclass(frozen=True)
class ShopFilters:
    """The subscriptions of the shop service across all stores."""

    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}/{VERSION}/+/events/#"

    @property
    def state(self) -> str:
        return f"{self.prefix}/{VERSION}/+/state"

    @property
    def snapshots(self) -> str:
        return f"{self.prefix}/{VERSION}/+/snapshot/#"


@dataclass(frozen=True)
class ParsedTopic:
    """A topic split into parts; ``channel`` is state, events, snapshot, cmd or ack."""

    store: str
    channel: str
    rest: tuple[str, ...]


def parse_topic(prefix: str, topic: str) -> ParsedTopic | None:
    """Split ``topic``; None when it is not under ``{prefix}/v1/{store}/``."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != prefix or parts[1] != VERSION or not parts[2]:
        return None
    return ParsedTopic(parts[2], parts[3], tuple(parts[4:]))


def shared(group: str | None, topic_filter: str) -> str:
    """``topic_filter`` as an MQTT 5 shared subscription of ``group`` (unchanged without one)."""
    return f"$share/{group}/{topic_filter}" if group else topic_filter
