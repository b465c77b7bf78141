"""Browser tests: the real hub (demo catalogue, SQLite on a temp folder, a loopback port) runs in
a background thread for these tests; Debian Chromium, driven by Playwright, has its camera fed a
product photo and its microphone a spoken product name. Each test gets a fresh browser
context; when a test fails, a screenshot of every page it opened and the pages' console are saved
under test-artifacts/ui/, and an uncaught error in a page fails the test."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from hub.app import RunningHub, start_hub
from hub.config.beacons import BeaconsConfig
from hub.demo.store import prepare_demo
from hub.services import Services
from tests.ui.media import camera_y4m, spoken_wav

ROOT = Path(__file__).resolve().parents[2]
GROCERY = ROOT.parent / "shared" / "datasets" / "grocery"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
# Debian's name, then Raspberry Pi OS's older one
CHROMIUM = next((path for path in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if Path(path).exists()), "/usr/bin/chromium")
CAMERA_PHOTO = GROCERY / "val/Packages/Oat-Milk/Oatly-Oat-Milk/Oatly-Oat-Milk_002.jpg"
SPOKEN_QUESTION = "do you have bananas"  # the answer names "bananas" alone
#: How long an action or expectation waits: generous, as CI machines are shared and slow.
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
#: A product with Korean and Chinese names, so the kiosk offers a language switch.
KOREAN_PRODUCT = {"sku": "RICE-CAKE", "names": {"en": "Rice cake", "ko": "떡", "zh": "年糕"},
                  "category": "Bakery", "price": "25.00", "shelf": "D4", "stock": 3}


@dataclass
class UiHub:
    """The running hub, and a way to use it from a test as a till or script would."""

    running: RunningHub
    loop: asyncio.AbstractEventLoop
    token: str
    question_seconds: float

    @property
    def url(self) -> str:
        return self.running.url

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the hub's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A staff API call over HTTP; returns (status, parsed JSON)."""
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())


@pytest.fixture(scope="package")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """(camera file, microphone file, seconds of the spoken question)."""
    folder = tmp_path_factory.mktemp("media")
    camera, microphone = folder / "camera.y4m", folder / "question.wav"
    camera_y4m(CAMERA_PHOTO, camera)
    seconds = spoken_wav(SPOKEN_QUESTION, microphone)
    return camera, microphone, seconds


def wait_for_voice(svc: Services, timeout: float = 180.0) -> None:
    """Voice search loads its model in the background after the hub starts (and again after a
    catalogue import); the tests start once it answers."""
    assert svc.voice_search is not None, "voice search is not part of this hub"
    deadline = time.monotonic() + timeout
    while not (status := svc.voice_search.status())["ready"]:
        assert time.monotonic() < deadline, f"voice search did not get ready: {status['problem']}"
        time.sleep(0.2)


@pytest.fixture(scope="package")
def ui_hub(tmp_path_factory: pytest.TempPathFactory,
           media: tuple[Path, Path, float]) -> Iterator[UiHub]:
    folder = tmp_path_factory.mktemp("hub")
    config = prepare_demo(folder, 0).config
    config.mqtt.enabled = False  # no broker here: the UI tests look at the store alone
    (folder / "no-radio.jsonl").write_text("")
    config.beacons = BeaconsConfig(  # arrivals are recorded by the tests; the fleet is declared
        enabled=True, source="replay", replay_file=folder / "no-radio.jsonl",
        chain_prefix="00112233445566ff", fleet_file=ROOT / "firmware_configs" / "demo-store.yaml")
    token = config.web.load_staff_token()
    assert token is not None
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ui-hub", daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start_hub(config), loop).result(timeout=300)
    hub = UiHub(running, loop, token.get_secret_value(), media[2])
    svc = running.services
    report = hub.run(svc.db.write(svc.catalog.import_rows, [(1, KOREAN_PRODUCT)], folder))
    assert not report.rejected
    wait_for_voice(svc)
    yield hub
    hub.run(running.stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(media: tuple[Path, Path, float]) -> Iterator[Browser]:
    """Chromium for one test module. Playwright's sync API keeps its event loop current while it
    runs, which would stop asyncio tests, so each module that drives a browser starts its own."""
    camera, microphone, _ = media
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            f"--use-file-for-fake-video-capture={camera}",
        ])
        yield browser
        browser.close()


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def context(browser: Browser, ui_hub: UiHub, request: pytest.FixtureRequest
            ) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=ui_hub.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    console: list[str] = []
    context.on("weberror", lambda web_error: errors.append(str(web_error.error)))
    context.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield context
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        for number, page in enumerate(context.pages):
            page.screenshot(path=ARTIFACTS / f"{name}-{number}.png", full_page=True)
        (ARTIFACTS / f"{name}-console.txt").write_text("\n".join(console + errors) + "\n")
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def kiosk_page(page: Page) -> Page:
    """The kiosk, loaded and ready."""
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    return page


@pytest.fixture
def staff_page(page: Page, ui_hub: UiHub) -> Page:
    """The staff page, signed in."""
    page.goto("/staff")
    page.get_by_label("Staff token").fill(ui_hub.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Live", exact=True).wait_for()
    return page


def choose_language(page: Page, name: str) -> None:
    """Choose a language on the kiosk as a customer does: the language button in the top bar,
    then the language, by its own name, in the list it opens."""
    page.locator("#language").click()
    dialog = page.locator("#languages")
    dialog.get_by_role("button", name=name, exact=True).click()
    expect(dialog).to_be_hidden()
