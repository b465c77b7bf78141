"""A hub restored from a backup starts a new epoch; the shop notices the rewind, its stock view
follows the restored ledger exactly, and the sales made after the backup, which the shop hands
back (store.recover), are applied again at both."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable

from hub.backup import backup, restore
from tests.sync.conftest import SyncPair, wait_until


async def epoch(pair: SyncPair) -> int:
    assert pair.hub is not None
    db = pair.hub.services.db
    row = await db.read(db.query_one, "SELECT value FROM sync_state WHERE key = 'epoch'")
    return int(row["value"])


async def test_restored_hub_rewinds_the_shop_view(pair: SyncPair) -> None:
    await pair.settled()
    start = (await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1"))["on_hand"]
    for i in range(5):
        await pair.hub_api("POST", "/api/stock/movements",
                           {"sku": "OAT-1", "qty": 1, "reason": "sale", "ref": f"before-{i}"})
    await pair.settled()
    assert pair.hub is not None
    database = pair.hub.services.config.store.database
    epoch_before = await epoch(pair)
    saved = await asyncio.to_thread(backup, database, pair.folder / "backups")

    for i in range(7):
        await pair.hub_api("POST", "/api/stock/movements",
                           {"sku": "OAT-1", "qty": 1, "reason": "sale", "ref": f"after-{i}"})
    await pair.settled()
    shop_view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
    assert shop_view["on_hand"] == start - 12

    await pair.stop_hub()
    await asyncio.to_thread(restore, saved, database)
    await pair.start_hub()

    async def recovered() -> bool:
        """The shop rewound, handed the lost sales back, had them answered, and shows them."""
        if pair.shop_sql("SELECT 1 FROM rewound_events WHERE outcome IS NULL") or not (
                pair.shop_sql("SELECT 1 FROM drift WHERE kind = 'rewind'")):
            return False
        view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
        return bool(view["on_hand"] == start - 12)

    await wait_until(recovered, 30, "the sales after the backup handed back and applied again")
    report = await pair.settled()
    assert report.exact
    assert await epoch(pair) > epoch_before

    # New movements after the restore reuse sequence numbers of the lost history; the shop must
    # apply them as new ones, not skip them as already seen.
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "OAT-1", "qty": 3, "reason": "receipt", "ref": "after-restore"})
    await pair.settled()
    shop_view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
    assert shop_view["on_hand"] == start - 12 + 3


async def acked_to_the_end(pair: SyncPair) -> bool:
    """Whether the shop has acknowledged every event the hub wrote (its outbox is drained)."""
    assert pair.hub is not None
    db = pair.hub.services.db
    acked = await db.read(db.query_one, "SELECT value FROM sync_state WHERE key = 'acked_seq'")
    last = await db.read(db.query_one, "SELECT value FROM store_meta WHERE key = 'last_seq'")
    return int(acked["value"]) == int(last["value"])


async def test_a_hub_the_shop_thinks_older_starts_a_run_above_it(pair: SyncPair) -> None:
    """Why: the run number comes from the clock, so a hub restored onto a Pi whose clock was an
    hour behind started a run the shop took for an old one. The shop ignored its birth and kept
    acknowledging in its newer run, the hub ignored every ack, and the outbox stalled at the send
    window with orders left 'requested'."""
    await pair.settled()
    hub_run = await epoch(pair)
    newer = hub_run + 3_600_000  # the run the shop saw, an hour ahead of this hub's clock
    conn = sqlite3.connect(pair.shop_db)
    conn.execute("UPDATE stores SET epoch = ?, born_epoch = ? WHERE store = ?",
                 (newer, newer, pair.store))
    conn.commit()
    conn.close()
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "OAT-1", "qty": 1, "reason": "sale", "ref": "behind-1"})
    await wait_until(lambda: acked_to_the_end(pair), 30, "the shop to acknowledge every event")
    assert await epoch(pair) > newer
    assert (await pair.settled()).exact


async def test_a_restored_hub_behind_the_shops_run_rewinds_it_on_its_events(
        pair: SyncPair) -> None:
    """Why: restored with its clock behind the run the shop knew, the hub's birth was taken for
    a stale one, so nothing was rewound; the shop ignored the new events at the lost sequence
    numbers as duplicates (`seq_reused`) and kept the lost sales' units for good. The same
    happened with the clock right when the hub wrote past the old watermark before its birth
    reached the shop."""
    await pair.settled()
    assert pair.hub is not None
    database = pair.hub.services.config.store.database
    saved = await asyncio.to_thread(backup, database, pair.folder / "backups")
    for i in range(6):
        await pair.hub_api("POST", "/api/stock/movements",
                           {"sku": "OAT-1", "qty": 1, "reason": "sale", "ref": f"lost-{i}"})
    await pair.settled()
    await pair.stop_hub()
    await asyncio.to_thread(restore, saved, database)
    conn = sqlite3.connect(pair.shop_db)  # the run the shop knows is an hour ahead of the clock
    conn.execute("UPDATE stores SET epoch = epoch + 3600000, born_epoch = born_epoch + 3600000 "
                 "WHERE store = ?", (pair.store,))
    conn.commit()
    conn.close()
    await pair.start_hub()
    for i in range(10):  # past the old watermark: the birth alone would not show a rewind
        await pair.hub_api("POST", "/api/stock/movements",
                           {"sku": "BAN-1", "qty": 1, "reason": "sale", "ref": f"new-{i}"})
    await wait_until(lambda: acked_to_the_end(pair), 30, "the shop to acknowledge every event")
    report = await pair.settled()
    assert report.exact and not report.unit_diff


async def test_orders_after_the_backup_are_asked_for_again(pair: SyncPair) -> None:
    """Why: after a restore the shop kept showing an order placed after the backup as accepted
    (the hub had never heard of it) and one cancelled after it as cancelled (the hub still held
    its stock): their commands were answered in the history the restore took away."""
    async def shop_state(order_id: str) -> str:
        return (await pair.shop_api("GET", f"/api/orders/{order_id}"))["state"]

    async def place() -> str:
        placed = await pair.shop_api("POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": [{"sku": "OAT-1", "qty": 2}]},
            expect=202)
        await wait_until(lambda: _is(shop_state(placed["id"]), "accepted"), 30, "accepted")
        return str(placed["id"])

    await pair.settled()  # the store has reported to the shop, which takes orders for it
    kept = await place()
    assert pair.hub is not None
    database = pair.hub.services.config.store.database
    saved = await asyncio.to_thread(backup, database, pair.folder / "backups")
    after = await place()
    await pair.shop_api("POST", f"/api/orders/{kept}/cancel", {"reason": "changed my mind"},
                        expect=(200, 202))
    await wait_until(lambda: _is(shop_state(kept), "cancelled"), 30, "the order cancelled")

    await pair.stop_hub()
    await asyncio.to_thread(restore, saved, database)
    await pair.start_hub()

    async def agreed() -> bool:
        """Both sides hold the cancel and the later order again."""
        hub_states = [(await pair.hub_api("GET", f"/api/orders/{order_id}", expect=(200, 404)))
                      .get("state") for order_id in (kept, after)]
        return hub_states == ["cancelled", "accepted"] == [
            await shop_state(kept), await shop_state(after)]

    await wait_until(agreed, 30, "the cancel and the later order asked for again")
    assert (await pair.settled()).exact
    stock = await pair.hub_api("GET", "/api/stock/OAT-1")
    view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
    assert stock["reserved"] == view["reserved"] == 2  # the later order's, not the cancelled


async def _is(state: Awaitable[str], wanted: str) -> bool:
    return await state == wanted
