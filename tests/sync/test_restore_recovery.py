"""Recovery after a restore: what the store did after the backup it was restored from (sales,
a delivery, a count, an order's pickup, a member's reminder) is handed back by the shop
(store.recover) and applied again, so both ends end at the levels the shelf had before the
crash, and nothing a till sends again, or a recovery delivered twice, counts twice."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from hub.backup import backup, restore
from hub.config.beacons import RemindersConfig
from hub.reminders import Reminder, ReminderRules
from hub.services import Services
from hub.sync_link import HubStoreLink
from sync import messages
from sync.envelope import new_id
from sync.ports import CommandIn
from tests.sync.conftest import SyncPair, wait_until
from tests.sync.test_restore import acked_to_the_end

SALES = [{"sku": "OAT-1", "qty": 1, "reason": "sale", "ref": f"till-1:B{i}"} for i in range(3)]


def arrive(svc: Services, member: str, visit_at: float) -> list[Reminder]:
    """The member arriving at the store (run on the database's writer), as the presence engine
    does: the reminder rules decide in the arrival's transaction."""
    rules = ReminderRules(svc.clock, svc.bus, RemindersConfig(), svc.config.store.timezone)
    with svc.db.transaction() as tx:
        return rules.on_arrival(tx, member, visit_at, "door")


async def hub_levels(pair: SyncPair) -> dict[str, tuple[int, int]]:
    assert pair.hub is not None
    rows = (await pair.hub_api("GET", "/api/stock"))["stock"]
    return {r["sku"]: (r["on_hand"], r["reserved"]) for r in rows}


async def shop_levels(pair: SyncPair) -> dict[str, tuple[int, int]]:
    return {sku: (on_hand, reserved) for sku, on_hand, reserved in pair.shop_sql(
        "SELECT sku, on_hand, reserved FROM stock_view WHERE store = ?", pair.store)}


async def order_state(pair: SyncPair, order_id: str) -> tuple[Any, Any]:
    hub = await pair.hub_api("GET", f"/api/orders/{order_id}")
    shop = await pair.shop_api("GET", f"/api/orders/{order_id}")
    return hub["state"], shop["state"]


async def test_a_restored_hub_gets_back_what_it_did_after_its_backup(pair: SyncPair) -> None:
    await pair.settled()
    assert pair.hub is not None
    await pair.shop_api("POST", "/api/members/m-1/opt-in", {"store": pair.store},
                        expect=202)
    await wait_until(lambda: pair.hub is not None and pair.hub.services.db.query(
        "SELECT 1 FROM members WHERE id = 'm-1' AND consent = 1"), what="the opt-in")
    orders = []
    for _ in range(2):
        placed = await pair.shop_api("POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": [{"sku": "BAN-1", "qty": 2}]},
            expect=202)
        order_id = str(placed["id"])
        await wait_until(lambda oid=order_id: pair.hub is not None and pair.hub.services.db.query(
            "SELECT 1 FROM orders WHERE id = ? AND state = 'accepted'", [oid]),
            what="the order accepted")
        await pair.hub_api("POST", f"/api/orders/{order_id}/transition", {"to": "ready"})
        orders.append(order_id)
    collected, waiting = orders
    await pair.settled()
    database = pair.hub.services.config.store.database
    saved = await asyncio.to_thread(backup, database, pair.folder / "backups")

    # after the backup: till sales, a delivery, a count, the member's visit and a pickup
    for sale in SALES:
        await pair.hub_api("POST", "/api/stock/movements", sale)
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "BAN-1", "qty": 10, "reason": "receipt", "ref": "delivery-1"})
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "OAT-1", "qty": 2, "reason": "sale"})  # a sale without a ref
    await pair.hub_api("POST", "/api/stock/counts", {"sku": "BAN-1", "counted": 30})
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "BAN-1", "qty": 1, "reason": "sale", "ref": "till-1:C0"})
    svc = pair.hub.services
    visit = svc.clock.now()
    sent = await svc.db.write(arrive, svc, "m-1", visit)
    assert [(r.order_id, r.kind, r.status) for r in sent if r.kind == "member"] == [
        (collected, "member", "sent"), (waiting, "member", "sent")]
    await pair.hub_api("POST", f"/api/orders/{collected}/transition", {"to": "collected"})
    await pair.settled()
    truth = await hub_levels(pair)
    assert truth["BAN-1"] == (29 - 2, 2)  # counted 30, one sold, one order of 2 collected

    await pair.stop_hub()
    await asyncio.to_thread(restore, saved, database)
    await pair.start_hub()

    async def recovered() -> bool:
        return await hub_levels(pair) == truth and await order_state(pair, collected) == (
            "collected", "collected")

    await wait_until(recovered, 30, "what came after the backup applied again")
    report = await pair.settled()
    assert report.exact and not report.unit_diff
    assert await shop_levels(pair) == truth
    assert await order_state(pair, waiting) == ("ready", "ready")
    # every lost business event was handed back and answered; none is left pending
    assert pair.shop_sql("SELECT DISTINCT outcome FROM rewound_events WHERE type <> ?",
                         "command.result") in ([("applied",)], [("applied",), ("not_recovered",)])
    assert not pair.shop_sql("SELECT 1 FROM commands WHERE status = 'pending'")

    # the member's visit was handled: no reminder again for it, and the next arrival soon
    # after is within the member's gap (the recovered reminder counts)
    svc = pair.hub.services
    assert await svc.db.write(arrive, svc, "m-1", visit) == []
    again = await svc.db.write(arrive, svc, "m-1", visit + 60)
    assert [(r.order_id, r.status, r.reason) for r in again if r.kind == "member"] == [
        (waiting, "held", "member_gap")]

    # a till sending its journal again by ref changes nothing
    ledger = await svc.db.read(svc.db.query, "SELECT count(*) AS n FROM stock_ledger")
    for sale in [*SALES, {"sku": "BAN-1", "qty": 1, "reason": "sale", "ref": "till-1:C0"}]:
        answer = await pair.hub_api("POST", "/api/stock/movements", sale)
        assert answer["duplicate"] is True
    assert await hub_levels(pair) == truth
    assert await svc.db.read(svc.db.query, "SELECT count(*) AS n FROM stock_ledger") == ledger


async def test_a_recovery_delivered_twice_is_applied_once(
        pair: SyncPair, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sync.shop.link")
    await pair.settled()
    assert pair.hub is not None
    database = pair.hub.services.config.store.database
    saved = await asyncio.to_thread(backup, database, pair.folder / "backups")
    for sale in SALES:
        await pair.hub_api("POST", "/api/stock/movements", sale)
    await pair.settled()
    truth = await hub_levels(pair)
    await pair.stop_hub()
    await asyncio.to_thread(restore, saved, database)
    await pair.start_hub()

    async def recovered() -> bool:
        return await hub_levels(pair) == truth and not pair.shop_sql(
            "SELECT 1 FROM commands WHERE status = 'pending'")

    await wait_until(recovered, 30, "the sales after the backup applied again")
    # the shop's operators hear of the rewind, not only through a drift row
    assert [r.getMessage() for r in caplog.records if "shorter history" in r.getMessage()] == [
        f"store {pair.store} came back with a shorter history (restored from a backup?): its "
        "events after the backup are set aside (rewound_events) and handed back to it to apply "
        "again (store.recover)"]
    svc = pair.hub.services
    ledger = await svc.db.read(svc.db.query, "SELECT count(*) AS n FROM stock_ledger")
    # the shop sends the recovery again (as a shop restored from its own backup would)
    conn_rows = pair.shop_sql("SELECT id FROM commands WHERE type = ?", messages.STORE_RECOVER)
    assert len(conn_rows) == 1
    pair.shop_sql("UPDATE commands SET status = 'pending', sent_at = NULL, result_seq = NULL "
                  "WHERE type = ?", messages.STORE_RECOVER)
    await wait_until(lambda: not pair.shop_sql(
        "SELECT 1 FROM commands WHERE status = 'pending'"), 30, "the recovery answered again")
    await pair.settled()
    assert await hub_levels(pair) == truth
    assert await shop_levels(pair) == truth
    assert await svc.db.read(svc.db.query, "SELECT count(*) AS n FROM stock_ledger") == ledger


@pytest.mark.parametrize("restarted", [False, True], ids=["once", "restarted-again"])
async def test_what_the_restored_hub_did_before_the_shop_was_heard_stays_counted(
        pair: SyncPair, restarted: bool) -> None:
    """Why: a count in the lost history went again as the level counted, so the sales the
    restored hub took before the shop was heard (or a till's journal sent again first, as the
    docs advise) vanished from stock. And an order the shop placed again reported its lost
    ``pending`` and ``accepted`` steps as skipped, for staff to chase for nothing.

    Restarted again before the shop heard it, the restored hub's next run began above its own
    sale and said so: the shop kept the lost sale at that number and rewound a second time
    when the new one came, two recoveries on Store health."""
    await pair.settled()
    assert pair.hub is not None
    database = pair.hub.services.config.store.database
    saved = await asyncio.to_thread(backup, database, pair.folder / "backups")
    sale = {"sku": "OAT-1", "qty": 1, "reason": "sale"}
    await pair.hub_api("POST", "/api/stock/movements", {**sale, "ref": "till-3:s1"})
    await pair.hub_api("POST", "/api/stock/counts",
                       {"sku": "OAT-1", "counted": 30, "ref": "count-1"})
    await pair.hub_api("POST", "/api/stock/movements", {**sale, "ref": "till-3:s2"})
    placed = await pair.shop_api("POST", "/api/orders", {
        "store": pair.store, "member": "m-1", "lines": [{"sku": "BAN-1", "qty": 1}]},
        expect=202)
    await wait_until(lambda: pair.shop_sql("SELECT state FROM orders WHERE id = ?",
                                           placed["id"]) == [("accepted",)], 30, "accepted")
    await pair.settled()
    truth = await hub_levels(pair)
    assert truth["OAT-1"][0] == 29

    await pair.stop_shop()  # the shop cannot be heard while the card is replaced
    await pair.stop_hub()
    await asyncio.to_thread(restore, saved, database)
    await pair.start_hub()
    await pair.hub_api("POST", "/api/stock/movements", {**sale, "ref": "till-3:s4"})
    if restarted:
        await pair.stop_hub()
        await pair.start_hub()
    await pair.start_shop()

    async def recovered() -> bool:
        return bool(pair.shop_sql("SELECT 1 FROM commands WHERE type = ? AND status <> "
                                  "'pending'", messages.STORE_RECOVER))

    await wait_until(recovered, 30, "the recovery answered")
    await pair.settled()
    levels = await hub_levels(pair)
    assert levels["OAT-1"][0] == 28, "the sale at the restored hub was wiped out by the count"
    assert levels == {**truth, "OAT-1": (28, truth["OAT-1"][1])}
    assert await shop_levels(pair) == levels
    db = pair.hub.services.db
    # one recovery, whether the restored hub's sale (its seq 4, the lost till-3:s1's number)
    # reaches the shop before its birth or after it (the birth says where its run began)
    [answer] = await db.read(db.query, "SELECT ref, reason FROM sync_inbox WHERE type = ?",
                             (messages.STORE_RECOVER,))
    assert answer["reason"] is None and answer["ref"].endswith(" 0 skipped"), answer
    # once the shop acknowledges this run, later runs take over the whole history again
    await wait_until(lambda: acked_to_the_end(pair), 30, "everything acknowledged")
    assert await db.read(db.query, "SELECT value FROM sync_state WHERE key = "
                                   "'restored_at_seq'") == []
    assert pair.hub.services.sync is not None
    position = await pair.hub.services.sync.link.position()
    assert position.inherited == position.last_seq


async def test_what_the_store_cannot_take_is_skipped_with_a_note_not_the_batch(
        pair: SyncPair) -> None:
    await pair.settled()
    assert pair.hub is not None
    svc = pair.hub.services
    before = await hub_levels(pair)

    def event(seq: int, type_: str, **data: Any) -> messages.RecoveredEvent:
        return messages.RecoveredEvent(seq=seq, type=type_, ts=1.0, data=data)

    def sale(seq: int, sku: str, **more: Any) -> messages.RecoveredEvent:
        return event(seq, messages.MOVEMENT, movement_id=f"m-{seq}", sku=sku, qty=-1,
                     reason="sale", **more)

    recover = messages.StoreRecover(epoch=1, events=[
        sale(1, "GONE-1", ref="till-9:1"),                          # a product it lacks
        event(2, "presence.arrival", member="m-1"),                 # a type it does not take
        event(3, messages.MOVEMENT, movement_id="m-3", sku="OAT-1", qty=-2,
              reserved_qty=-2, reason="pickup", order_id="o-x"),    # follows its order
        event(4, messages.ORDER_STATUS, id="o-missing", state="collected"),
        event(5, messages.MOVEMENT, sku="OAT-1"),                   # data it cannot read
        sale(6, "OAT-1", ref="till-9:6"),                           # applied
    ])
    link = HubStoreLink(svc)
    command = CommandIn(id=new_id(), type=messages.STORE_RECOVER, data=recover, sent_at=1.0)
    outcome = await link.execute(command)
    assert (outcome.status, outcome.ref) == ("applied", "1 applied, 0 already here, 5 skipped")
    assert outcome.reason is not None
    for seq, why in [(1, "no product with SKU 'GONE-1'"), (2, "not a type the store recovers"),
                     (3, "follows its order"), (4, "no order with id 'o-missing'"),
                     (5, "data the store cannot take")]:
        assert f"seq {seq} " in outcome.reason and why in outcome.reason, (seq, outcome.reason)
    after = await hub_levels(pair)
    assert after["OAT-1"][0] == before["OAT-1"][0] - 1
    # staff see it in Store health, what to put right by hand with it
    [shown] = (await pair.hub_api("GET", "/api/staff/health"))["sync"]["recovered"]
    assert (shown["summary"], shown["skipped"]) == (outcome.ref, outcome.reason)
    # the result names each skipped event, for the shop to mark that one
    db = svc.db

    async def results() -> list[dict[str, Any]]:
        """This command's answers in the outbox (the shop's own commands may be answered too)."""
        rows = await db.read(db.query, "SELECT data FROM outbox WHERE type = ? ORDER BY seq",
                             (messages.COMMAND_RESULT,))
        answers = [json.loads(row["data"]) for row in rows]
        return [answer for answer in answers if answer["command_id"] == command.id]

    [first] = await results()
    notes = ["no product with SKU 'GONE-1'", "not a type the store recovers",
             "a pickup movement follows its order", "no order with id 'o-missing'",
             "data the store cannot take"]
    assert [skip["seq"] for skip in first["skipped"]] == [1, 2, 3, 4, 5]
    assert [skip["note"].startswith(note)
            for skip, note in zip(first["skipped"], notes, strict=True)] == [True] * 5, first
    # the same command again (a resend) applies nothing more; its first answer acknowledged
    # (gone from the outbox), the same answer goes again, skipped events and all
    async def acknowledged() -> bool:
        return await results() == []

    await wait_until(acknowledged, 30, "the first answer acknowledged")
    assert svc.sync is not None
    await svc.sync.stop()  # so the answer sent again stays in the outbox to be read
    again = await link.execute(command)
    assert again.status == "duplicate"
    assert await hub_levels(pair) == after
    assert await results() == [first]
