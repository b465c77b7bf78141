"""A store's members as it has them (member.status, the answer to member.announce), applied by
the shop: the store's word only where it is newer than the shop's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import messages
from sync.envelope import ProtocolError, build, decode, decode_data
from sync.shop.link import EVENT_SCHEMAS
from sync.shop.store import EventItem, ShopStore
from tests.sync.test_shop_rewind import birth, rows

STORE = "store-1"
KEY, NEWER_KEY = "a" * 32, "b" * 32


def status(seq: int, member: str, consent: bool, updated_at: float,
           key: str | None = None) -> EventItem:
    data = messages.MemberStatus(id=member, display_name="Ann", consent=consent,
                                 beacon_key=key, updated_at=updated_at)
    env = decode(build(store=STORE, epoch=1, seq=seq, type_=messages.MEMBER_STATUS,
                       ts=updated_at, data=data, prev=seq - 1), 65536)
    return EventItem(env, decode_data(env, messages.MemberStatus))


@pytest.fixture
def shop(tmp_path: Path) -> ShopStore:
    store = ShopStore(tmp_path / "shop.db")
    store.create_schema()
    store.apply_batch([birth(1, 0, 0)], 1.0)
    return store


def members(shop: ShopStore) -> list[tuple[object, ...]]:
    return rows(shop, "SELECT m.id, s.consent, m.beacon_key, s.updated_at FROM members m "
                      "LEFT JOIN member_stores s ON s.member = m.id ORDER BY m.id, s.store")


def test_the_stores_newer_word_is_taken_and_an_older_one_is_not(shop: ShopStore) -> None:
    shop.opt_in("m-1", STORE, "Ann", True, KEY, 100.0)       # the shop's own, at 100
    shop.opt_in("m-2", STORE, "Bo", True, KEY, 100.0)
    outcome = shop.apply_batch([
        status(1, "m-1", False, 150.0),                      # withdrawn since: taken
        status(2, "m-2", False, 50.0),                       # older than the shop's: not
        status(3, "m-3", True, 120.0, NEWER_KEY),            # unknown, consents: added
        status(4, "m-4", False, 130.0),                      # unknown, no key: nothing to add
    ], 200.0)
    assert outcome.applied == 4 and not outcome.dead
    [withdrawn, *others] = members(shop)
    assert others == [("m-2", 1, KEY, 100.0), ("m-3", 1, NEWER_KEY, 120.0)]
    # consent at no store: a fresh key, as a withdrawal gives (the old one was withdrawn)
    assert withdrawn[:2] == ("m-1", 0) and withdrawn[3] == 150.0
    assert withdrawn[2] != KEY and len(str(withdrawn[2])) == 32


def test_a_consent_newer_than_all_the_shop_knows_brings_the_members_last_key(
        shop: ShopStore) -> None:
    """A member who withdrew (a new key) and opted in again after the shop's backup has the
    newer key on their phone and at the store; the restored shop had the old one."""
    shop.opt_in("m-1", STORE, "Ann", True, KEY, 100.0)
    shop.apply_batch([status(1, "m-1", True, 90.0, NEWER_KEY)], 200.0)
    assert members(shop) == [("m-1", 1, KEY, 100.0)]          # older: the shop's key stays
    shop.apply_batch([status(2, "m-1", True, 160.0, NEWER_KEY)], 200.0)
    assert members(shop) == [("m-1", 1, NEWER_KEY, 160.0)]


def test_a_member_still_consenting_at_another_store_keeps_the_key(shop: ShopStore) -> None:
    shop.opt_in("m-1", STORE, "Ann", True, KEY, 100.0)
    shop._conn().execute("INSERT INTO member_stores (member, store, consent, updated_at) "
                         "VALUES ('m-1', 'store-2', 1, 100.0)")
    shop.apply_batch([status(1, "m-1", False, 150.0)], 200.0)
    assert members(shop) == [("m-1", 0, KEY, 150.0), ("m-1", 1, KEY, 100.0)]


def test_a_history_gap_asks_the_store_for_its_members_once(shop: ShopStore) -> None:
    """A shop restored from its backup (or a new database) hears a store acked further than
    its history: it asks for the store's members, once while the question is unanswered."""
    shop.apply_batch([birth(2, 40, 30)], 2.0)
    shop.apply_batch([birth(3, 60, 50)], 3.0)
    assert rows(shop, "SELECT type, status FROM commands") == [
        (messages.MEMBER_ANNOUNCE, "pending")]


@pytest.mark.parametrize("data", [
    {"id": "m-1", "consent": True, "beacon_key": KEY},                       # no updated_at
    {"id": "m-1", "display_name": "Ann\nDrop", "consent": False, "updated_at": 1.0},
    {"id": "m-1", "display_name": "A" * 101, "consent": False, "updated_at": 1.0},
    {"id": "m-1", "consent": True, "beacon_key": "zz" * 16, "updated_at": 1.0},
    {"id": "m 1", "consent": False, "updated_at": 1.0},
])
def test_a_status_the_shop_could_not_send_on_is_refused(data: dict[str, object]) -> None:
    """A name with a line break (or too long), a key that is not hex, an id with a space:
    the shop would keep it and the store refuse every opt-in it sends later with it. The
    shop's link dead-letters an event its schema refuses."""
    env = decode(build(store=STORE, epoch=1, seq=1, type_=messages.MEMBER_STATUS, ts=1.0,
                       data=data, prev=0), 65536)
    with pytest.raises(ProtocolError):
        decode_data(env, EVENT_SCHEMAS[messages.MEMBER_STATUS])
