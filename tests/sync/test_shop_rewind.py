"""The shop's rewind after a restore, whatever order the new run's messages reach its database in:
a birth sharing a batch with the events after it, or events of the new run applied (by another
shop instance) before its birth."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sync import messages
from sync.envelope import build, decode, decode_data
from sync.ports import DeadLetter
from sync.shop.link import EVENT_SCHEMAS
from sync.shop.store import EventItem, Item, ShopStore, StateItem

STORE = "store-1"


def birth(epoch: int, last_seq: int, acked_seq: int, inherited_seq: int | None = None,
          max_payload_bytes: int | None = None) -> StateItem:
    state = messages.StoreState(state="online", epoch=epoch, last_seq=last_seq,
                                acked_seq=acked_seq, inherited_seq=inherited_seq,
                                max_payload_bytes=max_payload_bytes)
    env = decode(build(store=STORE, epoch=epoch, seq=last_seq, type_=messages.STATE, ts=0.0,
                       data=state), 65536)
    return StateItem(env, state)


def sale(epoch: int, seq: int, on_hand: int) -> EventItem:
    movement = messages.Movement(movement_id=f"m-{epoch}-{seq}", seq=seq, sku="BAN-1", qty=-1,
                                 reserved_qty=0, reason="sale", ts=float(seq), on_hand=on_hand,
                                 reserved=0, available=on_hand)
    env = decode(build(store=STORE, epoch=epoch, seq=seq, type_="stock.movement", ts=float(seq),
                       data=movement, prev=seq - 1), 65536)
    return EventItem(env, movement)


def order_event(epoch: int, seq: int, order_id: str, state: str, **fields: object) -> EventItem:
    """An order.status as the hub sends it, decoded as the shop's link does; a hub from before
    reason codes sends no ``reason_code``."""
    data = {"id": order_id, "member_id": "m-1", "state": state, "created_at": 1.0,
            "updated_at": float(seq), "pickup_by": None,
            "lines": [{"sku": "BAN-1", "qty": 1}], **fields}
    env = decode(build(store=STORE, epoch=epoch, seq=seq, type_=messages.ORDER_STATUS,
                       ts=float(seq), data=data, prev=seq - 1), 65536)
    return EventItem(env, decode_data(env, EVENT_SCHEMAS[messages.ORDER_STATUS]))


def new_on_hand(seq: int) -> int:
    """Stock after the restored run's sale ``seq`` (other numbers than the lost run's)."""
    return 50 - (seq - 13)


@pytest.fixture
def shop(tmp_path: Path) -> ShopStore:
    store = ShopStore(tmp_path / "shop.db")
    store.create_schema()
    # The first run: born, then 20 sales, all applied (watermark 20).
    store.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 21))], 1.0)
    return store


def rows(store: ShopStore, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def assert_followed_the_restore(store: ShopStore) -> None:
    """Restored at seq 13, then four new sales: the shop keeps 1-17 of the new timeline only."""
    assert rows(store, "SELECT max(seq), count(*) FROM applied") == [(17, 17)]
    assert rows(store, "SELECT movement_id FROM movements WHERE seq = 14") == [("m-2-14",)]
    assert rows(store, "SELECT watermark FROM stores") == [(17,)]
    assert rows(store, "SELECT on_hand, seq FROM stock_view") == [(new_on_hand(17), 17)]
    assert ("rewind",) in rows(store, "SELECT kind FROM drift")


@pytest.mark.parametrize("batches", [
    pytest.param([[birth(2, 13, 13), *(sale(2, seq, new_on_hand(seq)) for seq in range(14, 18))]],
                 id="birth-and-events-in-one-batch"),
    pytest.param([[birth(2, 13, 13)], [sale(2, seq, new_on_hand(seq)) for seq in range(14, 18)]],
                 id="birth-then-events"),
])
def test_a_restored_store_is_rewound_when_its_birth_comes_with_its_events(
        shop: ShopStore, batches: list[list[Item]]) -> None:
    rewound = [shop.apply_batch(batch, 2.0).rewound for batch in batches]
    assert_followed_the_restore(shop)
    assert rewound[0] == {STORE}  # the batch that rewound says so, for the live stream


def test_a_restored_store_is_rewound_when_its_events_come_before_its_birth(
        shop: ShopStore) -> None:
    # Another shop instance got the first new event before anyone applied the birth: a newer
    # run's other event at seq 14 already says the history was cut back before it.
    early = shop.apply_batch([sale(2, 14, new_on_hand(14))], 2.0)
    assert early.applied == 1 and early.snapshots_wanted == {STORE} and early.rewound == {STORE}
    shop.apply_batch([birth(2, 13, 13)], 2.1)
    # The store sends again what was not acked (ack timeout).
    shop.apply_batch([sale(2, seq, new_on_hand(seq)) for seq in range(14, 18)], 2.2)
    assert_followed_the_restore(shop)


def test_a_restored_store_is_rewound_on_its_events_when_its_birth_says_nothing(
        shop: ShopStore) -> None:
    """Why: a restored store that wrote past the shop's watermark before its birth got there
    (a broker outage) announced a last seq above it, so the birth showed no rewind; its new
    events at the lost numbers were dropped as duplicates and the lost sales kept for good."""
    shop.apply_batch([sale(2, seq, new_on_hand(seq)) for seq in range(14, 26)], 2.0)
    shop.apply_batch([birth(2, 25, 13)], 2.1)
    assert rows(shop, "SELECT max(seq), count(*) FROM applied") == [(25, 25)]
    assert rows(shop, "SELECT movement_id FROM movements WHERE seq = 20") == [("m-2-20",)]
    assert rows(shop, "SELECT on_hand, seq FROM stock_view") == [(new_on_hand(25), 25)]


def test_a_birth_that_says_where_its_run_began_rewinds_once(shop: ShopStore) -> None:
    """Why: a hub restored at seq 13 that took a sale (its seq 14) before the shop heard it was
    born saying "last seq 14"; the shop kept the lost run's seq 14 as the store's, then the new
    sale at 14 rewound it a second time, and what the store had lost came back in two
    recoveries (staff saw two on Store health). The birth says where the run began."""
    shop.apply_batch([birth(2, 14, 0, inherited_seq=13)], 2.0)
    shop.apply_batch([sale(2, seq, new_on_hand(seq)) for seq in range(14, 18)], 2.1)
    assert_followed_the_restore(shop)
    assert rows(shop, "SELECT count(*) FROM drift WHERE kind = 'rewind'") == [(1,)]
    assert rows(shop, "SELECT min(seq), max(seq), count(DISTINCT command_id) FROM "
                      "rewound_events") == [(14, 20, 1)]
    # the run's own events that got there before its birth are the store's history
    again = ShopStore(shop.path.with_name("again.db"))
    again.create_schema()
    again.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 21))], 1.0)
    again.apply_batch([sale(2, 14, new_on_hand(14))], 2.0)
    again.apply_batch([birth(2, 15, 0, inherited_seq=13), sale(2, 15, new_on_hand(15))], 2.1)
    again.apply_batch([sale(2, seq, new_on_hand(seq)) for seq in range(16, 18)], 2.2)
    assert_followed_the_restore(again)
    assert rows(again, "SELECT count(*) FROM drift WHERE kind = 'rewind'") == [(1,)]


def test_an_older_runs_events_rewind_nothing_and_ask_for_an_ack(shop: ShopStore) -> None:
    """A store whose run is older than the shop's newest (a late message, or a store whose
    clock is behind): its other events at known numbers change nothing, and the shop acks at
    once so such a store learns of the newer run."""
    outcome = shop.apply_batch([sale(0, seq, 7) for seq in range(14, 18)], 2.0)
    assert outcome.applied == 0 and outcome.stale_runs == {STORE} and STORE in outcome.acks
    assert not outcome.rewound
    assert rows(shop, "SELECT count(*) FROM applied") == [(20,)]
    assert ("seq_reused",) in rows(shop, "SELECT kind FROM drift")
    assert ("rewind",) not in rows(shop, "SELECT kind FROM drift")


def test_a_retained_birth_of_the_current_run_rewinds_nothing(shop: ShopStore) -> None:
    outcome = shop.apply_batch([birth(1, 0, 0)], 2.0)  # the retained birth, heard again
    assert not outcome.rewound
    assert rows(shop, "SELECT watermark FROM stores") == [(20,)]
    assert ("rewind",) not in rows(shop, "SELECT kind FROM drift")


@pytest.mark.parametrize("inherited", [None, "given"])
def test_a_birth_heard_after_its_runs_own_events_rewinds_nothing(
        tmp_path: Path, inherited: str | None) -> None:
    """Why: a birth is published when the store connects, and the events it writes after it
    carry higher numbers; when the shop heard them first (the retained birth delivered after
    them, a new run's first events sent before the shop subscribed), the birth's lower
    "last seq" read as a restore. The shop set the run's own events aside, handed them back
    in a store.recover the store answered "already here", and showed a recovery on Store
    health that never happened. Run 1 here is the store's first ever, run 2 a plain restart."""
    shop = ShopStore(tmp_path / "shop.db")
    shop.create_schema()
    shop.apply_batch([sale(1, seq, 100 - seq) for seq in range(1, 6)], 1.0)
    outcome = shop.apply_batch([birth(1, 2, 0, 0 if inherited else None)], 1.1)
    shop.apply_batch([sale(2, seq, 100 - seq) for seq in range(6, 9)], 2.0)
    later = shop.apply_batch([birth(2, 5, 5, 5 if inherited else None)], 2.1)
    assert not outcome.rewound and not later.rewound
    assert rows(shop, "SELECT max(seq), count(*) FROM applied") == [(8, 8)]
    assert rows(shop, "SELECT watermark, born_epoch FROM stores") == [(8, 2)]
    assert rows(shop, "SELECT on_hand, seq FROM stock_view") == [(92, 8)]
    assert rows(shop, "SELECT count(*) FROM commands") == [(0,)]
    assert rows(shop, "SELECT count(*) FROM rewound_events") == [(0,)]
    assert ("rewind",) not in rows(shop, "SELECT kind FROM drift")


def test_a_database_from_before_births_were_recorded_keeps_its_epoch(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE stores (store TEXT PRIMARY KEY, epoch INTEGER NOT NULL DEFAULT 0, "
                 "last_seq INTEGER NOT NULL DEFAULT 0, acked_seq INTEGER NOT NULL DEFAULT 0, "
                 "watermark INTEGER NOT NULL DEFAULT 0, online INTEGER NOT NULL DEFAULT 0, "
                 "state_at REAL, seen_at REAL)")
    conn.execute("INSERT INTO stores (store, epoch, watermark) VALUES (?, 5, 20)", (STORE,))
    conn.commit()
    conn.close()
    store = ShopStore(path)
    store.create_schema()
    store.apply_batch([birth(5, 3, 3)], 1.0)  # a stale retained birth of the running epoch
    assert rows(store, "SELECT born_epoch, watermark FROM stores") == [(5, 20)]


def test_a_copy_with_a_nearer_predecessor_mends_the_chain(shop: ShopStore) -> None:
    """Why: on a starved machine the hub sent an event from a stale cursor, naming a predecessor
    too far back (21 after 1..20 with prev 5); the shop kept that copy and ignored the right one
    sent later as a duplicate, so its watermark stuck at 20 for good and nothing after it was
    acknowledged."""
    event = sale(1, 21, 79)

    def copy(prev: int) -> EventItem:  # the hub sends the outbox row again: the same id
        return EventItem(decode(build(store=STORE, epoch=1, seq=21, type_="stock.movement",
                                      ts=21.0, data=event.data, prev=prev,
                                      msg_id=event.envelope.id), 65536), event.data)

    out = shop.apply_batch([copy(5), sale(1, 22, 78)], 2.0)
    assert out.acks[STORE][1] == 20, "the broken link was followed"
    mended = shop.apply_batch([copy(20)], 3.0)
    assert mended.duplicates == 1 and mended.applied == 0  # not applied twice
    assert mended.acks[STORE][1] == 22
    assert rows(shop, "SELECT count(*) FROM applied") == [(22,)]


def test_a_restore_puts_each_orders_reason_code_back_with_its_state(tmp_path: Path) -> None:
    """The lost run rejected o-2 after the backup: restored, it is pending with no code again,
    while o-1, rejected before the backup, keeps its code."""
    shop = ShopStore(tmp_path / "shop.db")
    shop.create_schema()
    shop.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 11)),
                      order_event(1, 11, "o-1", "pending"),
                      order_event(1, 12, "o-1", "rejected", reason="not sold in this store: X",
                                  reason_code="not_sold_here"),
                      order_event(1, 13, "o-2", "pending"),
                      order_event(1, 14, "o-2", "rejected", reason="rejected by staff",
                                  reason_code="staff")], 1.0)
    assert shop.order("o-2", STORE)["reason_code"] == "staff"  # type: ignore[index]
    assert shop.apply_batch([birth(2, 13, 13)], 2.0).rewound == {STORE}
    restored = {order_id: shop.order(order_id, STORE) for order_id in ("o-1", "o-2")}
    assert {order_id: (o["state"], o["reason"], o["reason_code"])  # type: ignore[index]
            for order_id, o in restored.items()} == {
        "o-1": ("rejected", "not sold in this store: X", "not_sold_here"),
        "o-2": ("pending", None, None)}
    shop.apply_batch([order_event(2, 14, "o-2", "rejected", reason="not enough stock: BAN-1",
                                  reason_code="out_of_stock")], 3.0)
    assert shop.order("o-2", STORE)["reason_code"] == "out_of_stock"  # type: ignore[index]
    shop.close()


def test_an_order_status_from_a_hub_before_reason_codes_is_applied(shop: ShopStore) -> None:
    older = order_event(1, 21, "o-1", "rejected", reason="not enough stock: BAN-1")
    assert shop.apply_batch([older], 2.0).applied == 1
    order = shop.order("o-1", STORE)
    assert order is not None
    assert (order["state"], order["reason"], order["reason_code"]) == (
        "rejected", "not enough stock: BAN-1", None)
    assert [(h["state"], h["reason_code"]) for h in order["history"]] == [("rejected", None)]


def test_a_code_from_a_newer_hub_is_kept_not_refused(shop: ShopStore) -> None:
    """Why: the code was a closed list in the shop's message model, so an older shop would have
    refused a newer hub's whole order.status (the order never shown as rejected) for one code
    it did not know."""
    newer = order_event(1, 21, "o-1", "rejected", reason="the store is closing early",
                        reason_code="store_closing")
    assert shop.apply_batch([newer], 2.0).applied == 1
    order = shop.order("o-1", STORE)
    assert order is not None
    assert (order["state"], order["reason_code"]) == ("rejected", "store_closing")


def _recover_commands(shop: ShopStore) -> list[tuple[int, str]]:
    """(seq, data) of the store.recover commands the shop made."""
    conn = sqlite3.connect(shop.path)
    try:
        return conn.execute("SELECT seq, data FROM commands WHERE type = ? ORDER BY seq",
                            (messages.STORE_RECOVER,)).fetchall()
    finally:
        conn.close()


def test_recovery_batches_fit_the_limit_whatever_seq_their_commands_get(tmp_path: Path) -> None:
    """Why: a batch was sized with its command's seq as 0; with a five-digit seq a batch a few
    bytes under the limit came out over it, the rewind raised, and every retry of the batch
    failed the same way: the store's events stopped applying (2 % of limits tried)."""
    from sync.shop.store import PendingCommand

    for limit in range(2000, 2200, 3):
        shop = ShopStore(tmp_path / f"shop-{limit}.db", max_payload_bytes=limit)
        shop.create_schema()
        conn = sqlite3.connect(shop.path)
        conn.execute("INSERT INTO commands (seq, id, store, type, data, status, created_at) "
                     "VALUES (99998, 'earlier', ?, 'member.upsert', '{}', 'applied', 0)",
                     (STORE,))
        conn.commit()
        conn.close()
        shop.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 31))],
                         1.0)
        shop.apply_batch([birth(2, 5, 5)], 2.0)  # restored: 25 sales handed back
        made = _recover_commands(shop)
        assert sum(len(json.loads(data)["events"]) for _, data in made) == 25, limit
        for seq, data in made:
            command = PendingCommand(seq, "01" + "0" * 24, STORE, messages.STORE_RECOVER, data,
                                     0)
            assert len(command.largest_payload()) <= limit, (limit, seq)


def test_a_recovery_batch_holds_no_more_events_than_a_store_takes(tmp_path: Path) -> None:
    """Why: batches were closed by size alone; under a large max_payload_bytes one could carry
    more than the 5,000 events a store.recover may, and the store refused it whole."""
    shop = ShopStore(tmp_path / "shop.db", max_payload_bytes=64 * 1024 * 1024)
    shop.create_schema()
    lost = messages.MAX_RECOVERED_EVENTS + 10
    shop.apply_batch([birth(1, 0, 0),
                      *(sale(1, seq, 10_000 - seq) for seq in range(1, lost + 2))], 1.0)
    shop.apply_batch([birth(2, 1, 1)], 2.0)
    sizes = [len(json.loads(data)["events"]) for _, data in _recover_commands(shop)]
    assert sizes == [messages.MAX_RECOVERED_EVENTS, 10]


def test_recovery_batches_fit_the_restored_stores_lower_limit(tmp_path: Path) -> None:
    """Why: batches were cut to the shop's own max_payload_bytes; a store whose limit is lower
    had them held back, and the smaller later batches went ahead of them, so an order's
    `collected` could reach the store before its `ready` and be skipped."""
    from sync.shop.store import PendingCommand

    shop = ShopStore(tmp_path / "shop.db", max_payload_bytes=16 * 1024)
    shop.create_schema()
    shop.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 61))], 1.0)
    shop.apply_batch([birth(2, 5, 5, max_payload_bytes=2048)], 2.0)
    made = _recover_commands(shop)
    assert len(made) > 1 and sum(len(json.loads(data)["events"]) for _, data in made) == 55
    for seq, data in made:
        command = PendingCommand(seq, "01" + "0" * 24, STORE, messages.STORE_RECOVER, data, 0)
        assert len(command.largest_payload()) <= 2048, seq


def test_a_recovery_refused_before_it_is_sent_gives_its_events_that_outcome(
        tmp_path: Path) -> None:
    """Why: a store.recover queued under a larger max_payload_bytes than the shop restarted
    with was refused as too large to send, but its events kept no outcome, as if their answer
    were still to come."""
    shop = ShopStore(tmp_path / "shop.db", max_payload_bytes=16 * 1024)
    shop.create_schema()
    shop.apply_batch([birth(1, 0, 0), *(sale(1, seq, 100 - seq) for seq in range(1, 31))], 1.0)
    shop.apply_batch([birth(2, 5, 5)], 2.0)
    [(seq, _)] = _recover_commands(shop)
    letter = DeadLetter(topic="retail/v1/store-1/cmd", reason="too_large", message="too large",
                        payload=b"", size=20_000, received_at=3.0)
    assert shop.refuse_command(seq, "too large to send to the store", letter, 3.0)
    assert rows(shop, "SELECT outcome, note, count(*) FROM rewound_events GROUP BY 1, 2") == [
        ("rejected", "too large to send to the store", 25)]


def result(epoch: int, seq: int, command_id: str, ref: str, reason: str | None,
           skipped: list[messages.SkippedEvent] | None) -> EventItem:
    """The store's answer to a store.recover, decoded as the shop's link does."""
    answer = messages.CommandResult(command_id=command_id, command_type=messages.STORE_RECOVER,
                                    status="applied", reason=reason, ref=ref, skipped=skipped)
    env = decode(build(store=STORE, epoch=epoch, seq=seq, type_=messages.COMMAND_RESULT,
                       ts=float(seq), data=answer, prev=seq - 1), 65536)
    return EventItem(env, decode_data(env, EVENT_SCHEMAS[messages.COMMAND_RESULT]))


@pytest.mark.parametrize("says_which", [True, False], ids=["each-event", "older-hub"])
def test_each_handed_back_event_gets_its_own_outcome(shop: ShopStore, says_which: bool) -> None:
    """Why: every event of a recovery batch took the batch's outcome, `applied`, with all the
    skip notes: the shop's operators could not tell which events the store skipped. The store
    now says which; from a hub that does not, the batch's outcome stays on each."""
    shop.apply_batch([birth(2, 13, 13)], 2.0)  # restored at 13: 14-20 handed back
    [command_id] = [row[0] for row in rows(shop, "SELECT DISTINCT command_id FROM "
                                                 "rewound_events")]
    note = "no product with SKU 'BAN-1'"
    skipped = [messages.SkippedEvent(seq=15, note=note)] if says_which else None
    shop.apply_batch([result(2, 14, command_id, "6 applied, 0 already here, 1 skipped",
                             f"seq 15 (stock.movement) skipped: {note}", skipped)], 3.0)
    outcomes = rows(shop, "SELECT seq, outcome, note FROM rewound_events ORDER BY seq")
    if says_which:
        assert outcomes == [(seq, "applied", None) if seq != 15 else (15, "skipped", note)
                            for seq in range(14, 21)]
    else:
        assert {(outcome, text) for _, outcome, text in outcomes} == {
            ("applied", f"seq 15 (stock.movement) skipped: {note}")}
