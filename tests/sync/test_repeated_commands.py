"""A command the hub answered, sent again by a shop that no longer holds the answer, is answered
again with the same outcome and applied no more.

Why: restored from a backup taken while an order.place was pending, the shop sent the command
again every ``resend_after_s`` for good (89 times in 14 minutes): the hub took it for a
duplicate and said nothing, as its result had been acknowledged and deleted from the outbox.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from ulid import ULID

from sync import messages
from sync.ports import CommandIn
from tests.sync.conftest import SyncPair, wait_until
from tests.sync.test_restore import acked_to_the_end


async def test_a_restored_shop_gets_its_answer_again(
        pair: SyncPair, caplog: pytest.LogCaptureFixture) -> None:
    await pair.settled()
    await pair.stop_hub()  # the order waits at the shop, pending, while the backup is taken
    placed = await pair.shop_api("POST", "/api/orders", {
        "store": pair.store, "member": "m-1", "lines": [{"sku": "OAT-1", "qty": 2}]},
        expect=202)
    [(command_id,)] = pair.shop_sql("SELECT id FROM commands WHERE ref = ? AND type = ?",
                                    placed["id"], messages.ORDER_PLACE)
    saved = await pair.back_up_shop()
    hub = await pair.start_hub()

    def answer() -> list[tuple[object, ...]]:
        return pair.shop_sql("SELECT status, reason, result_seq FROM commands WHERE id = ?",
                             command_id)

    await wait_until(lambda: answer()[0][0] != "pending", 30, "the first answer")
    first = answer()[0]
    assert first[0] == "applied"
    await pair.settled()
    await wait_until(lambda: acked_to_the_end(pair), 30, "the answer acknowledged")
    order = await pair.hub_api("GET", f"/api/orders/{placed['id']}")
    stock = await pair.hub_api("GET", "/api/stock/OAT-1")
    db = hub.services.db
    orders = (await db.read(db.query_one, "SELECT count(*) AS n FROM orders"))["n"]
    assert hub.services.sync is not None
    duplicates = hub.services.sync.agent.metrics.duplicates._value  # noqa: SLF001
    before = duplicates.get()

    # The shop comes back from the backup, the command pending again, and sends it on connecting.
    await pair.put_back_shop(saved)
    assert answer()[0][0] == "pending"
    caplog.set_level(logging.INFO, logger="hub.sync_link")
    await pair.start_shop(resend_after_s=0.2)  # resends while the answer is on its way too

    await wait_until(lambda: answer()[0][0] != "pending", 30, "the answer sent again")
    again = answer()[0]
    assert again[:2] == first[:2], "the same outcome as the first time"
    await wait_until(lambda: acked_to_the_end(pair), 30, "the second answer acknowledged")
    assert answer()[0] == again, "the answer applied once (a later copy changes nothing)"
    inbox = await db.read(db.query_one, "SELECT answers FROM sync_inbox WHERE command_id = ?",
                          (command_id,))
    assert inbox["answers"] >= 2
    assert duplicates.get() > before
    sent_again = [r for r in caplog.records if command_id in r.getMessage()
                  and "sent again" in r.getMessage()]
    assert len(sent_again) == 1 and sent_again[0].levelno == logging.INFO, "logged once"

    # and the order's status at the shop is the hub's, not the backup's "requested"
    await wait_until(lambda: _shop_state(pair, placed["id"]) == order["state"], 30,
                     "the order's status at the shop")
    # Applied once at the hub: the same order, no new one, the same stock promised.
    assert await pair.hub_api("GET", f"/api/orders/{placed['id']}") == order
    assert await pair.hub_api("GET", "/api/stock/OAT-1") == stock
    assert (await db.read(db.query_one, "SELECT count(*) AS n FROM orders"))["n"] == orders


def _shop_state(pair: SyncPair, order_id: str) -> object:
    [(state,)] = pair.shop_sql("SELECT state FROM orders WHERE id = ?", order_id)
    return state


async def test_a_command_older_than_the_inbox_is_not_applied_silently(
        pair: SyncPair, caplog: pytest.LogCaptureFixture) -> None:
    """Its id may have been pruned from ``sync_inbox``: the hub cannot tell, applies it as new
    (as before), and warns, naming the command."""
    assert pair.hub is not None
    svc = pair.hub.services
    assert svc.sync is not None
    days = svc.config.retention.sync_inbox_days
    old = str(ULID.from_timestamp(svc.clock.now() - (days + 1) * 86_400))
    caplog.set_level(logging.INFO, logger="hub.sync_link")
    upsert = messages.MemberUpsert(id="m-9", display_name="Old friend", consent=False)
    outcome = await svc.sync.link.execute(
        CommandIn(old, messages.MEMBER_UPSERT, upsert, svc.clock.now()))
    assert outcome.status == "applied"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert old in warning.getMessage() and "sync_inbox_days" in warning.getMessage()

    fresh = str(ULID())
    caplog.clear()
    await svc.sync.link.execute(CommandIn(fresh, messages.MEMBER_UPSERT, upsert,
                                          svc.clock.now()))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def _shop_orders(pair: SyncPair) -> dict[str, str]:
    return dict(pair.shop_sql("SELECT id, state FROM orders WHERE store = ?", pair.store))


async def test_a_shop_restored_from_its_backup_gets_back_the_orders_it_lost(
        pair: SyncPair) -> None:
    """Why: an order placed after the shop's backup was gone from the shop (404 to the member's
    app) while the hub held it accepted, and one made ready after it stayed "accepted" there:
    their status events had been acknowledged and deleted. The shop's restored database asks
    for snapshots (a history gap), and the hub now sends its orders' status again with them."""
    await pair.settled()
    assert pair.hub is not None

    async def place() -> str:
        placed = await pair.shop_api("POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": [{"sku": "OAT-1", "qty": 1}]},
            expect=202)
        order_id = str(placed["id"])
        await wait_until(lambda: _shop_orders(pair).get(order_id) == "accepted", 30,
                         "the order accepted at the shop")
        return order_id

    first = await place()
    await pair.settled()
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")
    saved = await pair.back_up_shop()
    second = await place()
    await pair.hub_api("POST", f"/api/orders/{first}/transition", {"to": "ready"})
    await wait_until(lambda: _shop_orders(pair).get(first) == "ready", 30, "ready at the shop")
    await pair.settled()
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")

    await pair.put_back_shop(saved)
    assert _shop_orders(pair) == {first: "accepted"}
    await pair.start_shop()
    await wait_until(lambda: _shop_orders(pair) == {first: "ready", second: "accepted"}, 30,
                     "the orders as the store has them")
    assert (await pair.shop_api("GET", f"/api/orders/{second}"))["state"] == "accepted"


async def test_a_shop_restored_from_its_backup_gets_back_its_members(pair: SyncPair) -> None:
    """Why: a member who opted in after the shop's backup was unknown to the restored shop,
    so opting out or withdrawing was answered 404 "never opted in" while the store kept the
    key and went on reminding them; a withdrawal missed every store opted in at since. The
    restored shop (a history gap) asks each store for its members (member.announce)."""
    await pair.settled()
    assert pair.hub is not None
    members = pair.hub.services.members

    async def opt(member: str, action: str = "opt-in") -> dict[str, Any]:
        return dict(await pair.shop_api("POST", f"/api/members/{member}/{action}",
                                        {"store": pair.store}, expect=202))

    await opt("m-1")
    await wait_until(lambda: "m-1" in members.keys(), 30, "m-1's key at the store")
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")
    saved = await pair.back_up_shop()
    key = (await opt("m-2"))["beacon_key"]
    await opt("m-1", "opt-out")
    await wait_until(lambda: set(members.keys()) == {"m-2"}, 30, "the store's keys")
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")

    await pair.put_back_shop(saved)
    await pair.start_shop()

    def consents() -> list[tuple[Any, ...]]:
        return pair.shop_sql("SELECT s.member, s.consent, m.beacon_key FROM member_stores s "
                             "JOIN members m ON m.id = s.member WHERE s.store = ? "
                             "ORDER BY s.member", pair.store)

    await wait_until(lambda: len(consents()) == 2 and consents()[0][1] == 0, 30,
                     "the members as the store has them")
    assert [row[:2] for row in consents()] == [("m-1", 0), ("m-2", 1)]
    assert consents()[1][2] == key
    # the answer comes after the statuses it wrote (each store asked once)
    await wait_until(lambda: pair.shop_sql("SELECT status FROM commands WHERE type = ?",
                                           messages.MEMBER_ANNOUNCE) == [("applied",)], 30,
                     "member.announce answered")
    # m-2 can withdraw again, and the store that has the key deletes it
    withdrawn = await opt("m-2", "withdraw")
    assert withdrawn["stores"] == [pair.store]
    await wait_until(lambda: members.keys() == {}, 30, "the key deleted at the store")
