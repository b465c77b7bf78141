"""Nothing is published over ``max_payload_bytes``, and the broker's packet limit follows it.

Why: a command over a store's limit was published anyway. The store could only dead-letter it
(and over twice the limit plus 64 KiB the broker dropped it without a trace), while the shop,
waiting for an answer that never came, sent it again for ever; an outbox event over the shop's
limit broke the shop's chain of events, so the store sent the window again for ever. Each end
now refuses such a message where it is made (the shop's API: 413), and one already queued is
recorded as failed, once, while the rest goes on in order. The generated mosquitto config had
a constant ``max_packet_size`` that a raised ``max_payload_bytes`` did not move.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from hub.outbox import enqueue
from hub.services import Services
from sync.broker_config import BrokerConnection, max_packet_size
from sync.broker_setup import BrokerPlan, BrokerSetupError, write_broker_config
from sync.envelope import DEFAULT_MAX_PAYLOAD_BYTES
from sync.messages import MOVEMENT, STORE_RECOVER
from sync.shop.store import ShopStore
from sync.topics import StoreTopics
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.sync.conftest import RawClient, SyncPair, applied, wait_until
from tests.sync.test_bad_input import metric
from tests.sync.test_shop_api import call

LIMIT = 1024  # the least max_payload_bytes either end accepts
#: 30 lines of 40-character SKUs: about 1.6 KB as a command, under every HTTP limit.
LONG_LINES = [{"sku": f"SKU-{i:02d}-" + "X" * 33, "qty": 1} for i in range(30)]


async def _pair(tmp_path: Path, broker: Mosquitto, **shop: Any) -> SyncPair:
    """A hub and a shop that both read and send at most ``LIMIT`` bytes a message (the shop's
    limit overridable: ``shop``), the catalogue imported and the store reported."""
    pair = SyncPair(tmp_path, broker)
    await pair.start_hub(max_payload_bytes=LIMIT)
    await pair.import_catalog()
    await pair.start_shop(**{"max_payload_bytes": LIMIT, **shop})
    await pair.reported()
    return pair


async def test_the_shop_refuses_a_command_too_large_for_the_store_where_it_is_made(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """An order with too many lines, a cancel with too long a reason: 413 naming the size and
    the limit, with what to do instead; nothing stored, nothing sent. One that fits goes."""
    pair = await _pair(tmp_path, mosquitto)
    try:
        status, body = await call(pair, "POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": LONG_LINES})
        assert status == 413, body
        error = body["error"]
        assert error["code"] == "too_large"
        [detail] = error["details"]
        size, limit = detail["size"], detail["limit"]
        assert detail["field"] == "lines" and limit == LIMIT and size > LIMIT
        assert f"{size} bytes" in error["message"] and f"{LIMIT} bytes" in error["message"]
        assert "order.place" in error["message"] and "split the order" in error["message"]
        assert pair.shop_sql("SELECT count(*) FROM orders") == [(0,)]
        assert pair.shop_sql("SELECT count(*) FROM commands") == [(0,)]

        status, placed = await call(pair, "POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": [{"sku": "OAT-1", "qty": 1}]})
        assert status == 202, placed
        await wait_until(lambda: _order_state(pair, placed["id"], "accepted"),
                         what="the order that fits accepted by the store")
        status, body = await call(pair, "POST", f"/api/orders/{placed['id']}/cancel",
                                  {"reason": "é" * 200})  # 6 bytes each as JSON
        assert status == 413 and body["error"]["code"] == "too_large", body
        assert "shorter reason" in body["error"]["message"]
        assert pair.shop_sql("SELECT type FROM commands") == [("order.place",)]
    finally:
        await pair.close()


async def test_opting_out_is_never_refused_for_the_name_given_at_opt_in(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: opting out and withdrawing sent the display name given at opt-in, so once the limit
    was lowered a long name made them a 413 (its advice: opt in again, which sends the key back)
    while the store kept the key. Without consent the store is sent no name: it forgets it with
    the key, and nothing the member wrote decides the command's size."""
    pair = SyncPair(tmp_path, mosquitto)  # both ends at the default limit first
    await pair.start_hub()
    await pair.start_shop()
    await pair.reported()
    try:
        status, answer = await call(pair, "POST", "/api/members/m-1/opt-in",
                                    {"store": pair.store, "display_name": "😀" * 100})
        assert status == 202, answer
        assert pair.hub is not None
        await wait_until(lambda: pair.hub.services.db.query(
            "SELECT 1 FROM members WHERE id = 'm-1' AND beacon_key IS NOT NULL"),
            what="the key at the store")
        await pair.stop_shop()
        await pair.start_shop(max_payload_bytes=LIMIT)  # the name alone is over it now
        for path, body in (("/api/members/m-1/opt-out", {"store": pair.store}),
                           ("/api/members/m-1/withdraw", None)):
            status, answer = await call(pair, "POST", path, body)
            assert status == 202, answer
        await wait_until(lambda: pair.shop_sql(
            "SELECT count(*) FROM commands WHERE status = 'applied' AND data LIKE ?",
            '%"consent":false%') == [(2,)], what="the opt-out and the withdrawal applied")
        member = pair.hub.services.members.get("m-1")
        assert (member.consent, member.has_key, member.display_name) == (False, False, "")
    finally:
        await pair.close()


async def test_a_queued_command_over_the_limit_is_failed_once_and_the_rest_go_on(
        tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    """Queued while the shop's limit was higher (512 KiB), sent after it was lowered: rejected
    with the reason, its order shown rejected, one dead letter and one log line, never sent;
    the command queued after it reaches the store."""
    caplog.set_level(logging.ERROR, logger="sync.shop.link")
    pair = await _pair(tmp_path, mosquitto, max_payload_bytes=DEFAULT_MAX_PAYLOAD_BYTES)
    try:
        await pair.stop_shop()
        queued = ShopStore(pair.shop_db)  # as the shop before the limit was lowered
        try:
            big = queued.place_order("o-big", pair.store, "m-1", LONG_LINES, time.time())
            queued.opt_in("m-2", pair.store, "Ann", True, "ab" * 16, time.time())
        finally:
            queued.close()
        assert big.command is not None

        shop = await pair.start_shop(max_payload_bytes=LIMIT)
        await wait_until(lambda: pair.shop_sql("SELECT status FROM commands WHERE type = ?",
                                               "member.upsert") == [("applied",)],
                         what="the opt-in after it applied by the store")
        assert pair.hub is not None
        assert pair.hub.services.members.get("m-2").consent is True
        [(status, reason, attempts)] = pair.shop_sql(
            "SELECT status, reason, attempts FROM commands WHERE id = ?", big.command.id)
        assert (status, attempts) == ("rejected", 0)
        assert f"over the {LIMIT} bytes" in reason and "split the order" in reason
        order = (await call(pair, "GET", "/api/orders/o-big"))[1]
        assert (order["state"], order["reason_code"]) == ("rejected", "invalid_order")
        assert order["reason"] == reason
        [(topic, dead_reason, size)] = pair.shop_sql(
            "SELECT topic, reason, size FROM dead_letters")
        assert (topic, dead_reason) == (StoreTopics("retail", pair.store).cmd, "too_large")
        assert size > LIMIT
        await applied(shop)
        text = (await pair.http.get(f"{shop.url}/metrics")).content
        assert metric((await text.read()).decode(), "shop_sync_dead_letters_total",
                      "too_large") == 1
        lines = [r.getMessage() for r in caplog.records if r.name == "sync.shop.link"]
        assert len(lines) == 1 and big.command.id in lines[0], lines
        # The store never saw it: not even as a dead letter of its own.
        svc = pair.hub.services
        assert await svc.db.read(svc.db.query, "SELECT reason FROM sync_dead_letters") == []
    finally:
        await pair.close()


async def test_an_outbox_event_over_the_limit_is_dead_lettered_once_and_the_stream_goes_on(
        tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    """The events around it reach the shop and are acknowledged (which deletes it too); a
    replay of the outbox (the shop's resync on its restart) does not record or log it again."""
    caplog.set_level(logging.ERROR, logger="sync.agent")
    pair = await _pair(tmp_path, mosquitto)
    assert pair.hub is not None
    svc = pair.hub.services

    def outbox() -> int:
        row = svc.db.query_one("SELECT count(*) AS n FROM outbox")
        assert row is not None
        return int(row["n"])

    async def dead_letters() -> list[tuple[str, str, int]]:
        rows = await svc.db.read(svc.db.query, "SELECT topic, reason, size FROM "
                                 "sync_dead_letters ORDER BY id")
        return [(r["topic"], r["reason"], r["size"]) for r in rows]

    def resyncs() -> int:
        row = svc.db.query_one("SELECT count(*) AS n FROM sync_inbox WHERE type = ?",
                               ("sync.resync",))
        assert row is not None
        return int(row["n"])

    big = "x" * 2000
    try:
        await svc.db.write(_reminders, svc, "first", big, "third")
        await wait_until(lambda: _shop_texts(pair) == ["first", "third"] and outbox() == 0, 20,
                         "the events around the large one applied and acknowledged")
        topic = StoreTopics("retail", pair.store).event("reminder")
        [letter] = await dead_letters()
        assert letter[:2] == (topic, "too_large") and letter[2] > LIMIT

        # The last row of the outbox, nothing after it to ack it away: met on every replay.
        await svc.db.write(_reminders, svc, big)
        await wait_until(lambda: _count(dead_letters, 2), 20, "the second large one refused")
        before = resyncs()
        await pair.stop_shop()
        await pair.start_shop(max_payload_bytes=LIMIT)  # asks for a resync: a replay
        await wait_until(lambda: resyncs() > before, 20, "the resync applied")
        await svc.db.write(_reminders, svc, "fourth")
        await wait_until(lambda: _shop_texts(pair) == ["first", "third", "fourth"]
                         and outbox() == 0, 20, "the event after it applied and both acknowledged")
        assert len(await dead_letters()) == 2
        lines = [r.getMessage() for r in caplog.records
                 if r.name == "sync.agent" and "not sent" in r.getMessage()]
        assert len(lines) == 2, lines
        assert metric(svc.metrics.render().decode(), "hub_sync_dead_letters_total",
                      "too_large") == 2
        assert pair.shop_sql("SELECT count(*) FROM dead_letters") == [(0,)]
    finally:
        await pair.close()


async def test_a_refused_newest_event_is_not_counted_as_waiting_to_be_sent(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: the pending-outbox gauge counted a refused row, and when it was the newest one
    nothing after it came for the shop to ack it away: the gauge, and its age, stayed up for
    good and a store's alert on a stuck outbox fired for ever. It stays in the outbox (the
    shop's ack of a later row deletes it) but is no longer counted."""
    pair = await _pair(tmp_path, mosquitto)
    assert pair.hub is not None
    svc = pair.hub.services

    def pending() -> tuple[float, ...]:
        text = svc.metrics.render().decode()
        return tuple(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith(("hub_sync_outbox_pending ",
                                         "hub_sync_outbox_oldest_pending_seconds ")))

    def big() -> None:
        with svc.db.transaction() as tx:
            enqueue(tx, svc.bus, "reminder", {"member": "m-1", "text": "x" * 2000},
                    svc.clock.now() - 3600)

    try:
        await wait_until(lambda: pending() == (0.0, 0.0), 20, "the catalogue's events acked")
        await svc.db.write(big)
        await wait_until(lambda: svc.db.query("SELECT 1 FROM sync_dead_letters"), 20,
                         "the large event refused")
        assert svc.db.query("SELECT count(*) AS n FROM outbox") == [{"n": 1}]  # kept
        assert pending() == (0.0, 0.0)
    finally:
        await pair.close()


async def test_the_generated_broker_config_follows_max_payload_bytes(tmp_path: Path) -> None:
    """The clients' formula, from one function: a broker set up for 2 MiB messages delivers a
    3 MiB one (its old constant, 1 MiB, dropped it), and none over twice that plus 64 KiB."""
    assert max_packet_size(DEFAULT_MAX_PAYLOAD_BYTES) == BrokerConnection().broker_settings(
        "any", DEFAULT_MAX_PAYLOAD_BYTES).max_packet_size
    default = write_broker_config(BrokerPlan(folder=tmp_path / "default", stores=["s1"]))
    assert f"\nmax_packet_size {max_packet_size(DEFAULT_MAX_PAYLOAD_BYTES)}\n" in \
        default.config.read_text()
    with pytest.raises(BrokerSetupError, match="max_payload_bytes 100 is outside"):
        write_broker_config(BrokerPlan(folder=tmp_path / "bad", stores=["s1"],
                                       max_payload_bytes=100))

    raised = 2 * 1024 * 1024
    port = free_port()
    files = write_broker_config(BrokerPlan(folder=tmp_path / "raised", stores=["s1"],
                                           port=port, bind="127.0.0.1", persistence=False,
                                           max_payload_bytes=raised))
    assert f"\nmax_packet_size {max_packet_size(raised)}\n" in files.config.read_text()
    broker = Mosquitto(files.config.parent, config_text=files.config.read_text(), port=port)
    broker.start()
    password = files.credentials["s1"].read_text().strip()
    reader = RawClient(port, "s1-reader", username="s1", password=password)
    writer = RawClient(port, "s1", username="s1", password=password)
    try:
        topic = StoreTopics("retail", "s1").snapshot("BIG")  # one s1 may write and read
        assert reader.subscribe(topic) == [1]
        assert writer.publish(topic, b"y" * (3 * 1024 * 1024)) == 0
        await wait_until(lambda: len(reader.received) == 1, 10, "the 3 MiB message delivered")
        assert len(reader.received[0].payload) == 3 * 1024 * 1024
    finally:
        writer.close()
        reader.close()
        broker.kill()


def _reminders(svc: Services, *texts: str) -> None:
    """Queue a reminder event per text in the hub's outbox (run on the database's writer)."""
    with svc.db.transaction() as tx:
        for text in texts:
            enqueue(tx, svc.bus, "reminder", {"member": "m-1", "text": text}, svc.clock.now())


def _shop_texts(pair: SyncPair) -> list[str]:
    """The texts of the reminders the shop has applied, in the store's order."""
    return [json.loads(data)["text"] for (data,) in pair.shop_sql(
        "SELECT data FROM reminders ORDER BY seq")]


async def _count(read: Any, count: int) -> bool:
    return len(await read()) >= count


async def _order_state(pair: SyncPair, order_id: str, state: str) -> bool:
    return (await call(pair, "GET", f"/api/orders/{order_id}"))[1]["state"] == state


async def test_an_event_over_the_shops_lower_limit_waits_until_the_limits_match(
        tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    """Why: nothing compared the hub's limit with the shop's. An event between the two was
    sent, the shop could only dead-letter it, its chain stopped there and the hub sent the
    window again for ever, with no word of which setting to change. The shop's acks now carry
    its limit: the hub holds such an event back, in order, says which settings differ, and
    sends it once the shop's limit is raised. Nothing is lost."""
    caplog.set_level(logging.WARNING, logger="sync.agent")
    pair = await _pair(tmp_path, mosquitto)  # both at LIMIT
    assert pair.hub is not None
    await pair.stop_hub()
    await pair.start_hub(max_payload_bytes=4 * LIMIT)
    await pair.reported()
    svc = pair.hub.services

    try:
        await wait_until(lambda: pair.hub.services.sync.agent.shop_limit == LIMIT, 20,
                         "the shop's limit heard in its ack")
        await svc.db.write(_reminders, svc, "x" * 2000, "after")
        await wait_until(lambda: any("held back" in r.getMessage() for r in caplog.records),
                         20, "the large event held back")
        assert _shop_texts(pair) == []
        assert pair.shop_sql("SELECT count(*) FROM dead_letters") == [(0,)]
        messages = [r.getMessage() for r in caplog.records if r.name == "sync.agent"]
        assert any("sync.max_payload_bytes is 1024" in m and "4096" in m for m in messages)
        await pair.stop_shop()
        await pair.start_shop(max_payload_bytes=4 * LIMIT)
        await wait_until(lambda: _shop_texts(pair) == ["x" * 2000, "after"], 20,
                         "both events applied once the limits match")
    finally:
        await pair.close()


async def test_a_command_over_the_stores_lower_limit_stays_pending_until_it_is_raised(
        tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    """The other way round: the store's state carries its limit, and the shop keeps a command
    that fits its own but not the store's pending, unsent, with a line naming both settings,
    rather than send it for the store to dead-letter again and again."""
    caplog.set_level(logging.WARNING, logger="sync.shop.link")
    pair = await _pair(tmp_path, mosquitto, max_payload_bytes=4 * LIMIT)
    assert pair.hub is not None
    try:
        assert pair.shop is not None
        await wait_until(lambda: pair.shop.shop.link.store_limits.get(pair.store) == LIMIT, 20,
                         "the store's limit heard in its state")
        status, placed = await call(pair, "POST", "/api/orders", {
            "store": pair.store, "member": "m-1", "lines": LONG_LINES})
        assert status == 202, placed
        await wait_until(lambda: any("held back" in r.getMessage() for r in caplog.records),
                         20, "the command held back")
        assert pair.shop_sql("SELECT status, sent_at FROM commands") == [("pending", None)]
        svc = pair.hub.services
        assert await svc.db.read(svc.db.query, "SELECT reason FROM sync_dead_letters") == []
        assert any("[mqtt] max_payload_bytes is 1024" in r.getMessage()
                   for r in caplog.records if r.name == "sync.shop.link")
        await pair.stop_hub()
        await pair.start_hub(max_payload_bytes=4 * LIMIT)
        await wait_until(lambda: pair.shop_sql("SELECT status FROM commands") == [("applied",)],
                         30, "the order applied once the store's limit is raised")
    finally:
        await pair.close()


async def test_recovery_batches_wait_in_order_behind_one_held_back(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: a store.recover over the store's lower limit was held back while the later, smaller
    batches went: the store applied a lost history out of order (an order's `collected` before
    its `ready` is skipped, its stock left reserved)."""
    pair = await _pair(tmp_path, mosquitto, max_payload_bytes=4 * LIMIT)
    assert pair.hub is not None and pair.shop is not None
    try:
        link, store = pair.shop.shop.link, pair.shop.shop.store
        await wait_until(lambda: link.store_limits.get(pair.store) == LIMIT, 20,
                         "the store's limit heard in its state")

        def sale(seq: int) -> str:
            return json.dumps({"seq": seq, "type": MOVEMENT, "ts": 1.0, "data": {
                "movement_id": f"lost-{seq}", "sku": "OAT-1", "qty": -1, "reason": "sale",
                "ref": f"till-1:{seq}"}})

        def queue() -> None:  # as a rewind queues them: the first over the store's limit
            with store._tx() as conn:
                store._recover_command(conn, pair.store, 1, [(s, sale(s)) for s in range(2, 9)],
                                       1.0)
                store._recover_command(conn, pair.store, 1, [(9, sale(9))], 1.0)

        await store.write(queue)
        session = link.client.session
        assert session is not None
        await link._send_commands(session, await store.read(store.pending_commands, None, None))
        assert pair.shop_sql("SELECT status, sent_at FROM commands WHERE type = ? ORDER BY seq",
                             STORE_RECOVER) == [("pending", None), ("pending", None)]
        await pair.stop_hub()
        await pair.start_hub(max_payload_bytes=4 * LIMIT)
        await wait_until(lambda: pair.shop_sql(
            "SELECT status FROM commands WHERE type = ?", STORE_RECOVER) == [
            ("applied",), ("applied",)], 30, "both batches applied once the limits match")
        db = pair.hub.services.db
        refs = await db.read(db.query, "SELECT ref FROM stock_ledger WHERE ref LIKE 'till-1:%' "
                                       "ORDER BY seq")
        assert [row["ref"] for row in refs] == [f"till-1:{seq}" for seq in range(2, 10)]
    finally:
        await pair.close()
