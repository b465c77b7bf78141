"""The places uploads wait for: bounded per device, in all, and in time."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from hub.errors import Busy
from hub.web import common
from hub.web.common import MAX_UPLOADS, UploadPlaces


def upload_from(address: str):  # noqa: ANN201 - an aiohttp request
    return make_mocked_request("POST", "/api/search/photo").clone(remote=address)


async def test_one_device_cannot_queue_uploads_without_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: uploads waiting for a place had no cap and no deadline; one device that kept
    opening uploads without sending them held ~20,000 connections, every file descriptor the
    hub had, and the hub stopped answering anything (health, kiosk search, images)."""
    monkeypatch.setattr(common, "MAX_QUEUED_PER_CLIENT", 5)
    monkeypatch.setattr(common, "MAX_QUEUED", 7)
    places = UploadPlaces()
    release = asyncio.Event()

    async def hold(address: str) -> None:
        async with places.place(upload_from(address)):
            await release.wait()

    tasks = [asyncio.create_task(hold("10.0.0.66")) for _ in range(5)]
    try:
        await asyncio.sleep(0.01)  # two hold its places, three wait for them
        with pytest.raises(Busy, match="this device has 5 uploads on their way") as refused:
            async with places.place(upload_from("10.0.0.66")):
                pass
        assert (refused.value.status, refused.value.retry_after_s) == (429, 5)
        tasks += [asyncio.create_task(hold("10.0.0.7")) for _ in range(2)]
        await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="as many uploads waiting as it takes"):
            async with places.place(upload_from("10.0.0.8")):
                pass
    finally:
        release.set()
        await asyncio.gather(*tasks)
    async with places.place(upload_from("10.0.0.66")):  # all given back
        pass


async def test_an_upload_waits_for_a_place_a_bounded_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload whose turn does not come answers busy instead of holding its connection."""
    monkeypatch.setattr(common, "UPLOAD_WAIT_S", 0.1)
    places = UploadPlaces()
    release = asyncio.Event()

    async def hold(address: str) -> None:
        async with places.place(upload_from(address)):
            await release.wait()

    # every place devices on the network may take (one is kept for the hub's own screen)
    holders = [asyncio.create_task(hold(f"10.0.0.{n}")) for n in range(MAX_UPLOADS - 1)]
    await asyncio.sleep(0.01)
    with pytest.raises(Busy, match="busy with other uploads"):
        async with places.place(upload_from("10.0.0.99")):
            pass
    release.set()
    await asyncio.gather(*holders)


async def test_a_place_is_kept_for_the_hubs_own_screen() -> None:
    """Why: two devices on the network, each with two slow uploads, held all four places and
    the kiosk's photo and voice search waited for as long as they liked."""
    places = UploadPlaces()
    release = asyncio.Event()

    async def hold(request) -> None:  # noqa: ANN001 - an aiohttp request
        async with places.place(request):
            await release.wait()

    devices = [make_mocked_request("POST", "/api/search/photo", headers={
        "X-Forwarded-For": f"10.0.0.{n}"}).clone(remote="127.0.0.1") for n in (1, 1, 2, 2)]
    held = [asyncio.create_task(hold(device)) for device in devices]
    try:
        await asyncio.sleep(0.01)
        assert sum(task.done() for task in held) == 0
        kiosk = make_mocked_request("POST", "/api/search/photo").clone(remote="127.0.0.1")
        async with asyncio.timeout(1):  # at once, while the devices' fourth waits
            async with places.place(kiosk):
                pass
    finally:
        release.set()
        await asyncio.gather(*held)
