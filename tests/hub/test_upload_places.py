"""The places uploads wait for: bounded per device, in all, and in time, with one kept for the
hub's own screen."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from hub.errors import Busy
from hub.web import common
from hub.web.common import MAX_UPLOADS, UploadPlaces


def upload_from(address: str) -> web.Request:
    """An upload from a device on the network, as the TLS proxy forwards it."""
    return make_mocked_request("POST", "/api/search/photo", headers={
        "X-Forwarded-For": address}).clone(remote="127.0.0.1")


class Holders:
    """Uploads that hold a place (or wait for one) until they are let go."""

    def __init__(self, places: UploadPlaces) -> None:
        self.places, self.release = places, asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, address: str, count: int = 1) -> None:
        self.tasks += [asyncio.create_task(self._hold(address)) for _ in range(count)]
        await asyncio.sleep(0.01)  # each has its place, or waits for one

    async def _hold(self, address: str) -> None:
        async with self.places.place(upload_from(address)):
            await self.release.wait()

    async def end(self) -> None:
        self.release.set()
        await asyncio.gather(*self.tasks)


async def test_one_device_cannot_queue_uploads_without_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: uploads waiting for a place had no cap and no deadline; one device that kept
    opening uploads without sending them held ~20,000 connections, every file descriptor the
    hub had, and the hub stopped answering anything (health, kiosk search, images)."""
    monkeypatch.setattr(common, "MAX_QUEUED_PER_CLIENT", 5)
    monkeypatch.setattr(common, "MAX_QUEUED", 7)
    places = UploadPlaces()
    holders = Holders(places)
    try:
        await holders.start("10.0.0.66", 5)  # two hold its places, three wait for them
        with pytest.raises(Busy, match="this device has 5 uploads on their way") as refused:
            async with places.place(upload_from("10.0.0.66")):
                pass
        assert (refused.value.status, refused.value.retry_after_s) == (429, 5)
        await holders.start("10.0.0.7", 2)
        with pytest.raises(Busy, match="as many uploads waiting as it takes"):
            async with places.place(upload_from("10.0.0.8")):
                pass
    finally:
        await holders.end()
    async with places.place(upload_from("10.0.0.66")):  # all given back
        pass


async def test_an_upload_waits_for_a_place_a_bounded_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload whose turn does not come answers busy instead of holding its connection."""
    monkeypatch.setattr(common, "UPLOAD_WAIT_S", 0.1)
    places = UploadPlaces()
    holders = Holders(places)
    try:  # every place devices on the network may take (one is kept for the hub's screen)
        for n in range(MAX_UPLOADS - 1):
            await holders.start(f"10.0.0.{n}")
        with pytest.raises(Busy, match="busy with other uploads"):
            async with places.place(upload_from("10.0.0.99")):
                pass
    finally:
        await holders.end()


async def test_a_place_is_kept_for_the_hubs_own_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: two devices on the network, each with two slow uploads, held all four places and
    the kiosk's photo and voice search waited for as long as they liked; and (review) devices
    that filled the queue of all uploads had the kiosk's refused."""
    monkeypatch.setattr(common, "MAX_QUEUED", 4)
    places = UploadPlaces()
    holders = Holders(places)
    try:
        await holders.start("10.0.0.1", 2)
        await holders.start("10.0.0.2", 2)  # the second of these waits; the queue is full
        kiosk = make_mocked_request("POST", "/api/search/photo").clone(remote="127.0.0.1")
        async with asyncio.timeout(1):  # at once
            async with places.place(kiosk):
                pass
    finally:
        await holders.end()


@pytest.mark.parametrize(("remote", "forwarded", "device"), [
    ("192.0.2.7", None, "192.0.2.7"),
    ("::ffff:192.0.2.7", None, "192.0.2.7"),  # a dual-stack socket's IPv4 peer
    ("2001:DB8:1:2:0:0:0:D", None, "2001:db8:1:2::d"),  # one device, however it is written
    ("fe80::1%eth0", None, "fe80::1%eth0"),
    ("::1", None, "::1"),
    ("127.0.0.1", "2001:DB8:1:2::99", "2001:db8:1:2::99"),  # through the TLS proxy
    ("::ffff:127.0.0.1", "10.0.0.5", "10.0.0.5"),  # the proxy over a dual-stack socket
    ("127.0.0.1", "::ffff:10.0.0.5", "10.0.0.5"),
    ("192.0.2.7", "10.0.0.5", "192.0.2.7"),  # only the hub's own machine is believed
    ("127.0.0.1", "not an address", "not an address"),
])
def test_a_device_is_its_address_in_one_spelling(remote: str, forwarded: str | None,
                                                 device: str) -> None:
    """Why: an IPv4 device seen through a dual-stack socket, or an IPv6 address written
    another way, took a second set of per-device limits."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers).clone(remote=remote)
    assert common.client_address(request) == device


def test_the_hubs_own_screen_is_known_over_a_dual_stack_socket_too() -> None:
    for remote in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert common.own_screen(make_mocked_request("GET", "/").clone(remote=remote)), remote
    proxied = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "10.0.0.5"})
    assert not common.own_screen(proxied.clone(remote="::ffff:127.0.0.1"))
    assert not common.own_screen(make_mocked_request("GET", "/").clone(remote="10.0.0.5"))


async def test_devices_of_one_ipv6_network_each_have_their_own_places(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: on a store network every IPv6 device shares one /64; keyed by it, a staff
    tablet's uploads waited for another device's."""
    monkeypatch.setattr(common, "MAX_QUEUED_PER_CLIENT", 3)
    places = UploadPlaces()
    holders = Holders(places)
    try:
        for _ in range(3):  # two hold the device's places, one waits for them
            await holders.start("2001:db8:1:2::1")
        with pytest.raises(Busy, match="this device has 3 uploads on their way"):
            async with places.place(upload_from("2001:DB8:1:2:0::1")):
                pass
        async with asyncio.timeout(1):  # its neighbour on the network has its place at once
            async with places.place(upload_from("2001:db8:1:2::2")):
                pass
    finally:
        await holders.end()
