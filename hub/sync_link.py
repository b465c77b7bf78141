"""The hub's side of sync: implements ``sync.ports.StoreLink`` on the hub's database and services,
and runs the sync agent with the hub (registered in ``FEATURES`` when ``[mqtt] enabled``).

Every command from the shop is applied through the same services staff use (orders, members,
catalogue), inside one transaction that also records the command id in ``sync_inbox`` and writes
the ``command.result`` event to the outbox: a command delivered twice changes nothing, and the
shop always learns what happened to it (again, if it asks after acknowledging the answer).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from pydantic import ValidationError
from ulid import ULID

from hub.catalog import CATALOG_CHANGED
from hub.clock import DAY_S
from hub.db import Database, Transaction
from hub.errors import HubError
from hub.events import Subscription
from hub.inventory import MovementIn
from hub.members import MemberIn
from hub.orders import FINAL_STATES, TRANSITIONS, OrderIn
from hub.outbox import OUTBOX_WRITTEN, enqueue
from hub.reminders import record_recovered
from sync import messages
from sync.agent import AgentSettings, SyncAgent
from sync.ports import CommandIn, DeadLetter, OutboxRow, Outcome, Position, StockLevel
from sync.shop.audit import LedgerEntry

if TYPE_CHECKING:  # services.py lists this module's setup in FEATURES, so it imports us first
    from hub.services import Services

log = logging.getLogger(__name__)
#: Commands whose ``ref`` is an order: answered again, the order's status goes again too.
ORDER_COMMANDS = (messages.ORDER_PLACE, messages.ORDER_CANCEL)


class Effect(NamedTuple):
    """What applying a command did, for its result: the ref and note, and the events a
    store.recover skipped."""

    ref: str | None
    note: str | None
    skipped: list[messages.SkippedEvent] | None = None


class HubStoreLink:
    """The store as the sync agent sees it."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db

    # --- sequence and outbox --------------------------------------------------------------------

    async def begin_epoch(self, now: float, above: int = 0) -> int:
        return await self.db.write(self._begin_epoch, now, above)

    def _begin_epoch(self, now: float, above: int) -> int:
        # Time-based so that a database restored from a backup (which carries an older epoch)
        # still starts an epoch above every one the shop has seen; ``above`` for when the clock
        # was behind and the shop says so.
        with self.db.transaction() as tx:
            old = _state(tx, "epoch")
            epoch = max(old + 1, int(now * 1000), above + 1)
            tx.execute("UPDATE sync_state SET value = ? WHERE key = 'epoch'", (epoch,))
        return epoch

    async def position(self) -> Position:
        return await self.db.read(self._position)

    def _position(self) -> Position:
        conn = self.db.conn().conn
        last = conn.execute("SELECT CAST(value AS INTEGER) FROM store_meta "
                            "WHERE key = 'last_seq'").fetchone()[0]
        acked = conn.execute("SELECT value FROM sync_state WHERE key = 'acked_seq'").fetchone()[0]
        restored = conn.execute("SELECT value FROM sync_state WHERE key = 'restored_at_seq'"
                                ).fetchone()
        return Position(last_seq=int(last), acked_seq=int(acked),
                        restored_at=None if restored is None else int(restored[0]))

    async def outbox_after(self, seq: int, limit: int) -> list[OutboxRow]:
        rows = await self.db.read(self._outbox_after, seq, limit)
        return [OutboxRow(*row) for row in rows]

    def _outbox_after(self, seq: int, limit: int) -> list[tuple[Any, ...]]:
        return self.db.conn().conn.execute(
            "SELECT seq, msg_id, type, data, ts FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()

    async def acknowledge(self, seq: int) -> int:
        return await self.db.write(self._acknowledge, seq)

    def _acknowledge(self, seq: int) -> int:
        with self.db.transaction() as tx:
            last = tx.execute("SELECT CAST(value AS INTEGER) FROM store_meta "
                              "WHERE key = 'last_seq'").fetchone()[0]
            acked = max(_state(tx, "acked_seq"), min(seq, int(last)))
            tx.execute("DELETE FROM outbox WHERE seq <= ?", (acked,))
            tx.execute("UPDATE sync_state SET value = ? WHERE key = 'acked_seq'", (acked,))
            # The shop acknowledges this run (the agent records no other run's acks): it has
            # heard the restore and set the lost history aside; later runs inherit it all.
            tx.execute("DELETE FROM sync_state WHERE key = 'restored_at_seq'")
        return acked

    async def stock_since(self, seq: int | None) -> list[StockLevel]:
        rows = await self.db.read(self._stock_since, seq)
        return [StockLevel(sku, on_hand, reserved, on_hand - reserved, last)
                for sku, on_hand, reserved, last in rows]

    def _stock_since(self, seq: int | None) -> list[tuple[Any, ...]]:
        conn = self.db.conn().conn
        if seq is None:
            return conn.execute(
                "SELECT p.sku, coalesce(s.on_hand, 0), coalesce(s.reserved, 0), "
                "coalesce(s.last_seq, 0) FROM products p LEFT JOIN stock s USING (sku) "
                "ORDER BY p.sku").fetchall()
        return conn.execute("SELECT sku, on_hand, reserved, last_seq FROM stock "
                            "WHERE last_seq > ? ORDER BY last_seq", (seq,)).fetchall()

    # --- commands -------------------------------------------------------------------------------

    async def execute(self, command: CommandIn) -> Outcome:
        return await self.db.write(self._execute, command)

    async def reject(self, command_id: str, command_type: str, reason: str) -> Outcome:
        return await self.db.write(self._refuse, command_id, command_type, reason)

    def _execute(self, command: CommandIn) -> Outcome:
        try:
            with self.db.transaction() as tx:
                again = self._answer_again(tx, command.id)
                if again is not None:
                    return again
                self._warn_if_pruned(command.id, command.type)
                effect = self._apply(command)
                self._record(tx, command.id, command.type, "applied", effect)
                return Outcome("applied", effect.note, effect.ref)
        except HubError as exc:
            return self._refuse(command.id, command.type, exc.message)
        except ValidationError as exc:
            return self._refuse(command.id, command.type, _validation_reason(exc))

    def _refuse(self, command_id: str, command_type: str, reason: str) -> Outcome:
        with self.db.transaction() as tx:
            again = self._answer_again(tx, command_id)
            if again is not None:
                return again
            self._record(tx, command_id, command_type, "rejected", Effect(None, reason))
        return Outcome("rejected", reason)

    def _apply(self, command: CommandIn) -> Effect:
        """Run the command's effect inside the open transaction."""
        svc, data = self.services, command.data
        if isinstance(data, messages.OrderPlace):
            order_in = OrderIn(id=data.id, member=data.member,
                               lines=[{"sku": line.sku, "qty": line.qty} for line in data.lines])
            order, _ = svc.orders.place(order_in, actor="shop")
            return Effect(order.id, None)
        if isinstance(data, messages.OrderCancel):
            if svc.orders.cancel_early(data.id, data.reason or "cancelled by the customer"):
                return Effect(data.id, None)
            return Effect(data.id, "no order with this id is at the store (not arrived yet, "
                          "or refused): should it come, it is cancelled at once")
        if isinstance(data, messages.MemberUpsert):
            svc.members.upsert(MemberIn(id=data.id, display_name=data.display_name,
                                        consent=data.consent, beacon_key=data.beacon_key))
            return Effect(data.id, None)
        if isinstance(data, messages.CatalogUpdate):
            report = svc.catalog.import_rows(list(enumerate(data.products, start=1)),
                                             svc.config.store.images_dir)
            summary = report.to_json()
            note = None
            if summary["rejected"]:
                note = "; ".join(f"row {p['row']}: {', '.join(p['errors'])}"
                                 for p in summary["rejected"])[:1000]
            return Effect(f"{summary['added']} added, {summary['updated']} updated", note)
        if isinstance(data, messages.Resync):
            return Effect(None, None)
        if isinstance(data, messages.MemberAnnounce):
            return Effect(f"{svc.members.announce()} member(s) sent", None)
        if isinstance(data, messages.StoreRecover):
            return self._recover(command.id, data)
        raise AssertionError(f"no handler for {type(data).__name__}")

    def _recover(self, command_id: str, data: messages.StoreRecover) -> Effect:
        """Apply again, in order, the events of a lost history the shop hands back; each
        through the path staff use, so each that changes something is a new event. One the
        store cannot take (a product it lacks, an order step its order's state forbids, a
        type it does not recover) is skipped with a note; the batch never fails for it."""
        tally = _Tally()
        for event in data.events:
            try:
                if event.type == messages.MOVEMENT:
                    tally.add(self._recover_movement(event))
                elif event.type == messages.ORDER_STATUS:
                    tally.add(self._recover_order_step(event))
                elif event.type == messages.REMINDER:
                    tally.add(self._recover_reminder(event))
                else:
                    tally.skip(event, "not a type the store recovers")
            except HubError as exc:
                tally.skip(event, exc.message)
            except (ValidationError, msgspec.ValidationError) as exc:
                tally.skip(event, f"data the store cannot take: {exc}"[:200])
        notes = tally.notes()
        log.warning(
            "recovery after a restore (command %s, events %s-%s of run %s): the shop handed "
            "back %d event(s) lost with the history after the backup: %d applied again, %d "
            "already here, %d skipped%s", command_id, data.events[0].seq, data.events[-1].seq,
            data.epoch, len(data.events), tally.applied, tally.already, len(tally.skipped),
            f" ({notes[:500]})" if notes else "")
        return Effect(tally.summary(), notes[:1000] or None, tally.skipped)

    def _recover_movement(self, event: messages.RecoveredEvent) -> bool:
        """A till's or staff's movement again, by its original ``ref`` (one a till has sent
        again, or the backup has, counts once). True: applied.

        A count goes again as the change it made, not as its level: the restored store may
        have sold since it started (before the shop was heard, or a till's journal sent again
        as install-pi.md advises), and the level counted then would wipe those sales out; the
        change keeps every movement on either side of it."""
        m = msgspec.convert(event.data, messages.RecoveredMovement)
        if m.reason not in messages.RECOVERED_REASONS:
            raise HubError(f"a {m.reason} movement follows its order, not recovered itself")
        # without a ref of its own, its old movement id is one: handed back twice, it counts once
        ref = m.ref or f"recovered:{m.movement_id}"
        _, known = self.services.inventory.record(
            MovementIn(sku=m.sku, qty=m.qty, reason=m.reason, ref=ref, note=m.note))
        return not known

    def _recover_order_step(self, event: messages.RecoveredEvent) -> bool:
        """An order's lost step (ready, collected, cancelled, ...) taken again when its order's
        state here allows it. True: applied; False: the order is in that state already, or
        past it (an order the shop placed again is accepted at once, past its lost
        ``pending``): nothing for staff to put right."""
        status = msgspec.convert(event.data, messages.RecoveredOrderStep)
        order = self.services.orders.get(status.id)
        if order.state in _reachable(status.state):
            return False
        if status.state not in TRANSITIONS[order.state]:
            raise HubError(f"order {status.id} is {order.state} here: it cannot become "
                           f"{status.state}")
        self.services.orders.transition(status.id, status.state, status.reason,
                                        actor="recovery")
        return True

    def _recover_reminder(self, event: messages.RecoveredEvent) -> bool:
        """A reminder the member had: recorded as sent, so the visit is not reminded again."""
        r = msgspec.convert(event.data, messages.RecoveredReminder)
        self.services.orders.get(r.order_id)
        with self.db.transaction() as tx:
            return record_recovered(tx, r.order_id, r.member, r.arrived_at, r.zone,
                                    self.services.clock.now())

    def _answer_again(self, tx: Transaction, command_id: str) -> Outcome | None:
        """The outcome of a command applied or refused before (None if its id is not in
        ``sync_inbox``); nothing is applied again.

        Its first ``command.result`` may be gone from the outbox, acknowledged, while the shop
        holds the command pending again: a shop restored from a backup taken before the answer
        came. Left unanswered, it sent the command every ``resend_after_s`` for good, so the
        same result goes again as a new event. While the first is still in the outbox it is on
        its way, and a copy would only add another."""
        row = tx.execute("SELECT type, status, reason, ref, result_seq, answers, skipped FROM "
                         "sync_inbox WHERE command_id = ?", (command_id,)).fetchone()
        if row is None:
            return None
        command_type, status, reason, ref, result_seq, answers, skipped = row
        if tx.execute("SELECT 1 FROM outbox WHERE seq = ?", (result_seq,)).fetchone() is None:
            if command_type in ORDER_COMMANDS and ref is not None:
                # its status events went with the first answer; the order stayed "requested"
                self.services.orders.announce_again(tx, ref)
            effect = Effect(ref, reason, None if skipped is None else msgspec.json.decode(
                skipped, type=list[messages.SkippedEvent]))
            seq = self._send_result(tx, command_id, command_type, status, effect)
            tx.execute("UPDATE sync_inbox SET result_seq = ?, answers = answers + 1 "
                       "WHERE command_id = ?", (seq, command_id))
            # Once per command: a resend that crossed the answer again is no news.
            log.log(logging.INFO if answers == 1 else logging.DEBUG,
                    "command %s (%s) came again though the shop had acknowledged its result "
                    "(%s; a shop restored from a backup?): nothing applied again, the same "
                    "result sent again (seq %s)", command_id, command_type, status, seq)
        return Outcome("duplicate", reason, ref)

    def _warn_if_pruned(self, command_id: str, command_type: str) -> None:
        """A command older than ``sync_inbox_days`` whose id is not in ``sync_inbox`` may have
        been applied and its id pruned since: it is applied as new, as it cannot be told from
        one never seen, but not without a word to the operator."""
        days = self.services.config.retention.sync_inbox_days
        try:
            age_days = (self.services.clock.now() - ULID.from_str(command_id).timestamp) / DAY_S
        except ValueError:  # not a ULID: its age is unknown
            return
        if age_days > days:
            log.warning(
                "command %s (%s) was created %.0f days ago, beyond retention.sync_inbox_days "
                "(%s): if it was applied before, its id has been pruned and it is applied again "
                "now. Check what it touched (its result's ref) at the store and the shop and "
                "correct it by hand; raise sync_inbox_days above the age of the oldest backup "
                "the shop may be restored from.", command_id, command_type, age_days, days)

    def _record(self, tx: Transaction, command_id: str, command_type: str, status: str,
                effect: Effect) -> None:
        """Answer the command and keep the answer (``sync_inbox``) to send again."""
        now = self.services.clock.now()
        seq = self._send_result(tx, command_id, command_type, status, effect)
        skipped = (None if effect.skipped is None
                   else msgspec.json.encode(effect.skipped).decode())
        tx.execute(
            "INSERT INTO sync_inbox (command_id, type, status, reason, ref, result_seq, "
            "received_at, skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (command_id, command_type, status, effect.note, effect.ref, seq, now, skipped),
        )

    def _send_result(self, tx: Transaction, command_id: str, command_type: str, status: str,
                     effect: Effect) -> int:
        """Write the ``command.result`` event to the outbox; returns its seq."""
        result = messages.CommandResult(command_id=command_id, command_type=command_type,
                                        status=status, reason=effect.note,  # type: ignore[arg-type]
                                        ref=effect.ref, skipped=effect.skipped)
        return enqueue(tx, self.services.bus, messages.COMMAND_RESULT,
                       msgspec.to_builtins(result), self.services.clock.now())

    # --- dead letters ---------------------------------------------------------------------------

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self.db.write(self._store_dead_letter, letter)

    def nearby_stock(self, store: str, level: StockLevel) -> None:
        self.services.nearby.update(store, level)

    async def announce_orders(self) -> int:
        return int(await self.db.write(self._announce_orders))

    def _announce_orders(self) -> int:
        """Every open order, and every order finished within ``retention.sync_inbox_days``
        (about as far back as a shop's backup may go), told to the shop again. A shop restored
        from its backup had lost the orders placed after it (404 to the member's app) and the
        steps of the others."""
        since = self.services.clock.now() - self.services.config.retention.sync_inbox_days * DAY_S
        marks = ", ".join("?" * len(FINAL_STATES))
        with self.db.transaction() as tx:
            ids = [row[0] for row in tx.execute(
                f"SELECT id FROM orders WHERE state NOT IN ({marks}) OR updated_at >= ? "
                "ORDER BY created_at", (*FINAL_STATES, since))]
            return sum(self.services.orders.announce_again(tx, order_id) for order_id in ids)

    async def set_aside(self, seq: int, letter: DeadLetter) -> None:
        await self.db.write(self._set_aside, seq, letter)

    def _set_aside(self, seq: int, letter: DeadLetter) -> None:
        with self.db.transaction() as tx:
            self._dead_letter(tx, letter)
            tx.execute("UPDATE outbox SET refused_at = coalesce(refused_at, ?) WHERE seq = ?",
                       (letter.received_at, seq))

    def _store_dead_letter(self, letter: DeadLetter) -> None:
        with self.db.transaction() as tx:
            self._dead_letter(tx, letter)

    @staticmethod
    def _dead_letter(tx: Transaction, letter: DeadLetter) -> None:
        tx.execute(
            "INSERT INTO sync_dead_letters (topic, reason, message, size, payload, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (letter.topic, letter.reason, letter.message, letter.size,
             sqlite3.Binary(letter.payload), letter.received_at),
        )


class HubSync:
    """The running link: the agent, woken by the hub's outbox commits and catalogue changes."""

    def __init__(self, services: Services) -> None:
        cfg = services.config.mqtt
        self.services = services
        self.link = HubStoreLink(services)
        settings = AgentSettings(
            store=services.config.store.id,
            prefix=cfg.topic_prefix,
            send_window=cfg.send_window,
            ack_timeout_s=cfg.ack_timeout_s,
            ack_timeout_max_s=cfg.ack_timeout_max_s,
            snapshot_interval_s=cfg.snapshot_interval_s,
            full_snapshot_interval_s=cfg.full_snapshot_interval_s,
            poll_interval_s=cfg.poll_interval_s,
            max_payload_bytes=cfg.max_payload_bytes,
            nearby_stores=tuple(cfg.nearby_stores),
        )
        broker = cfg.broker_settings(services.config.store.id, cfg.max_payload_bytes)
        self.agent = SyncAgent(self.link, broker, settings,
                               clock=services.clock.now, monotonic=services.clock.monotonic,
                               sleep=services.clock.sleep,
                               registry=services.metrics.registry)
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = self.services.bus.subscribe([OUTBOX_WRITTEN, CATALOG_CHANGED])
        self._task = asyncio.create_task(self._forward(self._subscription), name="sync-wake")
        await self.agent.start()

    async def stop(self) -> None:
        await self.agent.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._subscription is not None:
            self._subscription.close()

    async def _forward(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            if event.type == CATALOG_CHANGED:
                self.agent.refresh_snapshots()
            else:
                self.agent.wake()


def setup(services: Services) -> None:
    """Feature wiring: sync runs only when ``[mqtt] enabled``; otherwise the outbox just waits."""
    if services.config.mqtt.enabled:
        services.sync = HubSync(services)
        services.lifecycle.append(services.sync)


@dataclass
class _Tally:
    """What a store.recover batch did, event by event."""

    applied: int = 0
    already: int = 0
    skipped: list[messages.SkippedEvent] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the same, for people

    def add(self, applied: bool) -> None:
        """One event taken: applied again, or (False) already there."""
        if applied:
            self.applied += 1
        else:
            self.already += 1

    def skip(self, event: messages.RecoveredEvent, why: str) -> None:
        self.skipped.append(messages.SkippedEvent(seq=event.seq, note=why[:500]))
        self.lines.append(f"seq {event.seq} ({event.type}) skipped: {why}")

    def notes(self) -> str:
        """The skip notes in one line (the result's reason, the log)."""
        return "; ".join(self.lines)

    def summary(self) -> str:
        return (f"{self.applied} applied, {self.already} already here, "
                f"{len(self.skipped)} skipped")


def _reachable(state: str) -> set[str]:
    """``state`` and every state an order can go on to from it."""
    seen, todo = {state}, [state]
    while todo:
        for after in TRANSITIONS[todo.pop()]:
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return seen


def _state(tx: Transaction, key: str) -> int:
    return int(tx.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()[0])


def _validation_reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:1000]



def audit_export(db: Database) -> tuple[list[LedgerEntry], dict[str, tuple[int, int]]]:
    """The store's whole ledger and current stock, for ``sync.shop.audit.audit_store``."""
    conn = db.conn().conn
    ledger = [LedgerEntry(*row) for row in conn.execute(
        "SELECT seq, movement_id, sku, qty, reserved_qty FROM stock_ledger ORDER BY seq")]
    stock = {sku: (on_hand, reserved) for sku, on_hand, reserved in conn.execute(
        "SELECT sku, on_hand, reserved FROM stock")}
    return ledger, stock
