"""Shopper tokens: the DESIGN.md scheme, window edges, one window of clock skew, old tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from beacons.errors import MembersFileError
from beacons.tokens import WINDOW_S, TokenResolver, token, token_uuid, window_of

PREFIX = bytes.fromhex("52455441494c4842")
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
T0 = 1_767_261_600.0  # a window boundary: 1767261600 / 512 = 3451682.8125 -> not one
BOUNDARY = 3_451_683 * WINDOW_S  # 1767261696


def test_token_is_the_designed_hmac() -> None:
    window = 3_451_683
    expected = hmac.new(KEY, b"rh-token" + window.to_bytes(8, "big"), hashlib.sha256).digest()[:8]
    assert token(KEY, window) == expected
    uuid = token_uuid(PREFIX, KEY, window)
    assert uuid.replace("-", "") == (PREFIX + expected).hex()
    assert uuid == uuid.lower()


def test_window_edges() -> None:
    assert window_of(BOUNDARY) == 3_451_683
    assert window_of(BOUNDARY - 0.001) == 3_451_682
    assert window_of(BOUNDARY + WINDOW_S - 0.001) == 3_451_683


def _resolver() -> TokenResolver:
    return TokenResolver(PREFIX, {"m1": KEY})


def test_current_window_resolves_on_both_sides_of_a_turn() -> None:
    resolver = _resolver()
    before, after = BOUNDARY - 0.5, BOUNDARY + 0.5
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(before)), before) == "m1"
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(after)), after) == "m1"


@pytest.mark.parametrize("skew", [-1, +1])
def test_a_phone_one_window_off_still_resolves(skew: int) -> None:
    t = BOUNDARY + 100
    assert _resolver().resolve(token_uuid(PREFIX, KEY, window_of(t) + skew), t) == "m1"


@pytest.mark.parametrize("age", [2, 5, 100])
def test_replayed_old_tokens_do_not_resolve(age: int) -> None:
    t = BOUNDARY + 100
    assert _resolver().resolve(token_uuid(PREFIX, KEY, window_of(t) - age), t) is None


def test_a_token_two_windows_ahead_does_not_resolve() -> None:
    t = BOUNDARY + 100
    assert _resolver().resolve(token_uuid(PREFIX, KEY, window_of(t) + 2), t) is None


def test_the_table_moves_forward_as_windows_turn() -> None:
    resolver = _resolver()
    t = BOUNDARY + 10
    first = token_uuid(PREFIX, KEY, window_of(t))
    assert resolver.resolve(first, t) == "m1"
    later = t + 3 * WINDOW_S
    assert resolver.resolve(first, later) is None  # now three windows old
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(later)), later) == "m1"
    # An advertisement a little out of order (a slower relay) still finds its window.
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(later) - 1), later - WINDOW_S) == "m1"


def test_a_late_advertisement_is_judged_by_its_own_time() -> None:
    """Why: the table spans the newest time's windows, so a line stamped a window earlier
    (out of order) carrying the token of the window after the newest was accepted, two windows
    from its own time."""
    resolver = _resolver()
    t = BOUNDARY + 10
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(t)), t) == "m1"
    late = t - WINDOW_S
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(t) + 1), late) is None


def test_a_late_advertisement_from_a_phone_a_window_behind_resolves() -> None:
    """Why: a late line (a slower relay) stamped a window before the newest, from a phone whose
    clock runs a window behind, was dropped: the table lacked the window two before the newest."""
    resolver = _resolver()
    t = BOUNDARY + 10
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(t)), t) == "m1"
    late = t - WINDOW_S
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(late) - 1), late) == "m1"
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(late) - 2), late) is None


@pytest.mark.parametrize("t", [0.0, 12.5, -3.0, 1e30])
def test_times_outside_the_token_counter_resolve_nothing_and_never_fail(t: float) -> None:
    """A trace timed from 0 (the design example's t is 12.5) has no window before the first;
    asking for window -1 raised OverflowError and stopped the replay."""
    resolver = _resolver()
    expected = "m1" if 0 <= t < 2**64 * WINDOW_S else None
    uuid = token_uuid(PREFIX, KEY, max(0, window_of(t))) if expected else "0" * 36
    assert resolver.resolve(uuid, t) == expected


def test_unknown_members_and_foreign_prefixes_do_not_resolve() -> None:
    t = BOUNDARY + 1
    other_key = bytes(16)
    assert _resolver().resolve(token_uuid(PREFIX, other_key, window_of(t)), t) is None
    assert _resolver().resolve(token_uuid(bytes(8), KEY, window_of(t)), t) is None


def test_withdrawn_keys_stop_resolving_at_once() -> None:
    resolver = _resolver()
    t = BOUNDARY + 1
    uuid = token_uuid(PREFIX, KEY, window_of(t))
    assert resolver.resolve(uuid, t) == "m1"
    resolver.set_keys({})
    assert resolver.resolve(uuid, t) is None
    assert resolver.member_count == 0


def test_bad_keys_are_refused_with_the_member_named() -> None:
    with pytest.raises(MembersFileError, match="'m9'"):
        TokenResolver(PREFIX, {"m9": b"short"})
    with pytest.raises(MembersFileError, match="prefix"):
        TokenResolver(b"\x00", {})


def test_prefix_text_matches_the_uuid_form() -> None:
    uuid = token_uuid(PREFIX, KEY, 1)
    assert uuid.startswith(_resolver().prefix_text)


def test_members_sharing_a_key_are_not_recognised_and_a_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Why: both phones advertise the same tokens, and the table kept one of the two members,
    who was then told of the other's visits."""
    shared, own = b"\x07" * 16, b"\x08" * 16
    with caplog.at_level(logging.WARNING, logger="beacons.tokens"):
        resolver = TokenResolver(PREFIX, {"ann": shared, "bob": shared, "cy": own})
    assert "members ann, bob share a beacon key" in caplog.text
    t = 1_767_268_800.0
    assert resolver.resolve(token_uuid(PREFIX, shared, window_of(t)), t) is None
    assert resolver.resolve(token_uuid(PREFIX, own, window_of(t)), t) == "cy"
    assert resolver.member_count == 1


OTHER = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")


async def test_windows_made_ahead_follow_opt_ins_and_withdrawals_at_once() -> None:
    """Members added or withdrawn resolve, or stop, as soon as ``set_keys`` returns, in the
    windows held now and in the one made ahead for the next turn."""
    resolver = _resolver()
    t = BOUNDARY + 10
    assert await resolver.prepare(t) == 5 and resolver.ready(t)
    resolver.set_keys({"m2": OTHER})
    turned = t + WINDOW_S  # the next turn: served from the window made ahead
    for when in (t, turned):
        for skew in (-1, 0, 1):
            window = window_of(when) + skew
            assert resolver.resolve(token_uuid(PREFIX, OTHER, window), when) == "m2"
            assert resolver.resolve(token_uuid(PREFIX, KEY, window), when) is None
    resolver.set_keys({"m2": KEY})  # a key changed: the old one stops, the new one resolves
    assert resolver.resolve(token_uuid(PREFIX, OTHER, window_of(turned)), turned) is None
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(turned)), turned) == "m2"


async def test_a_withdrawal_while_a_window_is_being_made_does_not_come_back_with_it() -> None:
    """A window made on a worker thread from the keys of before a withdrawal (and an opt-in)
    is corrected when it is swapped in: the withdrawn member never resolves in it."""
    resolver = _resolver()
    t = BOUNDARY + 10

    async def run(build, *args):  # noqa: ANN001, ANN202 - the worker thread's stand-in
        table = build(*args)  # made from the keys in force when it began (m1's)
        resolver.set_keys({"m2": OTHER})  # ...while m1 withdraws and m2 opts in
        return table

    await resolver.prepare(t, run=run)
    later = t + WINDOW_S
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(later)), later) is None
    assert resolver.resolve(token_uuid(PREFIX, OTHER, window_of(later)), later) == "m2"


async def test_windows_made_ahead_are_forgotten_as_time_passes() -> None:
    resolver = _resolver()
    t = BOUNDARY + 10
    for turn in range(50):
        await resolver.prepare(t + turn * WINDOW_S)
    assert len(resolver._windows) <= 9
    last = t + 49 * WINDOW_S
    assert resolver.resolve(token_uuid(PREFIX, KEY, window_of(last)), last) == "m1"
