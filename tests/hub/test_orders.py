"""Orders: every legal and illegal transition, reservations, collection, release, expiry."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from hub.clock import ManualClock
from hub.errors import Conflict, InvalidInput
from hub.expiry import OrderExpiry
from hub.inventory import MovementIn
from hub.orders import TRANSITIONS, OrderIn, OrderService
from hub.services import Services

STATES = sorted(TRANSITIONS)


def order(order_id: str, *lines: tuple[str, int], member: str | None = "m1") -> OrderIn:
    return OrderIn(id=order_id, member=member,
                   lines=[{"sku": s, "qty": q} for s, q in lines])  # type: ignore[misc]


def level(svc: Services, sku: str) -> tuple[int, int, int]:
    s = svc.inventory.stock(sku)
    return s.on_hand, s.reserved, s.available


def restarted(svc: Services) -> OrderService:
    """The order service of the next start of the hub (it knows nothing of this run's)."""
    return OrderService(svc.db, svc.clock, svc.inventory, svc.orders.config, svc.bus)


def drive_to(svc: Services, state: str, order_id: str) -> None:
    """Put a fresh order into ``state`` through legal transitions only."""
    svc.orders.config.auto_accept = False
    svc.orders.place(order(order_id, ("BAN-1", 1)))
    paths = {
        "pending": [], "accepted": ["accepted"], "rejected": ["rejected"],
        "ready": ["accepted", "ready"], "collected": ["accepted", "ready", "collected"],
        "cancelled": ["cancelled"], "expired": ["accepted", "expired"],
    }
    for step in paths[state]:
        if step == "expired":
            svc.clock.advance(svc.orders.config.pickup_window_hours * 3600 + 1)  # type: ignore[attr-defined]
            assert [o.id for o in svc.orders.expire_due()] == [order_id]
        else:
            svc.orders.transition(order_id, step, reason="test")
    assert svc.orders.get(order_id).state == state


@pytest.mark.parametrize(("source", "target"), list(itertools.product(STATES, STATES)))
def test_transition_matrix(stocked: Services, source: str, target: str) -> None:
    drive_to(stocked, source, "o1")
    legal = target in TRANSITIONS[source]
    if target in ("pending", "expired"):
        # Not requestable by staff: pending is only the start, expiry only by the clock.
        with pytest.raises(InvalidInput):
            stocked.orders.transition("o1", target)
        return
    if legal:
        assert stocked.orders.transition("o1", target, reason="r").state == target
    else:
        with pytest.raises(Conflict) as info:
            stocked.orders.transition("o1", target, reason="r")
        assert info.value.code == "illegal_transition"
        assert stocked.orders.get("o1").state == source


def test_auto_accept_reserves_and_collect_sells(stocked: Services) -> None:
    placed, known = stocked.orders.place(order("A1", ("OAT-1", 3), ("BAN-1", 2), ("OAT-1", 1)))
    assert (placed.state, known) == ("accepted", False)
    assert level(stocked, "OAT-1") == (10, 4, 6)
    stocked.orders.mark_ready("A1")
    stocked.orders.collect("A1")
    assert level(stocked, "OAT-1") == (6, 0, 6)
    assert level(stocked, "BAN-1") == (38, 0, 38)
    reasons = [m["reason"] for m in stocked.inventory.movements(sku="OAT-1")]
    assert reasons[:2] == ["pickup", "reservation"]
    history = [h["to_state"] for h in stocked.orders.history("A1")]
    assert history == ["pending", "accepted", "ready", "collected"]


def test_reservation_never_makes_available_negative(stocked: Services) -> None:
    stocked.orders.place(order("A1", ("OAT-1", 8)))
    rejected, _ = stocked.orders.place(order("A2", ("OAT-1", 3), ("BAN-1", 1)))
    assert rejected.state == "rejected"
    assert "OAT-1 (wanted 3, available 2)" in (rejected.reason or "")
    assert level(stocked, "OAT-1") == (10, 8, 2)
    assert level(stocked, "BAN-1") == (40, 0, 40), "a rejected order reserves nothing"
    unknown, _ = stocked.orders.place(order("A3", ("GHOST", 1)))
    assert (unknown.state, unknown.reason) == ("rejected", "not sold in this store: GHOST")
    both, _ = stocked.orders.place(order("A4", ("GHOST", 1), ("OAT-1", 5)))
    assert both.reason == ("not sold in this store: GHOST; "
                           "not enough stock: OAT-1 (wanted 5, available 2)")


def test_a_rejected_order_says_why_in_a_code(stocked: Services) -> None:
    """Why: the shop's mini-program must tell the member what to do (order fewer, the store
    does not sell it, the store declined) and had only the English reason to parse."""
    stocked.orders.place(order("A1", ("OAT-1", 8)))
    short, _ = stocked.orders.place(order("A2", ("OAT-1", 3), ("BAN-1", 1)))
    unknown, _ = stocked.orders.place(order("A3", ("GHOST", 1)))
    both, _ = stocked.orders.place(order("A4", ("OAT-1", 5), ("GHOST", 1)))
    stocked.orders.config.auto_accept = False
    stocked.orders.place(order("A5", ("BAN-1", 1)))
    declined = stocked.orders.transition("A5", "rejected", reason="shop closing early")
    assert [(o.reason_code, o.reason) for o in (short, unknown, both, declined)] == [
        ("out_of_stock", "not enough stock: OAT-1 (wanted 3, available 2)"),
        ("not_sold_here", "not sold in this store: GHOST"),
        ("not_sold_here", "not sold in this store: GHOST; "
                          "not enough stock: OAT-1 (wanted 5, available 2)"),
        ("staff", "shop closing early")]
    rows = stocked.db.query("SELECT data FROM outbox WHERE type = 'order.status' ORDER BY seq")
    sent = [(body["id"], body["state"], body["reason_code"])
            for body in (json.loads(r["data"]) for r in rows)]
    assert [s for s in sent if s[1] == "rejected"] == [
        ("A2", "rejected", "out_of_stock"), ("A3", "rejected", "not_sold_here"),
        ("A4", "rejected", "not_sold_here"), ("A5", "rejected", "staff")]
    assert {code for _, state, code in sent if state != "rejected"} == {None}


@pytest.mark.parametrize("state", STATES)
def test_only_a_rejected_order_has_a_reason_code(stocked: Services, state: str) -> None:
    drive_to(stocked, state, "o1")
    assert stocked.orders.get("o1").reason_code == ("staff" if state == "rejected" else None)


def test_lines_of_one_sku_are_reserved_together(stocked: Services) -> None:
    """Documented (docs/openapi.yaml, asyncapi.yaml): lines of the same SKU add up, so two
    lines that each fit but together do not are refused with their sum."""
    rejected, _ = stocked.orders.place(order("D1", ("OAT-1", 6), ("OAT-1", 6)))
    assert rejected.state == "rejected"
    assert "OAT-1 (wanted 12, available 10)" in (rejected.reason or "")
    accepted, _ = stocked.orders.place(order("D2", ("OAT-1", 4), ("OAT-1", 5)))
    assert accepted.state == "accepted"
    assert [(line.sku, line.qty) for line in accepted.lines] == [("OAT-1", 4), ("OAT-1", 5)]
    assert level(stocked, "OAT-1") == (10, 9, 1)


def test_offline_sale_may_oversell_reserved_stock(stocked: Services) -> None:
    stocked.orders.place(order("A1", ("OAT-1", 8)))
    movement, _ = stocked.inventory.record(MovementIn(sku="OAT-1", qty=5, reason="sale"))
    assert movement.flagged
    assert level(stocked, "OAT-1") == (5, 8, -3)


def test_cancel_and_expiry_release_stock(stocked: Services, clock: ManualClock) -> None:
    stocked.orders.place(order("A1", ("OAT-1", 2)))
    stocked.orders.place(order("A2", ("OAT-1", 3)))
    stocked.orders.cancel("A1", "customer called")
    assert level(stocked, "OAT-1") == (10, 3, 7)
    clock.advance(47 * 3600)
    assert stocked.orders.expire_due() == []
    clock.advance(3600 + 1)
    expired = stocked.orders.expire_due()
    assert [o.id for o in expired] == ["A2"] and expired[0].state == "expired"
    assert level(stocked, "OAT-1") == (10, 0, 10)
    assert stocked.orders.expire_due() == []


def test_placing_twice_is_harmless_but_ids_are_not_reused(stocked: Services) -> None:
    first, _ = stocked.orders.place(order("A1", ("OAT-1", 2)))
    again, known = stocked.orders.place(order("A1", ("OAT-1", 2)))
    assert known and again.state == first.state
    assert level(stocked, "OAT-1") == (10, 2, 8)
    with pytest.raises(Conflict, match="different contents"):
        stocked.orders.place(order("A1", ("OAT-1", 3)))


def test_limits_on_lines_and_quantities(stocked: Services) -> None:
    with pytest.raises(InvalidInput, match="at most 99 units"):
        stocked.orders.place(order("A1", ("OAT-1", 100)))
    many = [("OAT-1", 1)] * 51
    with pytest.raises(InvalidInput, match="at most 50 lines"):
        stocked.orders.place(order("A2", *many))


def test_every_status_change_reaches_the_outbox(stocked: Services) -> None:
    stocked.orders.place(order("A1", ("OAT-1", 1)))
    stocked.orders.mark_ready("A1")
    stocked.orders.collect("A1")
    rows = stocked.db.query("SELECT data FROM outbox WHERE type = 'order.status' ORDER BY seq")
    states = [json.loads(r["data"])["state"] for r in rows]
    assert states == ["pending", "accepted", "ready", "collected"]


def test_service_uses_only_injected_clock(stocked: Services, clock: ManualClock) -> None:
    placed, _ = stocked.orders.place(order("A1", ("OAT-1", 1)))
    assert placed.created_at == clock.now()
    assert placed.pickup_by == clock.now() + 48 * 3600
    assert isinstance(stocked.orders, OrderService)


async def test_a_clock_set_forward_moves_the_windows_it_measured(stocked: Services,
                                                               clock: ManualClock) -> None:
    """Why: a Pi without a battery clock starts after a power cut days behind; an order accepted
    then was expired, for good, within a minute of NTP setting the clock, and the member told
    so. Its window moves with the clock; an order of an earlier run keeps its window."""
    stocked.bus.bind(asyncio.get_running_loop())
    with stocked.db.transaction() as tx:  # accepted by an earlier run, due in an hour
        stocked.orders.place(order("OLD", ("OAT-1", 1)))
        tx.execute("UPDATE orders SET pickup_by = ? WHERE id = 'OLD'", (clock.now() + 3600,))
    stocked.orders = restarted(stocked)
    expiry = OrderExpiry(stocked.orders, stocked.db, clock)
    clock.step(-3 * 86400)  # the hub started with its clock three days behind
    new, _ = stocked.orders.place(order("NEW", ("OAT-1", 2)))
    assert new.pickup_by == clock.now() + 48 * 3600
    outbox_before = stocked.db.query("SELECT COUNT(*) AS n FROM outbox")[0]["n"]
    clock.step(3 * 86400)  # NTP
    assert await expiry.run_once() == 0
    moved = stocked.orders.get("NEW")
    assert moved.state == "accepted" and moved.pickup_by == clock.now() + 48 * 3600
    assert stocked.orders.get("OLD").pickup_by == clock.now() + 3600
    statuses = stocked.db.query("SELECT data FROM outbox WHERE type = 'order.status' "
                                "ORDER BY seq DESC LIMIT 1")
    assert json.loads(statuses[0]["data"])["pickup_by"] == moved.pickup_by  # the shop learns
    assert stocked.db.query("SELECT COUNT(*) AS n FROM outbox")[0]["n"] == outbox_before + 1
    held = stocked.db.query("SELECT expires_at FROM reservations WHERE order_id = 'NEW'")
    assert held == [{"expires_at": moved.pickup_by}]
    clock.advance(3600 + 60)  # the earlier run's order ends on time; the new one waits
    assert await expiry.run_once() == 1
    assert [o.state for o in (stocked.orders.get("OLD"), moved)] == ["expired", "accepted"]
    clock.advance(47 * 3600)
    assert await expiry.run_once() == 1 and stocked.orders.get("NEW").state == "expired"
    assert level(stocked, "OAT-1") == (10, 0, 10)


@pytest.mark.parametrize("wrong_by", [365 * 86400, -3 * 86400])
async def test_an_order_accepted_after_ntp_keeps_its_window(stocked: Services,
                                                            clock: ManualClock,
                                                            wrong_by: int) -> None:
    """Why: the windows of every order this run had accepted were moved by a step found later,
    so an order accepted after NTP had set a year-ahead clock right was moved a year back and
    expired at once (or, after a clock days behind, held its stock for days)."""
    stocked.bus.bind(asyncio.get_running_loop())
    stocked.orders = restarted(stocked)
    clock.step(wrong_by)  # the start, with the clock wrong
    expiry = OrderExpiry(stocked.orders, stocked.db, clock)
    before, _ = stocked.orders.place(order("BEFORE", ("OAT-1", 1)))
    clock.step(-wrong_by)  # NTP, then an order on the right clock
    after, _ = stocked.orders.place(order("AFTER", ("OAT-1", 1)))
    clock.advance(900)
    assert await expiry.run_once() == 0
    assert stocked.orders.get("AFTER").pickup_by == after.pickup_by  # not moved
    assert stocked.orders.get("BEFORE").pickup_by == before.pickup_by - wrong_by
    clock.step(30)  # drift NTP slews moves nothing
    await expiry.run_once()
    assert stocked.orders.get("AFTER").pickup_by == after.pickup_by


async def test_an_order_that_ended_unseen_does_not_stop_the_expiry(stocked: Services,
                                                                   clock: ManualClock) -> None:
    """Review: an order remembered for its window but no longer held (its acceptance rolled
    back, or ended past the service) must not fail the step's transaction, which would stop
    every expiry after it."""
    stocked.bus.bind(asyncio.get_running_loop())
    expiry = OrderExpiry(stocked.orders, stocked.db, clock)
    with pytest.raises(RuntimeError), stocked.db.transaction():
        stocked.orders.place(order("GONE", ("OAT-1", 1)))
        raise RuntimeError("the write that accepted it failed")
    stocked.orders.place(order("HELD", ("OAT-1", 1)))
    clock.step(3600)
    assert await expiry.run_once() == 0
    assert stocked.orders.get("HELD").pickup_by == clock.now() + 48 * 3600  # moved
    clock.advance(48 * 3600)
    assert await expiry.run_once() == 1 and stocked.orders.get("HELD").state == "expired"


async def test_a_hub_started_with_its_clock_ahead_expires_nothing_before_ntp(
        stocked: Services, clock: ManualClock) -> None:
    """Why: started with the clock a year ahead, the hub expired every held order in its first
    second, for good, and the shop told the members."""
    stocked.bus.bind(asyncio.get_running_loop())
    stocked.orders.place(order("HELD", ("OAT-1", 1)))
    clock.step(365 * 86400)  # the next start, with a clock set wrong
    stocked.orders = restarted(stocked)
    job = OrderExpiry(stocked.orders, stocked.db, clock)
    await job.start()
    try:
        clock.advance(120)
        await asyncio.sleep(0.05)
        clock.step(-365 * 86400)  # NTP, once the network is up
        for _ in range(20):
            clock.advance(60)
            await asyncio.sleep(0.01)
        assert stocked.orders.get("HELD").state == "accepted"
        clock.advance(48 * 3600)  # its real window ends: expired at the next look
        for _ in range(100):
            await asyncio.sleep(0.01)
            if stocked.orders.get("HELD").state == "expired":
                break
        assert stocked.orders.get("HELD").state == "expired"
    finally:
        await job.stop()
