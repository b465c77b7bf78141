"""The shop's end of the link: consumes every store's events, acks them, and sends commands.

* Events arrive through an MQTT 5 shared subscription (several shop instances split the load);
  state and snapshot topics are plain subscriptions, because brokers do not deliver retained
  messages to shared ones.
* Messages are validated on arrival (size, JSON, envelope, store, schema) and applied in batches,
  one transaction each. Anything invalid becomes a dead letter with its reason and a metric.
* After a batch commits, the shop acks each store's watermark (coalesced, at most every
  ``ack_interval_s``); the store deletes outbox rows only on these acks.
* Commands are stored first and sent after; they stay pending until the store's result event
  arrives, and are sent again on the store's birth and every ``resend_after_s`` while it is online
  (the store applies each command id once). On every (re)connect the shop asks each known store
  to resync from its watermark, so nothing waits for the store's ack timeout.
* Nothing is published over ``max_payload_bytes``: a store would only dead-letter it, or the
  broker drop it, and the command would be sent again for ever. The API refuses such a command
  where it is made (``ShopStore._add_command``); one already pending (the limit lowered since)
  is rejected and dead-lettered here when its turn comes, once, and the rest go on in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sync import inbound, messages
from sync.envelope import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    ProtocolError,
    TooLarge,
    build,
    decode_data,
    within_limit,
)
from sync.metrics import SyncMetrics
from sync.mqtt_client import BrokerSettings, Incoming, MqttClient, Outgoing, Session
from sync.shop.store import (
    BatchOutcome,
    DeadItem,
    EventItem,
    Item,
    PendingCommand,
    ShopStore,
    SnapshotItem,
    StateItem,
    StockRow,
    too_large_advice,
)
from sync.topics import ShopFilters, StoreTopics, shared
from sync.waiting import Sleep

log = logging.getLogger(__name__)

#: Event types with a schema; any other type is stored as received (never dropped).
EVENT_SCHEMAS: dict[str, type] = {
    messages.MOVEMENT: messages.Movement,
    messages.ORDER_STATUS: messages.OrderStatus,
    messages.COMMAND_RESULT: messages.CommandResult,
    messages.REMINDER: messages.Reminder,
    messages.MEMBER_STATUS: messages.MemberStatus,
}


@dataclass(frozen=True)
class LinkSettings:
    """Behaviour of the shop's link (from ``shop.toml``)."""

    prefix: str = "retail"
    shared_group: str | None = "shop"
    ack_interval_s: float = 0.05
    resend_after_s: float = 10.0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES  # read and sent (the stores' should match)
    batch: int = 500


class ShopLink:
    """Owns the shop's MQTT client and the flow of events into the shop's database."""

    def __init__(self, store: ShopStore, broker: BrokerSettings, settings: LinkSettings, *,
                 clock: Callable[[], float], sleep: Sleep, metrics: SyncMetrics,
                 on_stock: Callable[[list[StockRow], frozenset[str]], None]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.metrics = metrics
        self.on_stock = on_stock
        self.filters = ShopFilters(settings.prefix)
        self.client = MqttClient(broker, on_message=self._received, sleep=sleep,
                                 on_attempt=lambda outcome: metrics.connects.labels(outcome).inc())
        self._queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self._acks_due: dict[str, tuple[int, int]] = {}
        self._acks_sent: dict[str, int] = {}
        self._ack_wanted = asyncio.Event()
        self._resynced: set[str] = set()  # stores asked to resync on this connection
        #: Each store's ``[mqtt] max_payload_bytes`` as its states say (stores from before it
        #: say nothing), and the commands held back for it, logged once.
        self.store_limits: dict[str, int] = {}
        self._held: set[str] = set()
        self.subscribed = asyncio.Event()  # set while connected with subscriptions in place
        self._tasks: list[asyncio.Task[None]] = []
        self.idle = asyncio.Event()  # set whenever everything received so far is applied

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.client.run(self._session), name="shop-mqtt"),
            asyncio.create_task(self._apply_loop(), name="shop-apply"),
        ]

    async def stop(self) -> None:
        session = self.client.session
        if session is not None and not session.closed.is_set():
            await session.disconnect(timeout=2.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- commands -------------------------------------------------------------------------------

    async def send(self, command: PendingCommand) -> bool:
        """Send a stored command now if connected (otherwise it goes on the next chance)."""
        session = self.client.session
        if session is None or session.closed.is_set():
            return False
        try:
            await self._send_commands(session, [command])
        except Exception:  # noqa: BLE001 - it stays pending and goes again later
            log.info("command %s not sent now; it stays pending", command.id)
            return False
        return True

    async def _send_commands(self, session: Session, commands: list[PendingCommand]) -> None:
        sent = []
        recovery_held: set[str] = set()  # stores whose recovery waits on a held-back batch
        for command in commands:
            if command.type == messages.STORE_RECOVER and command.store in recovery_held:
                # behind it, in order: an order's `collected` before its `ready` is skipped
                continue
            topic = StoreTopics(self.settings.prefix, command.store).cmd
            payload = command.payload(self.clock())
            try:
                within_limit(payload, self.settings.max_payload_bytes,
                             f"the {command.type} command")
            except TooLarge as exc:
                await self._refuse(command, topic, payload, exc)
                continue
            if self._over_store_limit(command, len(payload)):
                if command.type == messages.STORE_RECOVER:
                    recovery_held.add(command.store)
                continue
            await session.send(Outgoing(topic, payload))
            self.metrics.sent.labels("command").inc()
            sent.append(command.seq)
        if sent:
            await self.store.write(self.store.mark_sent, sent, self.clock())

    def _over_store_limit(self, command: PendingCommand, size: int) -> bool:
        """True when ``command`` fits the shop's limit but not its store's: it stays pending,
        unsent, rather than go for the store to dead-letter while the shop sends it again for
        ever; it goes once the store's limit is raised. Logged once per command."""
        limit = self.store_limits.get(command.store)
        if limit is None or size <= limit:
            return False
        if command.id not in self._held:
            self._held.add(command.id)
            log.error("command %s (%s for store %s) of %s bytes held back: the store's [mqtt] "
                      "max_payload_bytes is %s, below the shop's sync.max_payload_bytes %s. It "
                      "stays pending until the two match: raise the store's (and the "
                      "broker's) or lower the shop's", command.id, command.type, command.store,
                      size, limit, self.settings.max_payload_bytes)
        return True

    def _heard_store_limit(self, store: str, limit: int | None) -> None:
        """A store's limit from its state: kept, and a difference from the shop's logged once
        a value."""
        if limit is None:  # a hub from before the limit was told (one rolled back, too):
            self.store_limits.pop(store, None)  # its acks must not carry the shop's
            return
        if self.store_limits.get(store) == limit:
            return
        self.store_limits[store] = limit
        own = self.settings.max_payload_bytes
        if limit != own:
            log.warning("store %s has [mqtt] max_payload_bytes %s, the shop's "
                        "sync.max_payload_bytes is %s: give both (and the broker) one value; "
                        "until then nothing over %s goes between them", store, limit, own,
                        min(limit, own))

    async def _refuse(self, command: PendingCommand, topic: str, payload: bytes,
                      error: TooLarge) -> None:
        """A pending command too large to send: rejected and dead-lettered for good (it is
        no longer pending, so this happens, and is logged, once)."""
        reason = (f"too large to send to the store: the {command.type} command is "
                  f"{error.size} bytes, over the {error.limit} bytes a store takes "
                  f"(max_payload_bytes), so it was never delivered; "
                  f"{too_large_advice(command.type)}")
        now = self.clock()
        if await self.store.write(self.store.refuse_command, command.seq, reason,
                                  inbound.letter(topic, payload, error, now), now):
            self.metrics.dead_letters.labels(error.reason).inc()
            log.error("command %s (%s for store %s) rejected unsent: %s bytes, over "
                      "sync.max_payload_bytes %s; kept as a dead letter. Its sender must %s; "
                      "or raise max_payload_bytes at the shop, the broker and every store "
                      "alike", command.id, command.type, command.store, error.size, error.limit,
                      too_large_advice(command.type))

    async def _send_resync(self, session: Session, store: str, epoch: int, after_seq: int,
                           snapshots: bool) -> None:
        """Ask ``store`` to send again what follows ``after_seq`` (and, optionally, snapshots)."""
        data = messages.Resync(after_seq=after_seq, snapshots=snapshots)
        payload = build(store=store, epoch=epoch, seq=0, type_=messages.RESYNC,
                        ts=self.clock(), data=data)
        await session.send(Outgoing(StoreTopics(self.settings.prefix, store).cmd, within_limit(
            payload, self.settings.max_payload_bytes, "resync")))
        self.metrics.sent.labels("resync").inc()
        self.metrics.replays.inc()

    # --- one connection -------------------------------------------------------------------------

    async def _session(self, session: Session) -> None:
        f = self.filters
        codes = await session.subscribe([shared(self.settings.shared_group, f.events), f.state,
                                         f.snapshots])
        if any(code >= 0x80 for code in codes):
            log.error("broker refused the shop's subscriptions %s (check its ACL)", codes)
        self.metrics.connected.set(1)
        self.subscribed.set()
        self._resynced.clear()
        try:
            for store, epoch, watermark in await self.store.read(self.store.store_positions):
                await self._send_resync(session, store, epoch, watermark, snapshots=False)
                self._resynced.add(store)
            await self._send_commands(
                session, await self.store.read(self.store.pending_commands, None, None))
            await asyncio.gather(self._ack_loop(session), self._resend_loop(session))
        finally:
            self.subscribed.clear()
            self.metrics.connected.set(0)

    async def _ack_loop(self, session: Session) -> None:
        self._acks_sent.clear()  # a new connection may follow a store restart: ack again
        self._ack_wanted.set()
        while True:
            await self._ack_wanted.wait()
            self._ack_wanted.clear()
            due = [(store, pos) for store, pos in self._acks_due.items()
                   if pos[1] > self._acks_sent.get(store, -1)]
            for store, (epoch, watermark) in due:
                # only to a store that gave its own limit: an older one refuses the field
                data = messages.Ack(acked_seq=watermark, max_payload_bytes=(
                    self.settings.max_payload_bytes if store in self.store_limits else None))
                payload = build(store=store, epoch=epoch, seq=watermark, type_=messages.ACK,
                                ts=self.clock(), data=data)
                await session.send(Outgoing(StoreTopics(self.settings.prefix, store).ack,
                                            within_limit(payload, self.settings.max_payload_bytes,
                                                         "ack")))
                self._acks_sent[store] = watermark
                self.metrics.sent.labels("ack").inc()
            await self.sleep(self.settings.ack_interval_s)

    async def _resend_loop(self, session: Session) -> None:
        while True:
            await self.sleep(self.settings.resend_after_s / 2)
            due = await self.store.read(self.store.pending_commands, None,
                                        self.clock() - self.settings.resend_after_s)
            await self._send_commands(session, due)

    # --- incoming -------------------------------------------------------------------------------

    def _received(self, message: Incoming) -> None:
        self.idle.clear()
        self._queue.put_nowait(message)

    async def _apply_loop(self) -> None:
        while True:
            if self._queue.empty():
                self.idle.set()
            batch = [await self._queue.get()]
            while len(batch) < self.settings.batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            now = self.clock()
            items = [self._item(message, now) for message in batch]
            try:
                outcome = await self.store.write(self.store.apply_batch, items, now)
            except Exception:
                # Nothing was committed or acked; the stores send it all again (ack timeout).
                log.exception("applying %d messages failed", len(items))
                await self.sleep(1.0)
                continue
            await self._after(outcome)

    def _item(self, message: Incoming, now: float) -> Item:
        try:
            received = inbound.check(self.settings.prefix, message, self.settings.max_payload_bytes)
            env, channel = received.envelope, received.topic.channel
            if channel == "events":
                if env.prev is None:
                    raise ProtocolError("invalid_envelope", "an event must carry 'prev'")
                if env.prev >= env.seq:
                    raise ProtocolError("implausible_seq", f"event seq {env.seq} names prev "
                                        f"{env.prev}: an event follows the one before it")
                schema = EVENT_SCHEMAS.get(env.type)
                if schema is None:
                    return EventItem(env, None, topic=message.topic)
                try:
                    return EventItem(env, decode_data(env, schema), topic=message.topic)
                except ProtocolError as exc:
                    return EventItem(env, None, inbound.dead_letter(message, exc, now),
                                     message.topic)
            if channel == "snapshot" and env.type == messages.SNAPSHOT:
                return SnapshotItem(env, decode_data(env, messages.StockSnapshot), message.topic)
            if channel == "state" and env.type == messages.STATE:
                state = decode_data(env, messages.StoreState)
                if state.acked_seq > state.last_seq:
                    # taken as it was, the watermark jumped to it and the real events after
                    # were ignored as applied
                    raise ProtocolError("implausible_seq", f"state of store {env.store} says "
                                        f"the shop acknowledged seq {state.acked_seq}, past its "
                                        f"last seq {state.last_seq}")
                if state.inherited_seq is not None and state.inherited_seq > state.last_seq:
                    raise ProtocolError("implausible_seq", f"state of store {env.store} says "
                                        f"its run began at seq {state.inherited_seq}, past "
                                        f"its last seq {state.last_seq}")
                if state.state == "online":
                    self._heard_store_limit(env.store, state.max_payload_bytes)
                return StateItem(env, state)
            raise ProtocolError("unexpected_topic", f"{env.type!r} on {message.topic!r}")
        except ProtocolError as exc:
            return DeadItem(inbound.dead_letter(message, exc, now))

    async def _after(self, outcome: BatchOutcome) -> None:
        for reason in outcome.dead:
            self.metrics.dead_letters.labels(reason).inc()
        if outcome.dead:
            log.warning("%d message(s) set aside as dead letters: %s", len(outcome.dead),
                        sorted(set(outcome.dead)))
        self.metrics.duplicates.inc(outcome.duplicates)
        self.metrics.received.labels("event").inc(outcome.applied)
        self.metrics.drift.inc(outcome.drift)
        for store in sorted(outcome.rewound):
            # the shop's only word on it was a drift row: its operators read the log
            log.warning("store %s came back with a shorter history (restored from a backup?): "
                        "its events after the backup are set aside (rewound_events) and handed "
                        "back to it to apply again (store.recover)", store)
        if outcome.stock or outcome.rewound:
            self.on_stock(outcome.stock, frozenset(outcome.rewound))
        for store, position in outcome.acks.items():
            self._acks_due[store] = position
        for store in outcome.stale_runs:
            # its watermark may not move, yet the store must hear of the newer run (an ack
            # carries it) to begin a run above it
            self._acks_sent.pop(store, None)
        if outcome.acks:
            self._ack_wanted.set()
        session = self.client.session
        if session is None or session.closed.is_set():
            return
        for store in outcome.births:
            self._acks_sent.pop(store, None)  # a (re)started store learns our watermark at once
        try:
            for store in outcome.births:
                # A store first seen on this connection may have sent events before we listened.
                snapshots = store in outcome.snapshots_wanted
                if snapshots or store not in self._resynced:
                    epoch, watermark = outcome.acks[store]
                    await self._send_resync(session, store, epoch, watermark, snapshots)
                    self._resynced.add(store)
                await self._send_commands(
                    session, await self.store.read(self.store.pending_commands, store, None))
            for store in outcome.snapshots_wanted.difference(outcome.births):
                # rewound on an event of a newer run, its birth not (yet) heard
                epoch, watermark = outcome.acks[store]
                await self._send_resync(session, store, epoch, watermark, True)
                await self._send_commands(
                    session, await self.store.read(self.store.pending_commands, store, None))
        except Exception:  # noqa: BLE001 - the next connection or resend covers it
            log.info("could not answer a store's birth now; will on the next chance")
