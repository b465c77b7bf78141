"""Wrong staff tokens make the sending device wait (hub/web/token_guesses.py), on the hub's clock.

Why: staff tokens of 16 characters are accepted and nothing limited wrong ones, so a device on the
store network could try them as fast as the hub answered."""

from __future__ import annotations

import pytest
from aiohttp import WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient, make_mocked_request

from hub.clock import ManualClock
from hub.errors import TooManyAttempts
from hub.web import live
from hub.web.common import is_staff
from hub.web.token_guesses import FREE_MISSES, MAX_DEVICES, TokenGuesses
from tests.conftest import STAFF_TOKEN
from tests.openapi_check import SpecClient

WRONG = {"Authorization": "Bearer wrong-token-wrong-token"}


def waits(guesses: TokenGuesses, device: str) -> int | None:
    """The seconds ``device`` is told to wait, or None when it may try."""
    try:
        guesses.check(device)
    except TooManyAttempts as exc:
        return exc.retry_after_s
    return None


def test_a_person_mistyping_is_never_made_to_wait_and_a_guesser_waits_longer_each_time() -> None:
    clock = ManualClock()
    guesses = TokenGuesses(clock)
    for _ in range(FREE_MISSES):
        guesses.missed("tablet")
        assert waits(guesses, "tablet") is None
    found = []
    for _ in range(12):
        guesses.missed("tablet")
        found.append(waits(guesses, "tablet"))
        clock.advance(found[-1])
        assert waits(guesses, "tablet") is None
    assert found == [30, 60, 120, 240, 300, 300, 300, 300, 300, 300, 300, 300]
    assert waits(guesses, "kiosk") is None, "another device is not held up"


def test_the_right_token_or_an_hour_without_a_wrong_one_starts_afresh() -> None:
    clock = ManualClock()
    guesses = TokenGuesses(clock)
    for _ in range(FREE_MISSES + 1):
        guesses.missed("tablet")
    clock.advance(1)
    guesses.passed("tablet")
    guesses.missed("tablet")
    assert waits(guesses, "tablet") is None
    for _ in range(FREE_MISSES + 5):
        guesses.missed("phone")
    assert waits(guesses, "phone") == 300
    clock.advance(3601)
    guesses.missed("phone")
    assert waits(guesses, "phone") is None


def test_a_flood_of_addresses_is_remembered_in_bounded_memory() -> None:
    clock = ManualClock()
    guesses = TokenGuesses(clock)
    for n in range(MAX_DEVICES * 3):
        for _ in range(FREE_MISSES + 1):
            guesses.missed(f"10.0.{n // 256}.{n % 256}")
    assert len(guesses._devices) == MAX_DEVICES
    assert waits(guesses, f"10.0.{(MAX_DEVICES * 3 - 1) // 256}.255") == 30


async def test_the_api_makes_a_guessing_device_wait_and_says_for_how_long(
        client: TestClient, staff: dict[str, str], clock: ManualClock) -> None:
    guesser = SpecClient(client, {**WRONG, "X-Forwarded-For": "192.168.1.66"})
    for _ in range(FREE_MISSES + 1):
        response, err = await guesser.call("GET", "/api/orders")
        assert response.status == 401 and err["error"]["code"] == "unauthorized"
    response, err = await guesser.call("GET", "/api/orders")
    assert response.status == 429 and response.headers["Retry-After"] == "30"
    assert err["error"] == {
        "code": "too_many_attempts",
        "message": "too many wrong staff tokens from this device: try again in 30 seconds",
        "details": {"retry_after_s": 30},
    }
    # while it waits even the right token is not compared, so the wait cannot be guessed past
    right_from_guesser = {**staff, "X-Forwarded-For": "192.168.1.66"}
    response, _ = await guesser.call("GET", "/api/orders", headers=right_from_guesser)
    assert response.status == 429
    # the staff tablet on its own address is not held up
    tablet = SpecClient(client, {**staff, "X-Forwarded-For": "192.168.1.20"})
    response, _ = await tablet.call("GET", "/api/orders")
    assert response.status == 200
    # a public endpoint that says more to staff gives the waiting device the public answer
    waiting = make_mocked_request("GET", "/api/search/voice/status", headers=right_from_guesser,
                                  app=client.app).clone(remote="192.168.1.66")
    assert is_staff(waiting) is False
    clock.advance(30)
    response, _ = await guesser.call("GET", "/api/orders", headers=right_from_guesser)
    assert response.status == 200
    response, _ = await guesser.call("GET", "/api/orders")
    assert response.status == 401, "the right token started the count again"


async def test_a_guesser_is_one_device_however_its_address_is_written(
        client: TestClient) -> None:
    """Why: an IPv4 address written in IPv6 (a dual-stack socket's way), or an IPv6 address
    in capitals, was a fresh device with ten more free guesses. A neighbour on the same IPv6
    network is another device: it does not wait for the guesser."""
    for n in range(FREE_MISSES + 1):
        address = "2001:db8:5:6::1" if n % 2 else "2001:DB8:5:6:0::1"
        guesser = SpecClient(client, {**WRONG, "X-Forwarded-For": address})
        response, _ = await guesser.call("GET", "/api/orders")
        assert response.status == 401
    response, err = await guesser.call("GET", "/api/orders")
    assert response.status == 429 and err["error"]["code"] == "too_many_attempts"
    neighbour = SpecClient(client, {**WRONG, "X-Forwarded-For": "2001:db8:5:6::2"})
    response, _ = await neighbour.call("GET", "/api/orders")
    assert response.status == 401, "a neighbour on the network waited for the guesser"
    for n in range(FREE_MISSES + 1):
        address = "192.168.1.70" if n % 2 else "::ffff:192.168.1.70"
        guesser = SpecClient(client, {**WRONG, "X-Forwarded-For": address})
        response, _ = await guesser.call("GET", "/api/orders")
    response, _ = await guesser.call("GET", "/api/orders")
    assert response.status == 429


@pytest.mark.parametrize("token", ["wrong-token-wrong-token", STAFF_TOKEN])
async def test_the_staff_socket_counts_wrong_tokens_too(client: TestClient, token: str) -> None:
    for n in range(FREE_MISSES + 2):
        async with client.ws_connect("/api/staff/events") as ws:
            await ws.send_json({"token": "wrong-token-wrong-token" if n <= FREE_MISSES else token})
            message = await ws.receive_json(timeout=5)
            closing = await ws.receive(timeout=5)
        assert closing.type == WSMsgType.CLOSE and closing.data == live.CLOSE_UNAUTHORIZED
    assert message["error"]["code"] == "too_many_attempts"
    assert "try again in 30 seconds" in message["error"]["message"]


@pytest.mark.parametrize("path", ["/api/staff/events", "/api/live/stock"])
async def test_a_page_of_another_site_cannot_open_the_hubs_sockets(client: TestClient,
                                                                  path: str) -> None:
    """Why: a page of another site, open on a staff tablet, could open the staff socket and send
    wrong tokens until the tablet itself was locked out of staff work (a socket has no CORS
    preflight), or hold the kiosk's voice places (the voice socket opens through the same
    check). The hub's own pages still open them."""
    with pytest.raises(WSServerHandshakeError) as refused:
        async with client.ws_connect(path, headers={"Origin": "https://ads.example"}):
            pass
    assert refused.value.status == 403
    own = f"http://{client.server.host}:{client.server.port}"
    async with client.ws_connect(path, headers={"Origin": own}) as ws:
        assert not ws.closed
    response = await client.get(path, headers={"Origin": "https://ads.example",
                                                "Connection": "Upgrade", "Upgrade": "websocket",
                                                "Sec-WebSocket-Version": "13",
                                                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    body = await response.json()
    assert body["error"]["code"] == "foreign_origin"
    assert "from the hub's own pages" in body["error"]["message"]
