"""The photo search API on a real hub: staff enrol real dataset photos, the kiosk searches with
others, and hostile uploads get a 4xx that says what is wrong while the service keeps serving."""

from __future__ import annotations

import asyncio
import resource
import threading
from collections.abc import AsyncIterator

import aiohttp
import cv2
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

import hub.web.photo as photo_module
from hub.app import start_hub
from hub.photo_search import PhotoService
from hub.services import Services, build_services
from hub.web import common
from hub.web.app import create_app
from hub.web.common import MAX_UPLOADS_PER_CLIENT
from tests.openapi_check import SpecClient
from tests.vision.conftest import BANANA, MODEL, OAT_MILK, jpeg, photos, with_jpeg_size

GRANNY_SMITH = 1
PRODUCTS = {"BAN-1": BANANA, "OAT-1": OAT_MILK, "APL-1": GRANNY_SMITH}


@pytest_asyncio.fixture
async def photo_client(stocked: Services) -> AsyncIterator[TestClient]:
    """The stocked test hub with photo search started and four reference photos enrolled per
    product."""
    stocked.config.vision.model_path = MODEL
    service = PhotoService(
        stocked.db,
        stocked.catalog,
        stocked.inventory,
        stocked.config.store.images_dir,
        stocked.config.vision,
    )
    stocked.photo_search = service
    stocked.bus.bind(asyncio.get_running_loop())
    await service.start()
    # One batch and one head training: the staff endpoint's own tests are below, and a
    # training per upload made this setup a tenth of the suite's time.
    batch = [(sku, photo.path.read_bytes()) for sku, class_id in PRODUCTS.items()
             for photo in photos("train.txt", class_id, 4)]
    enrolled = await service.run(service.enrol_many, batch)
    assert all(e.added for e in enrolled) and len(enrolled) == 12
    async with TestClient(TestServer(create_app(stocked))) as client:
        yield client
    await service.stop()


async def search(client: TestClient, data: bytes, content_type: str = "image/jpeg") -> dict:
    """POST a photo; the exchange is validated against docs/openapi.yaml."""
    response, body = await SpecClient(client).call(
        "POST", "/api/search/photo", data=data, content_type=content_type
    )
    body["status"] = response.status
    return body


async def test_kiosk_photo_finds_the_product_with_shelf_and_stock(photo_client: TestClient) -> None:
    answer = await search(photo_client, photos("val.txt", BANANA, 1)[0].path.read_bytes())
    assert answer["status"] == 200
    best = answer["results"][0]
    assert best["sku"] == "BAN-1" and best["name"] == "Banana"
    assert best["shelf"] == "A1" and best["available"] == 40
    assert set(best) == {"sku", "name", "score", "shelf", "available"}
    assert answer["confident"] is (best["score"] >= 0.5)
    assert answer["ms"] > 0 and len(answer["results"]) == 3


async def test_multipart_upload_and_limit(photo_client: TestClient) -> None:
    form = FormData()
    form.add_field(
        "photo",
        photos("val.txt", OAT_MILK, 1)[0].path.read_bytes(),
        filename="kiosk.jpg",
        content_type="image/jpeg",
    )
    response = await photo_client.post("/api/search/photo?limit=1", data=form)
    body = await response.json()
    assert response.status == 200
    assert [r["sku"] for r in body["results"]] == ["OAT-1"]


async def test_png_and_webp_uploads_are_searched(photo_client: TestClient) -> None:
    bgr = cv2.imread(str(photos("val.txt", OAT_MILK, 2)[1].path))
    for ext, content_type in ((".png", "image/png"), (".webp", "image/webp")):
        ok, data = cv2.imencode(ext, bgr)
        assert ok
        answer = await search(photo_client, data.tobytes(), content_type)
        assert answer["status"] == 200 and answer["results"][0]["sku"] == "OAT-1"


async def test_an_enrolled_webp_photo_is_served_as_a_webp_picture(
    photo_client: TestClient, staff: dict[str, str]
) -> None:
    """Why: aiohttp's table has no .webp before Python 3.13, so the photo went out as
    application/octet-stream, and opened on its own it was downloaded instead of shown."""
    bgr = cv2.imread(str(photos("train.txt", OAT_MILK, 6)[5].path))
    ok, data = cv2.imencode(".webp", bgr)
    assert ok
    response = await photo_client.post("/api/products/OAT-1/photos", data=data.tobytes(),
                                       headers={**staff, "Content-Type": "image/webp"})
    assert response.status == 201, await response.text()
    listed = await (await photo_client.get("/api/products/OAT-1/photos", headers=staff)).json()
    url = next(p["url"] for p in listed["photos"] if p["url"].endswith(".webp"))
    served = await photo_client.get(url)
    assert served.status == 200 and served.content_type == "image/webp"
    assert await served.read() == data.tobytes()


async def test_staff_photo_is_stored_once_and_needs_the_token(
    photo_client: TestClient, staff: dict[str, str]
) -> None:
    data = photos("train.txt", BANANA, 5)[4].path.read_bytes()
    url = "/api/products/BAN-1/photos"
    denied = await photo_client.post(url, data=data, headers={"Content-Type": "image/jpeg"})
    assert denied.status == 401
    headers = {**staff, "Content-Type": "image/jpeg"}
    first = await photo_client.post(url, data=data, headers=headers)
    again = await photo_client.post(url, data=data, headers=headers)
    assert first.status == 201 and again.status == 200
    assert (await first.json())["photos"] == 5 and (await again.json())["added"] is False
    missing = await photo_client.post("/api/products/NOPE-1/photos", data=data, headers=headers)
    assert missing.status == 404


async def add_photo(client: TestClient, staff: dict[str, str], sku: str,
                    data: bytes) -> tuple[int, dict]:
    """POST a staff reference photo, the answer checked against the spec: (status, body)."""
    response, body = await SpecClient(client).call(
        "POST", f"/api/products/{sku}/photos", data=data,
        headers={**staff, "Content-Type": "image/jpeg"})
    return response.status, body


async def test_a_photo_that_looks_like_another_product_is_added_with_a_question(
    photo_client: TestClient, staff: dict[str, str]
) -> None:
    """Why: a banana photo added to oat milk (tried as a new member of staff would) was taken
    without a word and taught search a wrong answer. It is still added (a product search knows
    little of may look like another), and the answer names what search took it for."""
    banana = photos("train.txt", BANANA, 6)[5].path.read_bytes()
    status, wrong = await add_photo(photo_client, staff, "OAT-1", banana)
    assert status == 201
    assert wrong["looks_like"]["sku"] == "BAN-1"
    assert wrong["looks_like"]["score"] >= 0.5
    right = photos("train.txt", BANANA, 7)[6].path.read_bytes()
    status, body = await add_photo(photo_client, staff, "BAN-1", right)
    assert (status, body["looks_like"]) == (201, None)
    status, again = await add_photo(photo_client, staff, "BAN-1", right)
    assert (status, again["looks_like"]) == (200, None)


async def test_a_staff_photo_is_embedded_once(
    photo_client: TestClient, stocked: Services, staff: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why: a staff photo went through the CNN twice, once to ask what search takes it for and
    once to store it; on a Pi that is the costliest step, and kiosk searches wait behind it on
    the one vision thread."""
    embedder = stocked.photo_search.engine.embedder
    calls: list[int] = []
    real = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda data: calls.append(len(data)) or real(data))
    banana = photos("train.txt", BANANA, 6)[5].path.read_bytes()
    status, body = await add_photo(photo_client, staff, "OAT-1", banana)
    assert status == 201 and body["looks_like"]["sku"] == "BAN-1"
    assert calls == [len(banana)]


async def test_a_thumbnail_is_refused_as_a_reference_photo(
    photo_client: TestClient, staff: dict[str, str]
) -> None:
    """Why: a 1x1 picture was enrolled (201) and answered for whatever resembled its pixel."""
    for width, height in ((1, 1), (200, 40)):
        ok, tiny = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
        assert ok
        status, body = await add_photo(photo_client, staff, "BAN-1", tiny.tobytes())
        assert status == 400, body
        assert body["error"]["message"].startswith(f"the photo is {width}x{height} pixels")
        assert body["error"]["code"] == "bad_image"
    ok, small = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    status, _ = await add_photo(photo_client, staff, "BAN-1", small.tobytes())
    assert status == 201


async def test_a_photo_of_another_product_is_refused(
    photo_client: TestClient, staff: dict[str, str]
) -> None:
    """Why: the same photo could be enrolled under two products, teaching search both answers
    for it; it is nearly always a photo added to the wrong product."""
    data = photos("train.txt", BANANA, 6)[5].path.read_bytes()
    status, first = await add_photo(photo_client, staff, "BAN-1", data)
    assert status == 201
    status, body = await add_photo(photo_client, staff, "OAT-1", data)
    assert status == 409 and body["error"]["code"] == "photo_of_another_product"
    assert body["error"]["message"].startswith("this photo is already a reference photo of "
                                               "Banana (BAN-1)")
    assert body["error"]["details"] == {"sku": "BAN-1", "image_id": first["image_id"]}
    _, listed = await SpecClient(photo_client).call("GET", "/api/products/OAT-1/photos",
                                                    headers=staff)
    assert listed["photos"] and first["image_id"] not in {p["image_id"] for p in listed["photos"]}


async def test_a_shared_picture_is_refused_only_where_it_is_new(
    photo_client: TestClient, staff: dict[str, str], stocked: Services, tmp_path
) -> None:  # noqa: ANN001 - fixture
    """Why: a photo a product already had was refused once a catalogue import gave another
    product the same picture, and another product's catalogue image was called its "reference
    photo" with advice to remove it, which the photo API refuses."""
    data = photos("train.txt", BANANA, 7)[6].path.read_bytes()
    assert (await add_photo(photo_client, staff, "BAN-1", data))[0] == 201
    (tmp_path / "shared.jpg").write_bytes(data)
    row = {"sku": "ZZ-1", "names": {"en": "Plantain"}, "category": "Fruit", "price": "3.00",
           "shelf": "A9", "stock": 5, "image": "shared.jpg"}
    assert not stocked.catalog.import_rows([(1, row)], tmp_path).rejected
    status, body = await add_photo(photo_client, staff, "BAN-1", data)
    assert status == 200 and body["added"] is False
    status, body = await add_photo(photo_client, staff, "OAT-1", data)
    assert status == 409  # the catalogue image is named first: it cannot be removed by staff
    assert body["error"]["message"] == ("this picture is the catalogue image of Plantain "
                                        "(ZZ-1); a reference photo of OAT-1 must show OAT-1 "
                                        "itself")


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_hostile_uploads_get_clear_4xx_and_service_keeps_serving(
    photo_client: TestClient, bomb: bytes
) -> None:
    good = photos("val.txt", BANANA, 1)[0].path.read_bytes()
    tiny = jpeg(np.zeros((64, 64, 3), np.uint8))
    cases = [
        (b"", "image/jpeg", 400, "empty"),
        (b"hello, this is text", "image/jpeg", 400, "not a JPEG, PNG or WebP"),
        (good[: len(good) // 2], "image/jpeg", 400, "cut short"),
        (with_jpeg_size(tiny, 10_000, 10_000), "image/jpeg", 413, "megapixels"),
        (bomb, "image/png", 413, "megapixels"),
        (jpeg(np.full((2, 60_000, 3), 128, np.uint8)), "image/jpeg", 400, "a strip"),
        (good, "text/plain", 415, "image/jpeg"),
        (good, "application/json", 415, "multipart"),
    ]
    before = max_rss_mb()
    for data, content_type, status, words in cases:
        answer = await search(photo_client, data, content_type)
        assert answer["status"] == status, (content_type, answer)
        assert words in answer["error"]["message"], answer
        assert "Traceback" not in answer["error"]["message"]
        healthy = await search(photo_client, good)
        assert healthy["status"] == 200 and healthy["results"][0]["sku"] == "BAN-1"
    assert max_rss_mb() - before < 150  # the 400-megapixel bomb was never decoded


async def test_upload_over_the_body_limit_is_refused(photo_client: TestClient) -> None:
    big = b"\xff\xd8\xff" + bytes(13 * 1024 * 1024)
    answer = await search(photo_client, big)
    assert answer["status"] == 413
    assert answer["error"]["message"] == "the photo is larger than 12 MiB"


async def test_multipart_without_photo_field_is_explained(photo_client: TestClient) -> None:
    form = FormData()
    form.add_field("picture", b"abc", filename="x.jpg", content_type="image/jpeg")
    response = await photo_client.post("/api/search/photo", data=form)
    assert response.status == 400
    assert "'photo' file field" in (await response.json())["error"]["message"]


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=XX", "multipart/form-data",
])
async def test_a_broken_multipart_form_is_a_400_not_an_error(
    photo_client: TestClient, staff: dict[str, str], content_type: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Why: a body that is not the multipart form its content type announces was answered 500
    and logged with a traceback, on the kiosk's public endpoint too."""
    for path, headers in (("/api/search/photo", {}), ("/api/products/BAN-1/photos", staff)):
        response = await photo_client.post(path, data=b"not multipart",
                                           headers={**headers, "Content-Type": content_type})
        assert response.status == 400, path
        assert "the multipart form cannot be read" in (await response.json())["error"]["message"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_form_part_with_a_malformed_header_is_a_400_not_an_error(
    photo_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Why: a part header aiohttp cannot parse (a control character in the field name, as
    curl -F $'ph\x7fto=@x.jpg' sends) was answered 500 on the kiosk's public endpoint."""
    body = (b'--XX\r\nContent-Disposition: form-data; name="ph\x7fto"; filename="x.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\nx\r\n--XX--\r\n")
    response = await photo_client.post(
        "/api/search/photo", data=body,
        headers={"Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert response.status == 400
    assert "the multipart form cannot be read" in (await response.json())["error"]["message"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_photo_search_turned_off_answers_503(client: TestClient) -> None:
    response = await client.post(
        "/api/search/photo", data=b"x", headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 503
    assert "vision.enabled" in (await response.json())["error"]["message"]


async def test_multipart_photo_over_the_limit_is_refused(photo_client: TestClient) -> None:
    form = FormData()
    form.add_field(
        "photo",
        b"\xff\xd8\xff" + bytes(13 * 1024 * 1024),
        filename="big.jpg",
        content_type="image/jpeg",
    )
    response = await photo_client.post("/api/search/photo", data=form)
    assert response.status == 413


async def test_running_hub_wires_photo_search_from_config(make_config, staff) -> None:
    """The real start path: FEATURES builds the service, the lifecycle loads and warms the model,
    and a catalogue import enrols the product image for search, on the vision thread: the import's
    write is answered while that thread is still busy with other work."""
    hub = await start_hub(make_config(vision={"model_path": str(MODEL)}))
    try:
        service = hub.services.photo_search
        assert service is not None and service.engine.embedder.path == MODEL
        folder = hub.services.config.store.images_dir.parent / "catalog"
        folder.mkdir()
        rows = []
        for sku, class_id in PRODUCTS.items():
            (folder / f"{sku}.jpg").write_bytes(
                photos("train.txt", class_id, 1)[0].path.read_bytes()
            )
            rows.append(
                (
                    len(rows) + 1,
                    {"sku": sku, "names": {"en": sku}, "shelf": "Z9", "image": f"{sku}.jpg"},
                )
            )
        gate = threading.Event()
        busy = asyncio.ensure_future(service.run(gate.wait, 30))
        await hub.services.db.write(hub.services.catalog.import_rows, rows, folder)
        assert service.engine.gallery is None  # nothing embedded on the writer thread
        gate.set()
        assert await busy
        assert await service.run(service.refresh) == 3  # queued after the import's embedding
        assert service.engine.gallery is not None and service.engine.gallery.photos == 3
        async with aiohttp.ClientSession() as session:
            data = photos("val.txt", OAT_MILK, 1)[0].path.read_bytes()
            async with session.post(
                f"{hub.url}/api/search/photo", data=data, headers={"Content-Type": "image/jpeg"}
            ) as response:
                body = await response.json()
        assert response.status == 200 and body["results"][0]["sku"] == "OAT-1"
    finally:
        await hub.stop()


async def test_broken_model_disables_photo_search_not_the_hub(make_config, tmp_path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"nonsense")
    hub = await start_hub(make_config(vision={"model_path": str(broken)}))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{hub.url}/api/search/photo",
                data=b"\xff\xd8\xff",
                headers={"Content-Type": "image/jpeg"},
            ) as response:
                body = await response.json()
            async with session.get(f"{hub.url}/api/products?q=milk") as other:
                assert other.status == 200
        assert response.status == 503 and "could not be loaded" in body["error"]["message"]
        assert str(tmp_path) not in body["error"]["message"]  # no server paths to the kiosk
        health = hub.services.photo_search
        assert health is not None and "cannot be loaded" in (health.failed or "")
    finally:
        await hub.stop()


async def test_a_gallery_rebuild_never_holds_up_a_kiosk_search(
    photo_client: TestClient, stocked: Services, staff: dict[str, str]
) -> None:
    """Why: every staff enrolment retrained the head on the one vision thread, so ten photos
    added at once held a kiosk search for 20 s. The retraining now has its own thread; a
    search answers from the previous gallery meanwhile, and the staff request returns once
    the new photo is searchable."""
    service = stocked.photo_search
    assert service is not None
    gate = threading.Event()
    blocker = service._gallery_builder.submit(gate.wait, 30)  # a rebuild that takes its time
    headers = {**staff, "Content-Type": "image/jpeg"}
    new = photos("train.txt", OAT_MILK, 6)[5].path.read_bytes()
    adding = asyncio.ensure_future(photo_client.post("/api/products/OAT-1/photos", data=new,
                                                     headers=headers))
    banana = photos("val.txt", BANANA, 1)[0].path.read_bytes()
    found = await asyncio.wait_for(search(photo_client, banana), timeout=10)
    assert found["status"] == 200 and found["results"][0]["sku"] == "BAN-1"
    assert not adding.done()  # waiting for the gallery that holds its photo
    gate.set()
    response = await asyncio.wait_for(adding, timeout=30)
    assert response.status == 201 and (await response.json())["photos"] == 5
    assert blocker.result() is True


async def test_stopping_waits_for_a_gallery_build_without_holding_the_event_loop(
    photo_client: TestClient, stocked: Services
) -> None:
    """Why: stop waited for the vision threads on the event loop, so a gallery build under way
    froze the hub's other requests and its goodbyes until it ended. Here the build ends only
    when the loop lets it."""
    service = stocked.photo_search
    assert service is not None
    release = threading.Event()
    building = service._gallery_builder.submit(release.wait, 10)  # False if never released
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.05)  # the stop is under way
    release.set()
    await asyncio.wait_for(stopping, 15)
    assert building.result() is True


async def test_a_burst_of_enrolments_shares_rebuilds(
    photo_client: TestClient, stocked: Services, staff: dict[str, str]
) -> None:
    service = stocked.photo_search
    assert service is not None
    builds = []
    real = service.refresh

    def counted() -> int:  # a spy: counts and calls the real rebuild
        builds.append(1)
        return real()

    service.refresh = counted  # type: ignore[method-assign]
    headers = {**staff, "Content-Type": "image/jpeg"}
    burst = [p.path.read_bytes() for p in photos("train.txt", BANANA, 14)[4:]]
    answers = await asyncio.gather(
        *(photo_client.post("/api/products/BAN-1/photos", data=d, headers=headers) for d in burst)
    )
    assert [a.status for a in answers] == [201] * 10
    assert len(builds) <= 3, builds
    assert service.engine.gallery is not None and service.engine.gallery.photos == 12 + 10


async def test_images_another_process_imported_are_picked_up(make_config) -> None:
    """Why: ``retail-hub catalog import`` run while the hub is up writes from another process,
    and its images had no embedding until the hub restarted. The hub looks for them every
    minute (here: the job run at once)."""
    config = make_config(vision={"model_path": str(MODEL)})
    hub = await start_hub(config)
    other = build_services(config)  # as the import command would, beside the running hub
    try:
        service = hub.services.photo_search
        assert service is not None
        folder = config.store.images_dir.parent / "catalog"
        folder.mkdir()
        (folder / "oat.jpg").write_bytes(photos("train.txt", OAT_MILK, 1)[0].path.read_bytes())
        row = {"sku": "OAT-1", "names": {"en": "Oat milk"}, "image": "oat.jpg"}
        assert not other.catalog.import_rows([(1, row)], folder).rejected
        assert service.engine.gallery is None
        await service.sync_new_images()
        assert service.engine.gallery is not None and service.engine.gallery.photos == 1
    finally:
        other.close()
        await hub.stop()


async def test_a_wrongly_enrolled_photo_can_be_listed_and_removed(
    photo_client: TestClient, staff: dict[str, str], stocked: Services
) -> None:
    """Why: a photo enrolled under the wrong product taught the kiosk that answer, and staff had
    no way to take it back."""
    oat = photos("train.txt", OAT_MILK, 6)[5].path.read_bytes()
    client = SpecClient(photo_client, staff)
    response, wrong = await client.call(
        "POST", "/api/products/APL-1/photos", data=oat, content_type="image/jpeg"
    )
    assert response.status == 201
    assert (await search(photo_client, oat))["results"][0]["sku"] == "APL-1"

    response, listed = await client.call("GET", "/api/products/APL-1/photos")
    assert response.status == 200 and len(listed["photos"]) == 5
    assert listed["photos"][-1]["image_id"] == wrong["image_id"]
    stored = stocked.config.store.images_dir / listed["photos"][-1]["url"].removeprefix("/images/")
    assert stored.exists()

    url = f"/api/products/APL-1/photos/{wrong['image_id']}"
    assert (await photo_client.delete(url)).status == 401
    response, removed = await client.call("DELETE", url)
    assert response.status == 200 and removed["photos"] == 4
    assert not stored.exists()
    assert (await search(photo_client, oat))["results"][0]["sku"] == "OAT-1"

    response, again = await client.call("DELETE", url)
    assert response.status == 404 and "lists its photos" in again["error"]["message"]
    banana_photo = listed["photos"][0]["image_id"]
    response, elsewhere = await client.call("DELETE", f"/api/products/BAN-1/photos/{banana_photo}")
    assert response.status == 404  # the id belongs to another product
    response, bad = await client.call("DELETE", "/api/products/APL-1/photos/first")
    assert response.status == 400 and "whole number" in bad["error"]["message"]
    response, _ = await client.call("GET", "/api/products/NOPE-1/photos")
    assert response.status == 404


async def test_the_catalogue_image_is_not_removed_through_the_photo_api(
    photo_client: TestClient, staff: dict[str, str], stocked: Services
) -> None:
    with stocked.db.transaction() as tx:
        (image_id,) = tx.execute(
            "INSERT INTO product_images (sku, path, kind, sha256, added_at) "
            "VALUES ('BAN-1', 'BAN-1/catalogue.jpg', 'iconic', 'abc', 0) RETURNING id"
        ).fetchone()
    response, body = await SpecClient(photo_client, staff).call(
        "DELETE", f"/api/products/BAN-1/photos/{image_id}"
    )
    assert response.status == 409 and "import it again" in body["error"]["message"]


async def test_a_burst_of_searches_is_answered_a_few_at_a_time(
    photo_client: TestClient, stocked: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: every upload of a burst was read at once (40 uploads of 6.8 MB: +365 MB); bodies
    now wait unread for one of MAX_UPLOADS places."""
    reading = peak = 0
    real_read = photo_module.read_photo

    async def counting_read(request: aiohttp.web.Request) -> bytes:
        nonlocal reading, peak
        reading += 1
        peak = max(peak, reading)
        try:
            data = await real_read(request)
            await asyncio.sleep(0.05)  # hold the place a moment, as a slow upload would
            return data
        finally:
            reading -= 1

    monkeypatch.setattr(photo_module, "read_photo", counting_read)
    cases = [(BANANA, "BAN-1"), (OAT_MILK, "OAT-1")] * 6
    answers = await asyncio.gather(
        *(search(photo_client, photos("val.txt", c, 1)[0].path.read_bytes()) for c, _ in cases)
    )
    assert [a["results"][0]["sku"] for a in answers] == [sku for _, sku in cases]
    assert peak == MAX_UPLOADS_PER_CLIENT  # one address: its own places, not all of them


async def test_an_upload_that_arrives_too_slowly_gives_its_place_back(
    photo_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: four uploads sending a byte every few seconds held every place, and photo search,
    voice search and staff enrolment waited for good."""
    monkeypatch.setattr(common, "UPLOAD_PAUSE_S", 0.5)  # the real limit is a 15 s pause

    async def trickle() -> AsyncIterator[bytes]:
        yield b"\xff\xd8\xff"
        await asyncio.sleep(3)
        yield b"\x00"

    response = await photo_client.post(
        "/api/search/photo", data=trickle(), headers={"Content-Type": "image/jpeg"}
    )
    body = await response.json()
    # 400, not 408: browsers send a request answered 408 again by themselves, unseen
    assert response.status == 400 and body["error"]["code"] == "too_slow"
    good = photos("val.txt", BANANA, 1)[0].path.read_bytes()
    assert (await search(photo_client, good))["results"][0]["sku"] == "BAN-1"


async def test_a_slow_but_steady_upload_is_answered_and_a_trickle_is_not(
    photo_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a fixed minute for a whole upload refused a 3 MB photo over a poor shop Wi-Fi
    (200 kbit/s needs two minutes), while a trickle could hold a place for that minute. Uploads
    must keep a minimum rate instead (here scaled down: 0.2 s grace, 20 kB/s)."""
    monkeypatch.setattr(common, "UPLOAD_GRACE_S", 0.2)
    monkeypatch.setattr(common, "UPLOAD_MIN_RATE", 20 * 1024)
    good = photos("val.txt", BANANA, 1)[0].path.read_bytes()

    async def paced(data: bytes, piece: int) -> AsyncIterator[bytes]:
        for start in range(0, len(data), piece):
            yield data[start : start + piece]
            await asyncio.sleep(0.05)

    steady = await photo_client.post(  # about 80 kB/s
        "/api/search/photo", data=paced(good, 4096), headers={"Content-Type": "image/jpeg"}
    )
    assert steady.status == 200 and (await steady.json())["results"][0]["sku"] == "BAN-1"
    trickle = await photo_client.post(  # about 4 kB/s
        "/api/search/photo", data=paced(good, 200), headers={"Content-Type": "image/jpeg"}
    )
    assert trickle.status == 400 and (await trickle.json())["error"]["code"] == "too_slow"
