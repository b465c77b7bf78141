"""A corrupt or forged sequence number far ahead of what the shop knows is refused with a dead
letter (``implausible_seq``) instead of being applied.

Why: an event numbered near 2**63 that named the shop's watermark as its ``prev`` was applied,
and the watermark moved along it over every real event to come: those were then ignored as
already applied, and their stock never reached the shop. A snapshot so numbered froze its SKU's
stock view (a view keeps the highest seq's numbers). The hub's side refuses acks and resyncs of
seqs it never sent (tests/sync/test_resync.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from sync import messages
from sync.envelope import MAX_SEQ, build, decode
from sync.metrics import SyncMetrics
from sync.mqtt_client import BrokerSettings, Incoming
from sync.shop.link import LinkSettings, ShopLink
from sync.shop.store import (
    MAX_SEQ_AHEAD,
    DeadItem,
    EventItem,
    ShopStore,
    SnapshotItem,
    StateItem,
)
from sync.topics import StoreTopics
from tests.sync.test_shop_rewind import STORE, birth, sale

TOPICS = StoreTopics("retail", STORE)


@pytest.fixture
def shop(tmp_path: Path) -> ShopStore:
    store = ShopStore(tmp_path / "shop.db")
    store.create_schema()
    store.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 11))], 1.0)
    return store


def watermark(shop: ShopStore) -> int:
    return int(shop._conn().execute("SELECT watermark FROM stores").fetchone()[0])


def dead_letters(shop: ShopStore) -> list[tuple[str, str]]:
    return shop._conn().execute("SELECT topic, reason FROM dead_letters").fetchall()


def far_sale(seq: int, prev: int) -> EventItem:
    item = sale(1, seq, 0)
    return EventItem(msgspec.structs.replace(item.envelope, prev=prev), item.data,
                     topic=TOPICS.event("stock"))


@pytest.mark.parametrize("seq", [10 + MAX_SEQ_AHEAD + 1, MAX_SEQ - 1])
def test_an_event_far_ahead_is_a_dead_letter_and_the_real_ones_go_on(
        shop: ShopStore, seq: int) -> None:
    outcome = shop.apply_batch([far_sale(seq, prev=10)], 2.0)  # names the watermark as prev
    assert outcome.dead == ["implausible_seq"]
    assert dead_letters(shop) == [(TOPICS.event("stock"), "implausible_seq")]
    assert watermark(shop) == 10
    shop.apply_batch([sale(1, 11, 89)], 3.0)
    assert watermark(shop) == 11
    [row] = shop.stock(STORE, "BAN-1")
    assert (row.on_hand, row.seq) == (89, 11)


def test_an_event_within_reach_of_what_the_state_said_is_applied(shop: ShopStore) -> None:
    """A store's state says how far it has written (a shop database started afresh after the
    store had written millions): events up to MAX_SEQ_AHEAD past that are real."""
    far = 10 + 2 * MAX_SEQ_AHEAD
    assert shop.apply_batch([far_sale(far, 10)], 2.0).dead == ["implausible_seq"]
    shop.apply_batch([birth(1, far - 1, 10)], 3.0)
    assert shop.apply_batch([far_sale(far, far - 1)], 4.0).dead == []


def test_a_snapshot_far_ahead_is_a_dead_letter_and_does_not_freeze_the_view(
        shop: ShopStore) -> None:
    seq = 10 + MAX_SEQ_AHEAD + 1
    snap = messages.StockSnapshot(sku="BAN-1", on_hand=7, reserved=0, available=7, seq=seq)
    env = decode(build(store=STORE, epoch=1, seq=seq, type_=messages.SNAPSHOT, ts=0.0,
                       data=snap), 65536)
    outcome = shop.apply_batch([SnapshotItem(env, snap, TOPICS.snapshot("BAN-1"))], 2.0)
    assert outcome.dead == ["implausible_seq"]
    shop.apply_batch([sale(1, 11, 89)], 3.0)
    [row] = shop.stock(STORE, "BAN-1")
    assert (row.on_hand, row.seq) == (89, 11)


def link(shop: ShopStore) -> ShopLink:
    return ShopLink(shop, BrokerSettings("127.0.0.1", 1, "shop"), LinkSettings(),
                    clock=time.time, sleep=asyncio.sleep,
                    metrics=SyncMetrics(CollectorRegistry(), "shop"),
                    on_stock=lambda *_: None)


def test_an_event_not_after_its_prev_is_a_dead_letter(shop: ShopStore) -> None:
    movement = sale(1, 11, 89).data
    for prev in (11, 12):
        payload = build(store=STORE, epoch=1, seq=11, type_=messages.MOVEMENT, ts=0.0,
                        data=movement, prev=prev)
        item = link(shop)._item(Incoming(TOPICS.event("stock"), payload, False), 1.0)
        assert isinstance(item, DeadItem) and item.letter.reason == "implausible_seq"


def test_a_state_acknowledging_past_its_last_seq_is_a_dead_letter(shop: ShopStore) -> None:
    """Taken, it moved the watermark to its ``acked_seq`` and the real events after were
    ignored as applied."""
    state = messages.StoreState(state="online", epoch=1, last_seq=11, acked_seq=MAX_SEQ - 1)
    payload = build(store=STORE, epoch=1, seq=11, type_=messages.STATE, ts=0.0, data=state)
    item = link(shop)._item(Incoming(TOPICS.state, payload, True), 1.0)
    assert isinstance(item, DeadItem) and item.letter.reason == "implausible_seq"
    good = messages.StoreState(state="online", epoch=1, last_seq=11, acked_seq=10)
    payload = build(store=STORE, epoch=1, seq=11, type_=messages.STATE, ts=0.0, data=good)
    assert isinstance(link(shop)._item(Incoming(TOPICS.state, payload, True), 1.0), StateItem)
    # a run that began past where it stands would keep events the shop must hand back
    begun = messages.StoreState(state="online", epoch=1, last_seq=11, acked_seq=10,
                                inherited_seq=12)
    payload = build(store=STORE, epoch=1, seq=11, type_=messages.STATE, ts=0.0, data=begun)
    item = link(shop)._item(Incoming(TOPICS.state, payload, True), 1.0)
    assert isinstance(item, DeadItem) and item.letter.reason == "implausible_seq"


def test_a_store_that_stops_telling_its_limit_gets_acks_without_the_shops(
        shop: ShopStore) -> None:
    """Why: a hub rolled back to a version from before the limits were told kept its entry,
    and every ack carried the shop's limit, which such a hub refuses as an unknown field: its
    outbox was never trimmed until the shop restarted."""
    shop_link = link(shop)

    def online(limit: int | None) -> None:
        state = messages.StoreState(state="online", epoch=1, last_seq=11, acked_seq=10,
                                    max_payload_bytes=limit)
        payload = build(store=STORE, epoch=1, seq=11, type_=messages.STATE, ts=0.0,
                        data=state)
        assert isinstance(shop_link._item(Incoming(TOPICS.state, payload, True), 1.0),
                          StateItem)

    online(4096)
    assert shop_link.store_limits == {STORE: 4096}
    online(None)
    assert shop_link.store_limits == {}
