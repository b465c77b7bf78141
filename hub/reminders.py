"""Arrival reminder rules: when a member arrives with an order ready for pickup, the member gets a
reminder (through the shop, via the outbox) and the staff get an alert (on the live feed).

Rules, in order: the member must still consent; one reminder and one staff alert per order per
visit; the member's message is held back (and recorded as held, with why) during quiet hours,
within ``member_min_gap_s`` of the previous one, past ``member_max_per_day``, or past the store's
per-minute cap. The staff alert is not held by those: the member is standing in the shop; it is
held only when the staff were alerted about the same order within ``staff_repeat_after_s`` (an
arrival that flickered: left and arrived again at the door a minute later). Everything is
written in the arrival's transaction, so a reminder is never sent without its record, nor
recorded unsent.

Rate windows are measured on the arrivals' own times (``visit_at``), the presence engine's clock,
so a replayed day is judged as it happened."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from hub.clock import DAY_S, Clock
from hub.config.beacons import RemindersConfig
from hub.db import Database, Transaction
from hub.events import Event, EventBus
from hub.outbox import enqueue

REMINDER = "reminder"  # outbox type (sync.messages.REMINDER) and staff-feed event
STAFF_ALERT = "arrival.alert"  # staff-feed event: a member with a ready order is in the shop


@dataclass(frozen=True)
class Reminder:
    """One recorded decision: a member message or a staff alert, sent or held."""

    id: int
    order_id: str
    member_id: str
    visit_at: float
    kind: str  # "member" | "staff"
    status: str  # "sent" | "held"
    reason: str | None
    zone: str | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class ReminderRules:
    """Evaluates the rules on an arrival, inside the caller's transaction."""

    def __init__(
        self, clock: Clock, bus: EventBus | None, config: RemindersConfig, timezone: str
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.config = config
        self.zone = ZoneInfo(timezone)

    def on_arrival(
        self, tx: Transaction, member_id: str, visit_at: float, zone: str | None
    ) -> list[Reminder]:
        """Decide and record reminders for every ready order of the arriving member."""
        consent = tx.execute("SELECT consent FROM members WHERE id = ?", (member_id,)).fetchone()
        if consent is None or not consent[0]:
            return []
        orders = [
            row[0]
            for row in tx.execute(
                "SELECT id FROM orders WHERE member_id = ? AND state = 'ready' ORDER BY id",
                (member_id,),
            )
        ]
        decided: list[Reminder] = []
        for order_id in orders:
            if tx.execute(
                "SELECT 1 FROM reminders WHERE order_id = ? AND visit_at = ?", (order_id, visit_at)
            ).fetchone():
                continue  # this visit was already handled (a replayed event)
            decided.append(self._staff_alert(tx, order_id, member_id, visit_at, zone))
            decided.append(self._member_reminder(tx, order_id, member_id, visit_at, zone))
        return decided

    def _staff_alert(
        self, tx: Transaction, order_id: str, member_id: str, visit_at: float, zone: str | None
    ) -> Reminder:
        last = tx.execute(
            "SELECT max(visit_at) FROM reminders WHERE order_id = ? AND kind = 'staff' "
            "AND status = 'sent'",
            (order_id,),
        ).fetchone()[0]
        if last is not None and abs(visit_at - last) < self.config.staff_repeat_after_s:
            return self._record(
                tx, order_id, member_id, visit_at, "staff", "staff_repeat", zone, None
            )
        reminder = self._record(tx, order_id, member_id, visit_at, "staff", None, zone, None)
        self._publish(tx, STAFF_ALERT, reminder)
        return reminder

    def _member_reminder(
        self, tx: Transaction, order_id: str, member_id: str, visit_at: float, zone: str | None
    ) -> Reminder:
        reason = self._hold_reason(tx, member_id, visit_at)
        if reason is not None:
            return self._record(tx, order_id, member_id, visit_at, "member", reason, zone, None)
        seq = tx.next_seq()
        reminder = self._record(tx, order_id, member_id, visit_at, "member", None, zone, seq)
        enqueue(
            tx,
            self.bus,
            REMINDER,
            {
                "member": member_id,
                "order_id": order_id,
                "pickup": self.config.pickup_point,
                "zone": zone,
                "arrived_at": visit_at,
                "reminder_id": reminder.id,
            },
            self.clock.now(),
            seq=seq,
        )
        self._publish(tx, REMINDER, reminder)
        return reminder

    def _hold_reason(self, tx: Transaction, member_id: str, visit_at: float) -> str | None:
        """Why a member message would be held, or None to send it. The member's limits count
        arrivals, not orders: a member with two ready orders hears of both when they arrive
        (the second had been held as "member_gap" behind the first, sent the same second)."""
        cfg = self.config
        if self._quiet(visit_at):
            return "quiet_hours"
        last = tx.execute(
            "SELECT max(visit_at) FROM reminders WHERE member_id = ? AND kind = 'member' "
            "AND status = 'sent' AND visit_at != ?",
            (member_id, visit_at),
        ).fetchone()[0]
        if last is not None and visit_at - last < cfg.member_min_gap_s:
            return "member_gap"
        (today,) = tx.execute(
            "SELECT count(DISTINCT visit_at) FROM reminders WHERE member_id = ? "
            "AND kind = 'member' AND status = 'sent' AND visit_at > ? AND visit_at != ?",
            (member_id, visit_at - DAY_S, visit_at),
        ).fetchone()
        if today >= cfg.member_max_per_day:
            return "member_daily_cap"
        (minute,) = tx.execute(
            "SELECT count(*) FROM reminders WHERE kind = 'member' AND status = 'sent' "
            "AND visit_at > ?",
            (visit_at - 60.0,),
        ).fetchone()
        if minute >= cfg.store_max_per_minute:
            return "store_rate"
        return None

    def _quiet(self, t: float) -> bool:
        start, end = self.config.quiet_start, self.config.quiet_end
        if start is None or end is None:
            return False
        local = datetime.fromtimestamp(t, self.zone).time()
        return _within(local, start, end)

    def _record(
        self,
        tx: Transaction,
        order_id: str,
        member_id: str,
        visit_at: float,
        kind: str,
        reason: str | None,
        zone: str | None,
        seq: int | None,
    ) -> Reminder:
        status = "held" if reason else "sent"
        cur = tx.execute(
            "INSERT INTO reminders (order_id, member_id, visit_at, kind, status, reason, zone, "
            "seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order_id, member_id, visit_at, kind, status, reason, zone, seq, self.clock.now()),
        )
        return Reminder(
            int(cur.lastrowid or 0), order_id, member_id, visit_at, kind, status, reason, zone
        )

    def _publish(self, tx: Transaction, type_: str, reminder: Reminder) -> None:
        if self.bus is not None:
            bus, event = self.bus, Event(type_, reminder.to_json())
            tx.after_commit(lambda: bus.publish(event))


def _within(now: time, start: time, end: time) -> bool:
    """Whether ``now`` falls in [start, end), which may wrap past midnight."""
    return start <= now < end if start <= end else now >= start or now < end


def recent(db: Database, limit: int) -> list[Reminder]:
    """The latest reminders and staff alerts, newest first."""
    rows = db.query(
        "SELECT id, order_id, member_id, visit_at, kind, status, reason, zone FROM reminders "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [Reminder(**row) for row in rows]


def standing_alerts(
    db: Database, inside: list[tuple[str, float]], repeat_s: float
) -> list[dict[str, object]]:
    """The staff alerts still standing, for a staff page opened or reloaded after they came: for
    each member in the store now (``inside``: member id and arrival time), the latest alert sent
    about each of their orders that is still ready, from this visit or one that flickered into it
    (within ``repeat_s`` before it, when the alert was held as a repeat). One entry per member
    and visit, as the live feed's banners are, newest first."""
    visits: dict[tuple[str, float], list[str]] = {}
    for member, arrived in inside:
        rows = db.query(
            "SELECT r.order_id, max(r.visit_at) AS visit_at FROM reminders r "
            "JOIN orders o ON o.id = r.order_id WHERE r.member_id = ? AND r.kind = 'staff' "
            "AND r.status = 'sent' AND o.state = 'ready' AND r.visit_at >= ? "
            "GROUP BY r.order_id ORDER BY r.order_id",
            (member, arrived - repeat_s),
        )
        for row in rows:
            visits.setdefault((member, row["visit_at"]), []).append(row["order_id"])
    return [
        {"member_id": member, "visit_at": visit_at, "order_ids": orders}
        for (member, visit_at), orders in sorted(visits.items(), key=lambda v: -v[0][1])
    ]


def record_recovered(tx: Transaction, order_id: str, member_id: str, visit_at: float,
                     zone: str | None, now: float) -> bool:
    """Record a member reminder the shop hands back after a restore as sent (no message goes
    again): the rules then see the visit handled and the member's gap and daily count as they
    were, so the member is not reminded twice. False when the visit was already recorded."""
    cur = tx.execute(
        "INSERT INTO reminders (order_id, member_id, visit_at, kind, status, reason, zone, "
        "seq, created_at) VALUES (?, ?, ?, 'member', 'sent', NULL, ?, NULL, ?) "
        "ON CONFLICT (order_id, visit_at, kind) DO NOTHING",
        (order_id, member_id, visit_at, zone, now),
    )
    return cur.rowcount == 1
