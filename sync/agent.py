"""The hub's end of the link: drains the outbox, applies commands, publishes snapshots and state.

Delivery rules (see docs/sync-protocol.md):

* an outbox row is published only after the transaction that wrote it committed (the drainer
  reads committed rows), at QoS 1, in sequence order, each carrying ``prev`` (the sequence number
  of the row before it) so the shop can find gaps;
* a row is deleted only when the shop's application-level ack covers its ``seq``, never on PUBACK;
* on every (re)connect and when the shop asks, the drainer goes back to the last acked row and
  sends everything after it again (the shop applies each ``(store, seq)`` once, so repeats are
  harmless);
* at most ``send_window`` rows are sent ahead of the shop's acks, so a slow or absent shop never
  makes the broker queue more than it keeps;
* a row whose envelope is over ``max_payload_bytes`` is never published (the shop would only
  dead-letter it, or the broker drop it, and every replay would send it again): it is kept as a
  dead letter once, and the next row sent names the last one sent as its ``prev``, so the shop's
  chain goes on over it and its ack of a later row deletes it;
* when acks stop coming for ``ack_timeout_s``, only the first tenth of the window after the last
  acked row is sent again, and nothing more until an ack moves; each further replay without one
  waits twice as long, up to ``ack_timeout_max_s``. A shop that lost an event gets it back (its
  watermark then jumps over what it holds, and its ack reopens the window), while a stopped shop
  whose broker session lives on is not queued the whole window again every ``ack_timeout_s``.

Commands are applied one at a time in arrival order by the store (``StoreLink.execute``), which
records the command id in the same transaction as the effect and the result event. A command id
seen before is applied no more; it counts in ``hub_sync_duplicates_total``, and the store sends
its first result again when the shop had acknowledged it (a shop restored from a backup).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from prometheus_client import CollectorRegistry

from sync import inbound, messages
from sync.backoff import Backoff
from sync.envelope import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MIN_MAX_PAYLOAD_BYTES,
    ProtocolError,
    TooLarge,
    build,
    decode_data,
    within_limit,
)
from sync.failures import FailureLog
from sync.metrics import SyncMetrics
from sync.mqtt_client import BrokerSettings, Incoming, MqttClient, Outgoing, Session
from sync.ports import CommandIn, OutboxRow, StockLevel, StoreLink
from sync.topics import StoreTopics, parse_topic
from sync.waiting import Sleep, wait_or_sleep

log = logging.getLogger(__name__)

INBOX_LIMIT = 10_000  # commands waiting to be applied; beyond it the shop's resend covers them
REPLAY_SHARE = 10  # an ack timeout sends again 1/REPLAY_SHARE of the window (see _replay)
ACK_RETRY_S = 1.0  # recording an ack failed: the first wait before trying again (see _record_acks)
ACK_RETRY_MAX_S = 30.0  # ... doubling up to this
#: How far ahead of the hub's clock (epochs are Unix milliseconds) a run named by the shop may
#: be. One named 2**63 - 2 had been adopted, and the next start overflowed SQLite's integer:
#: the hub could not start again.
EPOCH_AHEAD_MS = 366 * 86_400_000


@dataclass(frozen=True)
class AgentSettings:
    """Behaviour of the hub's sync agent (built from the hub's ``[mqtt]`` config)."""

    store: str
    prefix: str = "retail"
    send_window: int = 1000
    batch: int = 500
    ack_timeout_s: float = 15.0
    ack_timeout_max_s: float = 300.0
    snapshot_interval_s: float = 1.0
    full_snapshot_interval_s: float = 300.0
    poll_interval_s: float = 2.0
    #: The largest envelope read or sent (the shop's ``sync.max_payload_bytes`` should match;
    #: its acks say it, see ``_over_shop_limit``).
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    #: Other stores whose retained stock snapshots this store follows (the kiosk's "available
    #: at store X" when a product is out of stock here).
    nearby_stores: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Below it a birth, will or snapshot could be refused for its size, and with it the
        # connection or the snapshot task, again on every try.
        if self.max_payload_bytes < MIN_MAX_PAYLOAD_BYTES:
            raise ValueError(f"max_payload_bytes {self.max_payload_bytes} is below "
                             f"{MIN_MAX_PAYLOAD_BYTES}, the least every message fits in")


class SyncAgent:
    """Owns the MQTT client of one store and everything that flows through it."""

    def __init__(self, link: StoreLink, broker: BrokerSettings, settings: AgentSettings, *,
                 clock: Callable[[], float], monotonic: Callable[[], float], sleep: Sleep,
                 registry: CollectorRegistry | None = None) -> None:
        self.link = link
        self.settings = settings
        self.topics = StoreTopics(settings.prefix, settings.store)
        self.clock = clock  # wall time, for what is recorded and sent
        self.monotonic = monotonic  # for intervals: an NTP step back must not pause resends
        self.sleep = sleep
        self.metrics = SyncMetrics(registry or CollectorRegistry(), "hub")
        self.client = MqttClient(broker, on_message=self._received, sleep=sleep,
                                 will=self._will,
                                 on_attempt=lambda outcome: self.metrics.connects.labels(
                                     outcome).inc())
        self.epoch = 0
        self._will_epoch = 0  # the run named by the will of the newest connection
        self.acked = 0
        self.cursor = 0  # seq of the last row passed in this session (or the acked seq)
        #: seq of the last row sent in this session (or the acked seq): the next event's prev.
        #: Behind ``cursor`` only while the rows after it were too large to send.
        self._chain = 0
        #: Outbox rows refused for their size in this run (above the acked seq): each is
        #: dead-lettered and logged once, not again on every replay.
        self._refused: set[int] = set()
        #: The shop's ``sync.max_payload_bytes`` as its acks say (None: not said, an older
        #: shop), and the outbox row held back for it, logged once.
        self.shop_limit: int | None = None
        self._held = 0
        self._last_seq = 0
        self._inherited = 0  # the last seq when this run began (the store state says it)
        #: The highest seq the shop can hold: written before this run began (perhaps sent by an
        #: earlier one) or sent in this run. An ack above it covers rows never sent.
        self._sendable = 0
        self._generation = 0  # bumped whenever the cursor moves outside the drainer
        self._acking = 0  # acks being recorded: the outbox may change under the cursor
        self._unacked: deque[int] = deque()
        self._last_progress = 0.0
        self._window = settings.send_window  # a replay narrows it until the next ack progress
        self._replay_wait = settings.ack_timeout_s  # doubles per replay without ack progress
        self._ack_target = 0
        self._ack_wanted = asyncio.Event()
        self._work = asyncio.Event()
        self._inbox: asyncio.Queue[tuple[Incoming, ProtocolError | None]] = asyncio.Queue(
            maxsize=INBOX_LIMIT)
        self._full_snapshot = True
        self._snapshot_seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._overtaken: asyncio.Task[None] | None = None  # starting a run above the shop's
        # What keeps failing while the disk is full or read-only, logged once rather than a try.
        self._ack_failures = FailureLog(log, "recording acks", monotonic)
        self._command_failures = FailureLog(log, "applying commands", monotonic)
        self._dead_letter_failures = FailureLog(log, "storing dead letters", monotonic)
        self._overtaken_failures = FailureLog(log, "starting a run above the shop's", monotonic)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin a new epoch and start connecting in the background (the hub never waits)."""
        self.epoch = await self.link.begin_epoch(self.clock())
        position = await self.link.position()
        self.acked, self._last_seq = position.acked_seq, position.last_seq
        self._inherited = position.inherited
        self._sendable = position.last_seq
        self.cursor = self._chain = self.acked
        self._tasks = [  # the connection first: stop() ends it last, after the goodbye
            asyncio.create_task(self.client.run(self._session), name="sync-mqtt"),
            asyncio.create_task(self._apply_commands(), name="sync-commands"),
            asyncio.create_task(self._record_acks(), name="sync-acks"),
        ]
        log.info("sync agent for store %s started, epoch %s, acked %s of %s", self.settings.store,
                 self.epoch, self.acked, self._last_seq)

    async def stop(self) -> None:
        """Stop what could still publish a state (the commands task answers a resync with
        "online", a run above the shop's says goodbye and connects again), then say goodbye
        (retained offline state, then DISCONNECT) and close the connection. Stopped after
        the goodbye, an answer sent meanwhile left the store online at the shop for good."""
        connection, workers = self._tasks[:1], self._tasks[1:]
        await _cancel([*workers, *([self._overtaken] if self._overtaken else [])])
        session = self.client.session
        if session is not None and not session.closed.is_set():
            await self._goodbye(session)
        await _cancel(connection)
        self._tasks = []

    def wake(self) -> None:
        """New outbox rows were committed: drain now rather than at the next poll."""
        self._work.set()

    def refresh_snapshots(self) -> None:
        """Publish every SKU's snapshot at the next interval (e.g. products were added)."""
        self._full_snapshot = True

    # --- one connection -------------------------------------------------------------------------

    async def _session(self, session: Session) -> None:
        if self._will_epoch != self.epoch:
            # A new run began while this connection was being made: its will names the old one.
            await self._goodbye(session)
            return
        nearby = [StoreTopics(self.settings.prefix, store).snapshot("+")
                  for store in self.settings.nearby_stores]
        codes = await session.subscribe([self.topics.cmd, self.topics.ack, *nearby])
        if any(code >= 0x80 for code in codes):
            log.error("broker refused the store's subscriptions %s (check its ACL)", codes)
        position = await self.link.position()
        self.acked = max(self.acked, position.acked_seq)
        self._last_seq = position.last_seq
        self._rewind()
        await session.send(self._state("online"))
        self._full_snapshot = True
        self.metrics.connected.set(1)
        try:
            await asyncio.gather(self._drain(session), self._publish_snapshots(session))
        finally:
            self.metrics.connected.set(0)

    def _will(self) -> Outgoing:
        """The will of a connection about to be made, naming the run of this moment (MQTT fixes
        a will for the life of its connection; see ``_goodbye``)."""
        self._will_epoch = self.epoch
        return self._state("offline")

    async def _goodbye(self, session: Session) -> None:
        """Retained offline state of the current run, then DISCONNECT, which makes the broker
        drop this connection's will instead of publishing it. Also how a connection whose will
        names an older run ends: the shop ignores states of a run older than one it knows, so
        such a will, published after a crash, would leave the store online there for good. The
        next connection registers a will of the current run; until then the state says offline,
        so a crash in between cannot leave the store online either."""
        with contextlib.suppress(Exception):  # the connection is ending either way
            await session.send_confirmed(self._state("offline"), timeout=2.0)
        with contextlib.suppress(Exception):
            await session.disconnect(timeout=2.0)

    def _state(self, state: str) -> Outgoing:
        data = messages.StoreState(state=state, epoch=self.epoch,  # type: ignore[arg-type]
                                   last_seq=self._last_seq, acked_seq=self.acked,
                                   max_payload_bytes=self.settings.max_payload_bytes,
                                   inherited_seq=min(self._inherited, self._last_seq))
        payload = build(store=self.settings.store, epoch=self.epoch, seq=self._last_seq,
                        type_=messages.STATE, ts=self.clock(), data=data)
        return Outgoing(self.topics.state, within_limit(
            payload, self.settings.max_payload_bytes, f"{state} state"), retain=True)

    # --- outbox ---------------------------------------------------------------------------------

    def _rewind(self) -> None:
        """Send everything after the last acked row again."""
        self.cursor = self._chain = self.acked
        self._unacked.clear()
        self._generation += 1
        self._last_progress = self.monotonic()

    async def _drain(self, session: Session) -> None:
        s = self.settings
        while True:
            if self._unacked and self.monotonic() - self._last_progress > self._replay_wait:
                self._replay()
            self._work.clear()
            room = max(0, self._window - len(self._unacked))
            # Taken before the read: an ack or rewind while it runs invalidates these rows' prev.
            generation = self._generation
            rows = await self.link.outbox_after(self.cursor, min(s.batch, room)) if room else []
            if not rows:
                await wait_or_sleep(self._work, self.sleep, s.poll_interval_s)
                continue
            if self._acking:
                # An ack was deleting rows while they were read: the first row after the gap
                # would carry the old cursor as its prev, a link the shop's chain never makes
                # (found on a starved machine: the shop's watermark stuck for good). Read again
                # once the ack has moved the cursor.
                await wait_or_sleep(self._work, self.sleep, s.poll_interval_s)
                continue
            held = False
            for row in rows:
                if generation != self._generation:
                    break  # an ack or a rewind moved the cursor: read again from there
                if row.seq <= self.cursor:
                    continue
                payload = build(store=s.store, epoch=self.epoch, seq=row.seq, type_=row.type,
                                ts=row.ts, data=row.data.encode(), msg_id=row.msg_id,
                                prev=self._chain)
                topic = self.topics.event(row.type)
                if self._over_shop_limit(row, len(payload)):
                    held = True
                    break
                try:
                    within_limit(payload, s.max_payload_bytes, f"{row.type} event")
                except TooLarge as exc:
                    await self._refuse(row, topic, payload, exc)
                    if generation != self._generation:
                        break
                    self.cursor = row.seq  # passed over: the next row's prev stays _chain
                    self._last_seq = max(self._last_seq, row.seq)
                    continue
                await session.send(Outgoing(topic, payload))
                if generation != self._generation:
                    break
                if not self._unacked:
                    self._last_progress = self.monotonic()
                self._unacked.append(row.seq)
                self.cursor = self._chain = row.seq
                self._last_seq = max(self._last_seq, row.seq)
                self._sendable = max(self._sendable, row.seq)
                self.metrics.sent.labels(topic.rsplit("/", 1)[1]).inc()
            if held:  # until the shop's limit is raised (its acks say so) or the hub's lowered
                await wait_or_sleep(self._work, self.sleep, s.poll_interval_s)

    def _over_shop_limit(self, row: OutboxRow, size: int) -> bool:
        """True when ``row`` fits this hub's limit but not the shop's: it waits, in order,
        rather than be sent for the shop to dead-letter (the shop's chain would stop there and
        the window go again for ever). Logged once per row, naming the settings."""
        limit = self.shop_limit
        if limit is None or size <= limit or size > self.settings.max_payload_bytes:
            return False
        if self._held != row.seq:
            self._held = row.seq
            log.error("outbox event %s (seq %s) of %s bytes held back: the shop's "
                      "sync.max_payload_bytes is %s, below this hub's [mqtt] max_payload_bytes "
                      "%s. Nothing after it is sent until the two match: raise the shop's "
                      "(and the broker's, `retail-hub broker config --max-payload-bytes`) or "
                      "lower the hub's", row.type, row.seq, size, self.shop_limit,
                      self.settings.max_payload_bytes)
        return True

    def _heard_shop_limit(self, limit: int | None) -> None:
        """The shop's limit from an ack: kept, and a difference from the hub's logged once a
        value."""
        if limit is None or limit == self.shop_limit:
            return
        self.shop_limit = limit
        own = self.settings.max_payload_bytes
        if limit != own:
            log.warning("the shop's sync.max_payload_bytes is %s, this hub's [mqtt] "
                        "max_payload_bytes %s: give both (and the broker) one value; until "
                        "then the hub sends no event over %s", limit, own, min(limit, own))
        self._work.set()

    async def _refuse(self, row: OutboxRow, topic: str, payload: bytes, error: TooLarge) -> None:
        """``row`` is too large to publish: keep it as a dead letter and say so, once a run.

        It stays in the outbox (rows go only on the shop's ack, which deletes it with the first
        later row the shop acks), marked refused so that it no longer counts as waiting to be
        sent (``hub_sync_outbox_pending``), and every rewind meets it again; ``_refused`` keeps
        those from logging and recording it again. A dead letter that cannot be stored (the
        disk full) is not tried again: the log line is the record then."""
        if row.seq in self._refused:
            return
        self._refused.add(row.seq)
        self.metrics.dead_letters.labels(error.reason).inc()
        log.error("outbox event %s (seq %s, %s) not sent: %s bytes, over max_payload_bytes %s "
                  "that the shop and the broker take; kept as a dead letter, the events after "
                  "it go on. Split what makes such events, or raise max_payload_bytes at the "
                  "shop, the broker and every store alike", row.type, row.seq, row.msg_id,
                  error.size, error.limit)
        try:
            await self.link.set_aside(row.seq, inbound.letter(topic, payload, error, self.clock()))
        except Exception as failure:
            self._dead_letter_failures.failed(failure, "could not store a dead letter")
        else:
            self._dead_letter_failures.succeeded()

    def _replay(self) -> None:
        """No ack for the replay wait: send the first events after the ack again, and no more.

        A shop missing an event holds its watermark before it however much follows, so those
        first events fill its gap; its ack then reopens the window. A shop that stopped (its
        broker session alive) gets only these again, ever more rarely, instead of the whole
        window every ack timeout: the broker would queue it window upon window."""
        s = self.settings
        log.info("no ack for %.0f s: sending again from seq %s", self._replay_wait, self.acked)
        self.metrics.replays.inc()
        self._rewind()
        self._window = max(1, s.send_window // REPLAY_SHARE)
        self._replay_wait = min(self._replay_wait * 2, max(s.ack_timeout_max_s, s.ack_timeout_s))

    def _reopen(self) -> None:
        """The shop is listening (its ack moved, or it asked for a resync): whole window, first
        replay wait."""
        self._window = self.settings.send_window
        self._replay_wait = self.settings.ack_timeout_s

    def _check_ack(self, acked_seq: int, epoch: int) -> None:
        """Refuse an ack (or a resync's watermark) that cannot be true, before it deletes or
        moves anything: a run far ahead of this hub's clock, or rows of this run never sent.
        Capped to the rows written instead, a resync "from" seq 10**12 had deleted 50 movements
        the shop never had, without a word."""
        ceiling = max(self.epoch, int(self.clock() * 1000)) + EPOCH_AHEAD_MS
        if epoch > ceiling:
            raise ProtocolError(
                "invalid_data", f"names run {epoch} of this store, more than a year ahead of "
                f"its clock (run {self.epoch} now): not a run it began; nothing was changed")
        if epoch == self.epoch and acked_seq > self._sendable:
            raise ProtocolError(
                "invalid_data", f"acknowledges seq {acked_seq}, but this store has sent only up "
                f"to seq {self._sendable}: the shop cannot hold it; nothing was deleted")

    def _ack_received(self, acked_seq: int, epoch: int) -> None:
        if self.epoch < epoch < MAX_SEQ and self._overtaken is None:
            self._overtaken = asyncio.create_task(self._start_above(epoch), name="sync-epoch")
        if epoch != self.epoch:
            log.debug("ignoring an ack for epoch %s (now %s)", epoch, self.epoch)
            return
        if acked_seq > self._ack_target:
            self._ack_target = acked_seq
            self._ack_wanted.set()

    async def _start_above(self, seen: int) -> None:
        """The shop acknowledges a run newer than this one. The epoch comes from the clock, so a
        clock running behind (a Pi without a battery clock before NTP) after a restore starts a
        run the shop takes for an old one: it ignores the birth, keeps its longer history and
        acks in its run, and the outbox stalls. Begin a run above it, and reconnect so that the
        will names it too; the new connection's birth announces it."""
        try:
            log.warning("the shop acknowledges run %s, newer than this run %s (is the clock "
                        "behind?): starting a run above it", seen, self.epoch)
            self.epoch = await self.link.begin_epoch(self.clock(), above=seen)
            self._inherited = (await self.link.position()).inherited
            self._overtaken_failures.succeeded()
            self._rewind()
            session = self.client.session
            if session is not None and not session.closed.is_set():
                await self._goodbye(session)
        except Exception as exc:  # the next such ack tries again
            self._overtaken_failures.failed(exc, "could not start a run above the shop's")
        finally:
            self._overtaken = None

    async def _record_acks(self) -> None:
        """Apply the newest ack seen (acks coalesce: only the highest matters).

        When recording fails (the disk full or read-only) the next try waits ``ACK_RETRY_S``,
        doubling up to ``ACK_RETRY_MAX_S`` while it goes on failing, and starting again at the
        first success. An ack that comes during a wait does not end it (the shop acks every
        ``ack_interval_s``: that would be a try each time); the try after the wait takes the
        newest ack, so once writing works again an ack is recorded within the wait under way."""
        retry = Backoff(ACK_RETRY_S, ACK_RETRY_MAX_S, random=lambda: 1.0)  # one disk: no jitter
        while True:
            await self._ack_wanted.wait()
            self._ack_wanted.clear()
            target = self._ack_target
            try:
                await self._record_ack(target)
            except Exception as exc:
                self._ack_failures.failed(
                    exc, "could not record the shop's ack of seq %s; will retry", target)
                await self.sleep(retry.next())
                self._ack_wanted.set()
            else:
                self._ack_failures.succeeded()
                retry.reset()

    async def _record_ack(self, target: int) -> None:
        """Record that the shop holds everything up to ``target``: its outbox rows go, and the
        window moves on past it."""
        if target <= self.acked:
            return
        self._acking += 1
        try:
            acked = await self.link.acknowledge(target)
        finally:
            self._acking -= 1
            self._generation += 1  # a read that overlapped it is read again (see _drain)
            self._work.set()
        if acked <= self.acked:
            return
        self.acked = acked
        self._last_progress = self.monotonic()
        self._reopen()
        while self._unacked and self._unacked[0] <= acked:
            self._unacked.popleft()
        self._refused = {seq for seq in self._refused if seq > acked}  # deleted with the ack
        # The shop's chain has reached ``acked``: the next event follows it (it may have held
        # rows passed over here since, sent by a run whose limit was higher).
        self._chain = max(self._chain, acked)
        if acked > self.cursor:
            self.cursor = acked
            self._generation += 1
        self._work.set()

    # --- snapshots ------------------------------------------------------------------------------

    async def _publish_snapshots(self, session: Session) -> None:
        """Retained per-SKU stock, republished for SKUs that moved (coalesced per interval), and
        for every SKU now and then, so products that never moved appear and the shop can check
        its whole view for drift.

        A full pass goes half a send window per ``snapshot_interval_s``, beside each interval's
        moved SKUs: a store of 10,000 products sent all at once overflowed the broker's queue
        for the shop (mosquitto keeps 1,000 per client), which dropped the events among them,
        and the shop waited an ack timeout for them each time. The pass is read whole at its
        start; a SKU that moves during it is sent as moved and left out of the rest."""
        last_full = self.monotonic()
        pace = max(1, self.settings.send_window // 2)
        rest: list[StockLevel] = []  # what a full pass has still to send
        while True:
            if self.monotonic() - last_full >= self.settings.full_snapshot_interval_s:
                self._full_snapshot = True
            if self._full_snapshot:
                self._full_snapshot = False
                last_full = self.monotonic()
                rest = await self.link.stock_since(None)
                moved: list[StockLevel] = []
                # later moves have higher seqs: the pass's read is where "moved" starts
                self._snapshot_seq = max([self._snapshot_seq, *(level.seq for level in rest)])
            else:
                moved = await self.link.stock_since(self._snapshot_seq)
            if moved and rest:
                fresh = {level.sku for level in moved}
                rest = [level for level in rest if level.sku not in fresh]
            room = max(0, pace - len(moved))
            levels, rest = moved + rest[:room], rest[room:]
            for level in levels:
                data = messages.StockSnapshot(sku=level.sku, on_hand=level.on_hand,
                                              reserved=level.reserved, available=level.available,
                                              seq=level.seq)
                payload = build(store=self.settings.store, epoch=self.epoch, seq=level.seq,
                                type_=messages.SNAPSHOT, ts=self.clock(), data=data)
                await session.send(Outgoing(self.topics.snapshot(level.sku), within_limit(
                    payload, self.settings.max_payload_bytes, "stock snapshot"), retain=True))
                self._snapshot_seq = max(self._snapshot_seq, level.seq)
            if levels:
                self.metrics.sent.labels("snapshot").inc(len(levels))
            await self.sleep(self.settings.snapshot_interval_s)

    # --- incoming -------------------------------------------------------------------------------

    def _received(self, message: Incoming) -> None:
        """Called by the client for every message; acks are handled here, commands queued."""
        if message.topic == self.topics.ack:
            try:
                received = inbound.check(self.settings.prefix, message,
                                         self.settings.max_payload_bytes)
                if received.envelope.type != messages.ACK:
                    raise ProtocolError("unknown_type", f"{received.envelope.type!r} on ack topic")
                ack = decode_data(received.envelope, messages.Ack)
                self._check_ack(ack.acked_seq, received.envelope.epoch)
            except ProtocolError as exc:
                self._queue(message, exc)
                return
            self.metrics.received.labels(messages.ACK).inc()
            self._heard_shop_limit(ack.max_payload_bytes)
            self._ack_received(ack.acked_seq, received.envelope.epoch)
            return
        parsed = parse_topic(self.settings.prefix, message.topic)
        if parsed is not None and parsed.channel == "snapshot":
            self._nearby_snapshot(message)
            return
        self._queue(message)

    def _nearby_snapshot(self, message: Incoming) -> None:
        """Another store's retained stock snapshot: checked like any message, then handed to
        the store (in memory only); a bad one becomes a dead letter."""
        try:
            received = inbound.check(self.settings.prefix, message,
                                     self.settings.max_payload_bytes)
            env = received.envelope
            if env.store not in self.settings.nearby_stores or env.type != messages.SNAPSHOT:
                raise ProtocolError("unexpected_topic",
                                    f"{env.type!r} of store {env.store!r} on {message.topic!r}")
            snapshot = decode_data(env, messages.StockSnapshot)
        except ProtocolError as exc:
            self._queue(message, exc)
            return
        self.link.nearby_stock(env.store, StockLevel(snapshot.sku, snapshot.on_hand,
                                                     snapshot.reserved, snapshot.available,
                                                     snapshot.seq))

    def _queue(self, message: Incoming, error: ProtocolError | None = None) -> None:
        try:
            self._inbox.put_nowait((message, error))
        except asyncio.QueueFull:
            log.warning("command inbox full; dropped a message (the shop sends it again)")

    async def _apply_commands(self) -> None:
        while True:
            message, error = await self._inbox.get()
            try:
                if error is not None:
                    raise error
                await self._apply(message)
            except ProtocolError as exc:
                self.metrics.dead_letters.labels(exc.reason).inc()
                log.warning("dead letter on %s: %s", message.topic, exc)
                try:
                    await self.link.dead_letter(inbound.dead_letter(message, exc, self.clock()))
                except Exception as failure:
                    self._dead_letter_failures.failed(failure, "could not store a dead letter")
                else:
                    self._dead_letter_failures.succeeded()
            except Exception as exc:
                self._command_failures.failed(
                    exc, "applying a command failed; the shop will send it again")
            else:
                self._command_failures.succeeded()

    async def _apply(self, message: Incoming) -> None:
        received = inbound.check(self.settings.prefix, message, self.settings.max_payload_bytes)
        env = received.envelope
        if message.topic != self.topics.cmd:
            raise ProtocolError("unexpected_topic", f"not a command topic: {message.topic!r}")
        schema = messages.COMMANDS.get(env.type)
        if schema is None:
            await self.link.reject(env.id, env.type, f"unknown command type {env.type!r}")
            raise ProtocolError("unknown_type", f"unknown command type {env.type!r}")
        try:
            data = decode_data(env, schema)
        except ProtocolError as exc:
            await self.link.reject(env.id, env.type, exc.message)
            raise
        self.metrics.received.labels(env.type).inc()
        if isinstance(data, messages.Resync):
            await self._resync(data, env.epoch)
        outcome = await self.link.execute(CommandIn(env.id, env.type, data, env.ts))
        if outcome.status == "duplicate":
            # Answered before: the store sent its first result again if the shop had
            # acknowledged it (and says so); counted, as a shop sending one id over and over
            # is worth seeing.
            self.metrics.duplicates.inc()
        log.debug("command %s %s: %s", env.type, env.id, outcome)

    async def _resync(self, request: messages.Resync, epoch: int) -> None:
        """The shop asks for everything after ``after_seq`` again (and, optionally, every
        snapshot), then hears where the stream stands.

        ``after_seq`` is the shop's watermark, an ack: it is recorded before the rewind, so the
        replay begins after it and the answer's ``acked_seq`` names it. (Left to the ack task,
        it was recorded after both: the shop was sent again what it had and told an older
        ack.)

        An ``after_seq`` that cannot be true (``_check_ack``) is a dead letter, raised once
        the rest is done: the replay, the snapshots asked for and the answer still go (after
        a restore from a backup the shop's watermark may name rows of the replaced run)."""
        refused = None
        if request.after_seq is not None:
            try:
                self._check_ack(request.after_seq, epoch)
            except ProtocolError as exc:
                refused, request = exc, msgspec.structs.replace(request, after_seq=None)
        if request.after_seq is not None and epoch == self.epoch:
            try:
                await self._record_ack(request.after_seq)
            except Exception as exc:  # the ack task retries it; meanwhile repeats are harmless
                self._ack_failures.failed(
                    exc, "could not record the shop's resync from seq %s now", request.after_seq)
                self._ack_received(request.after_seq, epoch)
            else:
                self._ack_failures.succeeded()
        elif request.after_seq is not None:
            self._ack_received(request.after_seq, epoch)  # ignored, or a run above it begins
        self.metrics.replays.inc()
        self._rewind()
        self._reopen()
        if request.snapshots:
            self._full_snapshot = True
            try:
                count = await self.link.announce_orders()
            except Exception:  # the snapshots and the answer still go; the next resync retries
                log.exception("could not write the orders' status again for the shop")
            else:
                log.info("the shop asked for snapshots: %d order status(es) sent again", count)
        self._work.set()
        session = self.client.session
        if session is not None and not session.closed.is_set():
            # The retained birth may be old: tell the shop where the stream stands now.
            await session.send(self._state("online"))
        if refused is not None:
            raise refused


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
