"""Arrival reminder rules in the hub: consent, once per order per visit, quiet hours, rate limits;
every decision recorded, sent ones in the outbox and on the staff feed."""

from __future__ import annotations

import asyncio
import json
from datetime import time

import pytest

from hub.clock import ManualClock
from hub.config.beacons import RemindersConfig
from hub.events import EventBus
from hub.members import MemberIn
from hub.orders import OrderIn, OrderLineIn
from hub.reminders import REMINDER, STAFF_ALERT, ReminderRules, recent
from hub.services import Services

KEY = "00112233445566778899aabbccddeeff"
NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC


def ready_order(svc: Services, order_id: str, member: str) -> None:
    svc.orders.place(OrderIn(id=order_id, member=member, lines=[OrderLineIn(sku="OAT-1", qty=1)]))
    if svc.orders.get(order_id).state == "pending":
        svc.orders.accept(order_id)
    svc.orders.mark_ready(order_id)


def rules(svc: Services, **config: object) -> ReminderRules:
    return ReminderRules(svc.clock, svc.bus, RemindersConfig(**config), "UTC")  # type: ignore[arg-type]


def arrive(
    svc: Services, engine: ReminderRules, member: str, t: float
) -> list[tuple[str, str, str | None]]:
    with svc.db.transaction() as tx:
        decided = engine.on_arrival(tx, member, t, "door")
    return [(r.kind, r.status, r.reason) for r in decided]


@pytest.fixture
def shop(stocked: Services) -> Services:
    stocked.members.upsert(MemberIn(id="m1", consent=True, beacon_key=KEY))
    ready_order(stocked, "A1", "m1")
    return stocked


def outbox_reminders(svc: Services) -> list[dict[str, object]]:
    return svc.db.query("SELECT type, data FROM outbox WHERE type = ?", (REMINDER,))


def test_a_ready_order_gives_one_reminder_and_one_staff_alert_per_visit(shop: Services) -> None:
    engine = rules(shop)
    assert arrive(shop, engine, "m1", NOON) == [("staff", "sent", None), ("member", "sent", None)]
    assert arrive(shop, engine, "m1", NOON) == []  # the same visit again: nothing new
    (sent,) = outbox_reminders(shop)
    data = json.loads(sent["data"])  # what the shop turns into the member's message
    assert (data["member"], data["order_id"], data["pickup"]) == ("m1", "A1", "the pickup counter")
    listed = [(r.kind, r.order_id) for r in recent(shop.db, 10)]
    assert listed == [("member", "A1"), ("staff", "A1")]


def test_no_ready_order_no_reminder(shop: Services) -> None:
    shop.members.upsert(MemberIn(id="m2", consent=True, beacon_key=KEY))
    assert arrive(shop, rules(shop), "m2", NOON) == []


def test_consent_is_required(shop: Services) -> None:
    shop.members.upsert(MemberIn(id="m1", consent=False))  # an opt-out
    assert arrive(shop, rules(shop), "m1", NOON) == []
    assert arrive(shop, rules(shop), "nobody", NOON) == []


def test_quiet_hours_hold_the_message_but_not_the_staff_alert(shop: Services) -> None:
    night = NOON + 10 * 3600  # 22:00
    engine = rules(shop, quiet_start=time(21, 0), quiet_end=time(8, 0))
    assert arrive(shop, engine, "m1", night) == [
        ("staff", "sent", None),
        ("member", "held", "quiet_hours"),
    ]
    assert outbox_reminders(shop) == []
    assert arrive(shop, engine, "m1", NOON + 19 * 3600)[1] == ("member", "held", "quiet_hours")
    assert arrive(shop, engine, "m1", NOON + 20.5 * 3600)[1] == ("member", "sent", None)  # 08:30


def test_stepping_out_and_back_in_is_not_messaged_twice(shop: Services) -> None:
    engine = rules(shop, member_min_gap_s=1800)
    arrive(shop, engine, "m1", NOON)
    assert arrive(shop, engine, "m1", NOON + 300)[1] == ("member", "held", "member_gap")
    assert arrive(shop, engine, "m1", NOON + 2000)[1] == ("member", "sent", None)


def test_a_member_with_two_ready_orders_hears_of_both(shop: Services) -> None:
    """Why: the second order's message was held as "member_gap" behind the first, sent the same
    second, so the member never heard of it; the member's limits count arrivals."""
    ready_order(shop, "A2", "m1")
    engine = rules(shop, member_max_per_day=1)
    both = [("staff", "sent", None), ("member", "sent", None)] * 2
    assert arrive(shop, engine, "m1", NOON) == both
    assert sorted(json.loads(r["data"])["order_id"] for r in outbox_reminders(shop)) == ["A1", "A2"]
    # the next arrival within the gap is still held, for both orders
    assert {r[2] for r in arrive(shop, engine, "m1", NOON + 300) if r[0] == "member"} == {
        "member_gap"
    }


def test_a_flickering_arrival_alerts_the_staff_once(shop: Services) -> None:
    """Why: an arrival that flickered (left, arrived again a minute later) alerted the counter
    twice about the same order; a real second visit later still alerts."""
    engine = rules(shop, staff_repeat_after_s=600)
    assert arrive(shop, engine, "m1", NOON)[0] == ("staff", "sent", None)
    assert arrive(shop, engine, "m1", NOON + 60)[0] == ("staff", "held", "staff_repeat")
    assert arrive(shop, engine, "m1", NOON + 700)[0] == ("staff", "sent", None)
    assert arrive(shop, rules(shop, staff_repeat_after_s=0), "m1", NOON + 710)[0] == (
        "staff",
        "sent",
        None,
    )


def test_daily_cap_per_member(shop: Services) -> None:
    engine = rules(shop, member_min_gap_s=0, member_max_per_day=2)
    results = [arrive(shop, engine, "m1", NOON + i * 60)[1] for i in range(3)]
    assert results == [("member", "sent", None)] * 2 + [("member", "held", "member_daily_cap")]


def test_store_wide_rate_cap(shop: Services) -> None:
    for i in range(2, 5):
        shop.members.upsert(MemberIn(id=f"m{i}", consent=True, beacon_key=KEY))
        ready_order(shop, f"A{i}", f"m{i}")
    engine = rules(shop, store_max_per_minute=2)
    got = [arrive(shop, engine, f"m{i}", NOON + i)[1] for i in range(1, 5)]
    assert got[:2] == [("member", "sent", None)] * 2
    assert got[2:] == [("member", "held", "store_rate")] * 2


async def test_sent_reminders_reach_the_staff_feed_after_commit(shop: Services) -> None:
    bus: EventBus = shop.bus
    bus.bind(asyncio.get_running_loop())
    feed = bus.subscribe([REMINDER, STAFF_ALERT])
    arrive(shop, rules(shop), "m1", NOON)
    got = [await asyncio.wait_for(feed.get(), 1), await asyncio.wait_for(feed.get(), 1)]
    assert [(e.type, e.data["order_id"]) for e in got] == [(STAFF_ALERT, "A1"), (REMINDER, "A1")]


def test_a_failed_transaction_sends_nothing(shop: Services, clock: ManualClock) -> None:
    engine = rules(shop)
    with pytest.raises(RuntimeError), shop.db.transaction() as tx:
        engine.on_arrival(tx, "m1", NOON, "door")
        raise RuntimeError("power cut")
    assert outbox_reminders(shop) == [] and recent(shop.db, 10) == []
