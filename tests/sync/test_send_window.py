"""The send window against a shop that stops acknowledging while its broker session lives on
(a stopped process, a stuck database): what the broker queues for it stays near one window."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hub.clock import ManualClock
from hub.inventory import MovementIn
from sync import messages
from sync.envelope import build
from sync.topics import StoreTopics
from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import STORE, RawClient, SyncPair, wait_until

WINDOW = 50


def _seqs(shop: RawClient) -> list[int]:
    """The seqs of the stock events ``shop`` received, in arrival order (copies included)."""
    return [json.loads(m.payload)["seq"] for m in list(shop.received)
            if m.topic.endswith("/events/stock")]


async def test_a_shop_that_never_acks_is_not_sent_the_window_again_and_again(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: with the shop stopped (its broker session alive) the hub sent its window of 1,000
    events, then the same 1,000 again every ack_timeout_s: the broker queued 2,000 and more for
    a shop that could take none of them (mosquitto keeps 1,000 per client by default).

    The hub runs on a held clock moved by the test: a minute passes, thirty ack timeouts."""
    clock = ManualClock()
    pair = SyncPair(tmp_path, mosquitto)
    shop = RawClient(mosquitto.port, "stalled-shop")  # receives, never acks
    try:
        assert shop.subscribe(StoreTopics("retail", STORE).event("stock.movement")) == [1]
        hub = await pair.start_hub(clock=clock, send_window=WINDOW)
        await pair.import_catalog()
        svc = hub.services
        for n in range(4 * WINDOW):
            await svc.db.write(svc.inventory.record,
                               MovementIn(sku="BAN-1", qty=1, reason="sale", ref=f"s-{n}"))
        assert svc.sync is not None
        agent = svc.sync.agent
        sent = agent.metrics.sent.labels("stock")
        await wait_until(lambda: len(_seqs(shop)) >= WINDOW, what="the first window")

        start = clock.monotonic()

        def a_minute_passed() -> bool:
            clock.advance(0.5)
            return clock.monotonic() - start >= 60

        await wait_until(a_minute_passed, what="a minute of the hub's clock")
        await wait_until(lambda: len(_seqs(shop)) == sent._value.get(),  # noqa: SLF001
                         what="the shop to receive all the hub sent")
        got = _seqs(shop)
        assert len(got) <= WINDOW + WINDOW // 2, f"{len(got)} events queued for a stalled shop"
        assert got[0] == agent.acked + 1  # every replay began where the shop stands

        # The shop comes back having lost an event: it acks the nine before it. The hub goes
        # on from there at once, with its whole window, without waiting for another timeout.
        lost = got[9] + 1
        ack = build(store=STORE, epoch=agent.epoch, seq=lost - 1, type_=messages.ACK,
                    ts=clock.now(), data=messages.Ack(acked_seq=lost - 1))
        assert shop.publish(StoreTopics("retail", STORE).ack, ack) == 0
        await wait_until(lambda: set(range(lost, lost + WINDOW)) <= set(_seqs(shop)[len(got):]),
                         what="the lost event and a whole window after the ack")
    finally:
        shop.close()
        await pair.close()


def _snapshots(shop: RawClient) -> int:
    return sum(1 for m in list(shop.received) if "/snapshot/" in m.topic)


async def test_a_large_catalogues_snapshots_go_half_a_window_at_a_time(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Why: a store of 10,000 products published every snapshot at once; the broker's queue
    for the shop (1,000 by default) overflowed and dropped the events among them too, and the
    shop waited an ack timeout for them each time."""
    clock = ManualClock()
    pair = SyncPair(tmp_path, mosquitto)
    shop = RawClient(mosquitto.port, "snapshot-reader")
    try:
        assert shop.subscribe(StoreTopics("retail", STORE).snapshot("+")) == [1]
        hub = await pair.start_hub(clock=clock, send_window=WINDOW)
        svc = hub.services
        rows = [(n, {"sku": f"SKU-{n:03}", "names": {"en": f"Product {n}"}, "stock": 5})
                for n in range(1, 3 * WINDOW + 1)]
        assert not (await svc.db.write(svc.catalog.import_rows, rows, pair.folder)).rejected
        assert svc.sync is not None
        agent = svc.sync.agent
        await wait_until(lambda: agent.metrics.connected._value.get() == 1,  # noqa: SLF001
                         what="the hub connected")
        await asyncio.sleep(0.3)  # its snapshot task is waiting on the held clock
        agent.refresh_snapshots()
        clock.advance(0.11)  # the next snapshot interval
        await wait_until(lambda: _snapshots(shop) >= WINDOW // 2, what="the first snapshots")
        await asyncio.sleep(0.3)  # the clock is held: no more come
        assert _snapshots(shop) == WINDOW // 2
        # (review) a product sold during the pass is sent in the next interval, not after it
        last = f"SKU-{3 * WINDOW:03}"
        await svc.db.write(svc.inventory.record, MovementIn(sku=last, qty=-1, reason="sale"))
        for step in range(1, 6):
            clock.advance(0.11)
            await wait_until(lambda s=step: _snapshots(shop) >= min((s + 1) * WINDOW // 2,
                                                                    3 * WINDOW),
                             what=f"snapshots after {step} s")
            if step == 1:
                sold = [json.loads(m.payload)["data"] for m in list(shop.received)
                        if m.topic.endswith(f"/{last}")]
                assert [d["on_hand"] for d in sold] == [4]
        assert _snapshots(shop) == 3 * WINDOW  # each product once
    finally:
        shop.close()
        await pair.close()
