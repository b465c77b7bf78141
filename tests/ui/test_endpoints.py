"""The pages' server side, every JSON answer checked against docs/openapi.yaml: the pages and
their files (local only, strict content policy), the kiosk's settings, store health, and the two
WebSockets (the staff one refusing anything but the token as its first message)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from hub.config.voice import VoiceConfig
from hub.services import Services
from hub.voice_search import VoiceService
from hub.web import live
from hub.web.pages import STATIC, kiosk_language
from tests.conftest import STAFF_TOKEN
from tests.openapi_check import SpecClient


async def test_kiosk_settings(client: TestClient) -> None:
    response, body = await SpecClient(client).call("GET", "/api/kiosk")
    assert response.status == 200
    assert body["store"] == {"id": "test-store", "name": "Test Store", "currency": "SEK"}
    assert body["languages"] == ["en", "ko"]
    assert body["default_language"] == "en"
    # this hub is built without its features: nothing to search with but text
    assert body["search"] == {"photo": False, "voice": False, "voice_stream": False}
    assert body["voice_max_seconds"] is None


async def test_kiosk_offers_voice_while_it_starts_and_not_once_it_failed(
    client: TestClient, stocked: Services, tmp_path: Path
) -> None:
    """Why: a kiosk whose speech engine could not be loaded still showed the microphone, and a
    customer who tapped it was only told that voice search does not work."""
    missing = tmp_path / "no-such-model"
    service = VoiceService(stocked.catalog, VoiceConfig(engine={"type": "vosk", "model_dir":
                                                                 str(missing)}), 1 << 20)
    stocked.voice_search = service
    try:
        _, body = await SpecClient(client).call("GET", "/api/kiosk")
        assert body["search"]["voice"] is body["search"]["voice_stream"] is True  # starting
        assert body["voice_max_seconds"] == 10.0  # voice.max_seconds, for the kiosk's own stop
        await service.start()
        await service.stop()  # waits for the load, which fails
        assert service.failed is not None and str(missing) in service.failed
        _, body = await SpecClient(client).call("GET", "/api/kiosk")
        assert body["search"]["voice"] is body["search"]["voice_stream"] is False
        assert body["search"]["photo"] is False
        # the reason names server paths: told to staff, not to kiosk clients
        _, public = await SpecClient(client).call("GET", "/api/search/voice/status")
        assert str(missing) not in public["problem"] and "could not be loaded" in public["problem"]
        _, staff = await SpecClient(client).call("GET", "/api/search/voice/status",
                                                 headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
        assert str(missing) in staff["problem"]
        response, refused = await SpecClient(client).call(
            "POST", "/api/search/voice", data=b"RIFF", content_type="audio/wav")
        assert response.status == 503 and str(missing) not in refused["error"]["message"]
    finally:
        await service.stop()


async def test_kiosk_starts_in_the_store_language(client: TestClient, stocked: Services) -> None:
    stocked.config.store.language = "ko"
    _, body = await SpecClient(client).call("GET", "/api/kiosk")
    assert body["default_language"] == "ko"
    stocked.config.store.language = "zh"  # no product has a Chinese name: English stays
    _, body = await SpecClient(client).call("GET", "/api/kiosk")
    assert body["default_language"] == "en"


async def test_kiosk_starts_in_a_korean_engines_language_while_it_loads(
    client: TestClient, stocked: Services
) -> None:
    """Why: a kiosk that started while the Korean model was still loading started in English
    and stayed so until the page was loaded again."""
    config = VoiceConfig(engine={"type": "vosk"})  # the packaged Korean model, not loaded here
    stocked.voice_search = VoiceService(stocked.catalog, config, 1 << 20)
    try:
        _, body = await SpecClient(client).call("GET", "/api/kiosk")
        assert body["default_language"] == "ko"
    finally:
        await stocked.voice_search.stop()


@pytest.mark.parametrize(("engine", "expected"), [
    ({"type": "pocketsphinx"}, "en"),
    ({"type": "vosk"}, "ko"),
    ({"type": "vosk", "model_dir": "/srv/vosk-model-small-cn-0.22"}, "zh"),
    ({"type": "vosk", "model_dir": "/srv/model", "language": "zh"}, "zh"),
    ({"type": "vosk", "model_dir": "/srv/model"}, None),  # only its words would tell
])
def test_the_engine_language_is_known_before_it_loads(
    stocked: Services, engine: dict[str, str], expected: str | None
) -> None:
    service = VoiceService(stocked.catalog, VoiceConfig(engine=engine), 1 << 20)
    assert service.language() == expected


def test_kiosk_language_follows_the_voice_engine() -> None:
    """Why: a Korean store whose catalogue also has English names started the kiosk in English,
    where its Korean voice engine could not understand an English question."""
    assert kiosk_language(None, "ko", ["en", "ko"]) == "ko"
    assert kiosk_language("en", "ko", ["en", "ko"]) == "en"  # the store's choice first
    assert kiosk_language(None, "zh", ["en", "ko"]) == "en"
    assert kiosk_language(None, None, ["ko", "zh"]) == "ko"
    assert kiosk_language(None, None, []) == "en"


@pytest.mark.parametrize("path", ["/", "/kiosk", "/staff"])
async def test_pages_are_served_with_a_strict_policy(client: TestClient, path: str) -> None:
    response, body = await SpecClient(client).call("GET", path)
    assert response.status == 200 and response.content_type == "text/html"
    assert b'<script type="module"' in body
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_responses_name_no_server_versions(client: TestClient) -> None:
    """Why: every response said "Server: Python/3.11 aiohttp/3.x", which tells anyone on the
    shop's network which published flaws to try."""
    for path in ("/kiosk", "/static/base.css", "/api/kiosk", "/api/nope"):
        response = await client.get(path)
        assert response.headers["Server"] == "retail-hub", path


async def test_static_files_and_refusals(client: TestClient) -> None:
    spec = SpecClient(client)
    for path, kind in (("/static/base.css", "text/css"),
                       ("/static/js/kiosk.js", "text/javascript")):
        response = await client.get(path)
        assert (response.status, response.content_type) == (200, kind)
        assert response.headers["Cache-Control"] == "no-cache"
    # Why %00: a NUL byte made the path unusable and was answered 500 with a traceback
    for path in ("/static/nope.js", "/static/..%2fpages.py", "/static/..%2F..%2Fapp.py",
                 "/static/a%00", "/images/a%00.jpg"):
        response, error = await spec.call("GET", path)
        assert response.status == 404, path
        assert error["error"]["code"] == "not_found"


def test_pages_load_nothing_from_elsewhere() -> None:
    files = sorted(p for p in STATIC.rglob("*") if p.suffix in {".html", ".css", ".js"})
    assert len(files) >= 10
    outside = {str(p.relative_to(STATIC)): re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
               for p in files if (text := p.read_text(encoding="utf-8"))}
    assert {name: urls for name, urls in outside.items() if urls} == {}


def test_page_weight_is_small() -> None:
    total = sum(p.stat().st_size for p in STATIC.rglob("*") if p.is_file())
    assert total < 150 * 1024, f"static files weigh {total} bytes"


async def test_health_needs_staff(client: TestClient, staff: dict[str, str]) -> None:
    response, _ = await SpecClient(client).call("GET", "/api/staff/health")
    assert response.status == 401
    response, body = await SpecClient(client, staff).call("GET", "/api/staff/health")
    assert response.status == 200
    assert body["sync"]["state"] == "disabled"
    assert body["sync"]["outbox_depth"] == body["sync"]["last_seq"] > 0
    assert body["sync"]["last_acked_seq"] == 0
    assert 0 < body["disk"]["free_bytes"] <= body["disk"]["total_bytes"]
    assert body["disk"]["database_bytes"] > 0
    assert body["beacons"]["beacons"] == []


async def test_kiosk_socket_pushes_stock_changes(client: TestClient,
                                                 staff: dict[str, str]) -> None:
    async with client.ws_connect("/api/live/stock", compress=15) as ws:
        # Why no deflate, which browsers ask for: closed sockets kept their zlib state alive
        # until a full garbage collection, and the feeds' memory rose 34 MB an hour in a soak
        assert ws.compress == 0
        response = await client.post("/api/stock/movements", headers=staff,
                                     json={"sku": "OAT-1", "qty": 2, "reason": "sale"})
        assert response.status == 201
        message = await ws.receive_json(timeout=5)
    assert message == {"type": "stock", "sku": "OAT-1", "on_hand": 8, "reserved": 0,
                       "available": 8, "seq": (await response.json())["seq"]}


@pytest.mark.parametrize("first", ['{"token": "wrong-token-0123456789"}', "hello",
                                   '{"token": 5}', None,
                                   # Why: nested JSON raised RecursionError (answered 500 into
                                   # the upgraded socket)
                                   '{"a":' * 10_000 + "1" + "}" * 10_000])
async def test_staff_socket_refuses_without_the_token(client: TestClient, first: str | None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "AUTH_TIMEOUT_S", 0.3)
    async with client.ws_connect("/api/staff/events") as ws:
        if first is not None:
            await ws.send_str(first)
        message = await ws.receive_json(timeout=5)
        closing = await ws.receive(timeout=5)
    assert message["type"] == "error" and message["error"]["code"] == "unauthorized"
    assert closing.type == WSMsgType.CLOSE and closing.data == live.CLOSE_UNAUTHORIZED


async def test_staff_socket_refuses_a_token_given_twice(client: TestClient) -> None:
    """Why: json.loads kept the last token, so a message whose first token a proxy or a log
    reader took was authenticated by another one."""
    async with client.ws_connect("/api/staff/events") as ws:
        await ws.send_str(f'{{"token": "wrong-token-0123456789", "token": "{STAFF_TOKEN}"}}')
        message = await ws.receive_json(timeout=5)
        closing = await ws.receive(timeout=5)
    assert message["type"] == "error" and message["error"] == {
        "code": "unauthorized",
        "message": 'the key "token" appears twice in one object; send {"token": "<staff '
                   'token>"} once'}
    assert closing.type == WSMsgType.CLOSE and closing.data == live.CLOSE_UNAUTHORIZED


async def test_staff_socket_says_why_it_closes_on_an_oversized_message(
        client: TestClient) -> None:
    """Why: a 5 MB first message dropped the connection with no reason given."""
    async with client.ws_connect("/api/staff/events") as ws:
        await ws.send_str('{"token": "' + "x" * (live.MAX_MESSAGE_BYTES + 1) + '"}')
        message = await ws.receive_json(timeout=5)
        closing = await ws.receive(timeout=5)
    assert message["type"] == "error" and message["error"]["code"] == "too_big"
    assert f"{live.MAX_MESSAGE_BYTES:,} bytes" in message["error"]["message"]
    assert closing.type == WSMsgType.CLOSE and closing.data == WSCloseCode.MESSAGE_TOO_BIG


async def test_staff_socket_streams_events_after_the_token(client: TestClient,
                                                           staff: dict[str, str]) -> None:
    async with client.ws_connect("/api/staff/events") as ws:
        await ws.send_json({"token": STAFF_TOKEN})
        assert await ws.receive_json(timeout=5) == {"type": "ready"}
        response = await client.post("/api/orders", headers=staff,
                                     json={"id": "WS-1", "lines": [{"sku": "BAN-1", "qty": 3}]})
        assert response.status == 201
        placed = await response.json()
        statuses = []
        while placed not in statuses:
            message = await ws.receive_json(timeout=5)
            if message["type"] == "order.status":
                statuses.append(message["data"])
    assert [s["state"] for s in statuses] == ["pending", "accepted"]


async def test_sockets_close_when_the_hub_stops(client: TestClient) -> None:
    async with client.ws_connect("/api/live/stock") as kiosk, \
            client.ws_connect("/api/staff/events") as staff:
        await staff.send_json({"token": STAFF_TOKEN})
        assert await staff.receive_json(timeout=5) == {"type": "ready"}
        await client.server.app.shutdown()
        closed = [await kiosk.receive(timeout=5), await staff.receive(timeout=5)]
    assert [(m.type, m.data) for m in closed] == [(WSMsgType.CLOSE, WSCloseCode.GOING_AWAY)] * 2


def test_static_folder_is_where_the_pages_live() -> None:
    assert STATIC == Path(live.__file__).parent / "static"
    assert (STATIC / "kiosk.html").is_file() and (STATIC / "staff.html").is_file()


async def test_live_sockets_from_one_address_are_capped(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a machine opening about a thousand kiosk sockets used up the hub's open files and
    /healthz stopped answering. Past the cap a socket is told why and closed (a browser shows a
    page nothing of a refused upgrade); devices behind the TLS proxy count by X-Forwarded-For."""
    monkeypatch.setattr(live, "MAX_SOCKETS_PER_CLIENT", 3)
    tablet = {"X-Forwarded-For": "10.0.0.5"}
    opened = [await client.ws_connect("/api/live/stock", headers=tablet) for _ in range(3)]
    async with client.ws_connect("/api/live/stock", headers=tablet) as refused:
        told = await refused.receive_json(timeout=5)
        closing = await refused.receive(timeout=5)
    assert told["error"]["code"] == "busy"
    assert closing.type == WSMsgType.CLOSE and closing.data == live.CLOSE_BUSY
    other = await client.ws_connect("/api/live/stock", headers={"X-Forwarded-For": "10.0.0.6"})
    kiosk = await client.ws_connect("/api/live/stock")  # the kiosk on the hub itself
    assert (await client.get("/healthz")).status == 200
    for ws in [*opened, other, kiosk]:
        await ws.close()
