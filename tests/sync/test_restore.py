"""A hub restored from a backup starts a new epoch; the shop notices the rewind and its stock view
comes to equal the restored ledger exactly, with the sales made after the backup gone from both."""

from __future__ import annotations

import asyncio

from hub.backup import backup, restore
from tests.sync.conftest import SyncPair


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

    report = await pair.settled()
    assert report.exact
    shop_view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
    assert shop_view["on_hand"] == start - 5, "the sales after the backup are gone from the view"
    assert await epoch(pair) > epoch_before

    # New movements after the restore reuse sequence numbers of the lost history; the shop must
    # apply them as new ones, not skip them as already seen.
    await pair.hub_api("POST", "/api/stock/movements",
                       {"sku": "OAT-1", "qty": 3, "reason": "receipt", "ref": "after-restore"})
    await pair.settled()
    shop_view = await pair.shop_api("GET", f"/api/stores/{pair.store}/stock/OAT-1")
    assert shop_view["on_hand"] == start - 5 + 3
