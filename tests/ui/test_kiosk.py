"""The kiosk in Chromium: text search as you type, "did you mean", "not in this store", stock
pushed live, language switch, larger text, the return to the home screen, and a keyboard-only
search."""

from __future__ import annotations

import itertools
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from sync.ports import StockLevel
from tests.ui.conftest import UiHub, choose_language

_refs = itertools.count(1)


def type_search(page: Page, text: str) -> None:
    page.get_by_role("button", name="Type the name").click()
    page.get_by_role("searchbox", name="Product name").press_sequentially(text, delay=40)


def answer_title(page: Page):  # noqa: ANN201 - a Playwright locator
    return page.locator("#answer-title")


def move_stock(hub: UiHub, sku: str, qty: int, reason: str) -> dict:
    status, body = hub.call("POST", "/api/stock/movements",
                            {"sku": sku, "qty": qty, "reason": reason,
                             "ref": f"ui-test:{sku}:{next(_refs)}"})
    assert status == 201, body
    return body


def available(hub: UiHub, sku: str) -> int:
    status, body = hub.call("GET", f"/api/stock/{sku}")
    assert status == 200
    return int(body["available"])


def test_text_search_shows_price_shelf_and_stock(kiosk_page: Page, ui_hub: UiHub) -> None:
    type_search(kiosk_page, "oat milk")
    expect(answer_title(kiosk_page)).to_have_text("Results for “oat milk”")
    cards = kiosk_page.locator("#results .card")
    expect(cards).not_to_have_count(0)
    assert cards.count() <= 5
    first = cards.first
    expect(first.locator(".name")).to_have_text("Oatly Oat Milk")
    expect(first.locator(".price")).to_have_text("SEK 33.90")
    expect(first.locator(".shelf")).to_have_text("Shelf C3")
    expect(first.locator(".stock")).to_have_text(f"{available(ui_hub, 'GS-045')} left")
    image = first.locator("img")
    assert (image.get_attribute("src") or "").startswith("/images/GS-045/")
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") > 0
    # a customer who cannot read the screen well hears the answer
    with kiosk_page.expect_response(lambda r: "/api/speech?" in r.url) as spoken:
        kiosk_page.get_by_role("button", name="Hear the answer").click()
    assert spoken.value.status == 200
    said = parse_qs(urlsplit(spoken.value.url).query)["text"][0]
    assert said == f"Oatly Oat Milk. Shelf C3. {available(ui_hub, 'GS-045')} left."


def test_a_slow_text_search_says_it_is_searching(kiosk_page: Page) -> None:
    """Why: photo search said "Looking…" while it worked, text search nothing at all."""
    held: list[Route] = []
    kiosk_page.route(re.compile(r".*/api/products\?.*"), lambda route: held.append(route))
    status = kiosk_page.locator("#text-status")
    expect(status).to_have_attribute("aria-live", "polite")
    type_search(kiosk_page, "oat milk")
    expect(status).to_have_text("Searching…")
    kiosk_page.unroute_all()
    for route in held:
        route.fallback()
    expect(answer_title(kiosk_page)).to_have_text("Results for “oat milk”")
    expect(status).to_have_text("")


_SCROLLS_JS = """{
    window.scrolls = [];
    const scroll = Element.prototype.scrollIntoView;
    Element.prototype.scrollIntoView = function (options) {
        window.scrolls.push(options?.behavior ?? "auto");
        return scroll.call(this, options);
    };
}"""


def test_the_answer_scrolls_into_view_on_a_1280_by_800_screen(page: Page) -> None:
    """Why: at 1280 x 800, after typing "oat milk" the top result's shelf was at the bottom edge
    and its stock below it. The answer now scrolls into view, smoothly, or at once for a
    customer whose device asks for reduced motion."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.add_init_script(_SCROLLS_JS)
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    type_search(page, "oat milk")
    first = page.locator("#results .card").first
    expect(first.locator(".name")).to_have_text("Oatly Oat Milk")
    for part in (".name", ".shelf", ".stock"):
        expect(first.locator(part)).to_be_in_viewport(ratio=1)
    expect(page.get_by_role("searchbox", name="Product name")).to_be_in_viewport()
    assert "smooth" in page.evaluate("window.scrolls")
    page.emulate_media(reduced_motion="reduce")
    page.evaluate("() => { window.scrolls = []; window.scrollTo(0, 0); }")
    page.get_by_role("searchbox", name="Product name").fill("banana")
    expect(first.locator(".name")).to_have_text("Banana")
    expect(first.locator(".stock")).to_be_in_viewport(ratio=1)
    assert page.evaluate("window.scrolls") and "smooth" not in page.evaluate("window.scrolls")


def test_unsure_text_offers_did_you_mean(kiosk_page: Page) -> None:
    type_search(kiosk_page, "straberry")
    expect(answer_title(kiosk_page)).to_have_text("Did you mean…")
    kiosk_page.get_by_role("button", name="Yoggi Strawberry Yoghurt").click()
    expect(answer_title(kiosk_page)).to_have_text("Here it is:")
    expect(kiosk_page.locator("#results .card .name")).to_have_text(["Yoggi Strawberry Yoghurt"])


def test_unknown_product_is_not_in_this_store(kiosk_page: Page) -> None:
    type_search(kiosk_page, "brocoli")
    expect(answer_title(kiosk_page)).to_have_text("Not in this store")
    expect(kiosk_page.locator("#answer-text")).to_contain_text("“brocoli”")
    expect(kiosk_page.locator("#results .card")).to_have_count(0)


SEARCH_DOWN = "The search is not working right now. Please ask a member of staff."


def test_a_search_that_fails_is_told_in_plain_words(kiosk_page: Page) -> None:
    """Why: with the hub down a typed search answered "Sorry, something went wrong: The hub
    cannot be reached.", and a server error "…: The hub answered 500."."""
    failures = {"oat": lambda route: route.abort("connectionrefused"),
                "banana": lambda route: route.fulfill(status=500, body="Internal Server Error"),
                "kiwi": lambda route: route.fulfill(status=502, json={"error": {
                    "code": "bad_gateway", "message": "upstream hub.local:8080 refused"}})}

    def fail(route: Route) -> None:
        query = parse_qs(urlsplit(route.request.url).query)["q"][0]
        failures[query](route)

    kiosk_page.route(re.compile(r".*/api/products\?.*"), fail)
    type_search(kiosk_page, "oat")
    for query in failures:
        box = kiosk_page.get_by_role("searchbox", name="Product name")
        box.fill(query)
        expect(answer_title(kiosk_page)).to_have_text(SEARCH_DOWN)
    expect(kiosk_page.locator("#announce")).to_have_text(SEARCH_DOWN)


def test_stock_change_is_pushed_to_an_open_kiosk(kiosk_page: Page, ui_hub: UiHub) -> None:
    type_search(kiosk_page, "rice cake")
    stock = kiosk_page.locator("#results .card", has_text="Rice cake").locator(".stock")
    units = available(ui_hub, "RICE-CAKE")
    expect(stock).to_have_text(f"{units} left")
    move_stock(ui_hub, "RICE-CAKE", 1, "sale")
    expect(stock).to_have_text(f"{units - 1} left")
    move_stock(ui_hub, "RICE-CAKE", units - 1, "sale")
    expect(stock).to_have_text("Out of stock here")
    move_stock(ui_hub, "RICE-CAKE", units, "receipt")
    expect(stock).to_have_text(f"{units} left")


def test_out_of_stock_here_points_to_a_nearby_store(kiosk_page: Page, ui_hub: UiHub) -> None:
    nearby = ui_hub.running.services.nearby
    nearby.names["store-b"] = "Market Södermalm"
    nearby.update("store-b", StockLevel("GS-007", 4, 0, 4, 12))  # as sync hears it from B
    units = available(ui_hub, "GS-007")
    move_stock(ui_hub, "GS-007", units, "sale")
    try:
        type_search(kiosk_page, "kiwi")
        stock = kiosk_page.locator("#results .card", has_text="Kiwi").locator(".stock")
        expect(stock).to_have_text("Out of stock here, available at Market Södermalm")
        move_stock(ui_hub, "GS-007", 2, "receipt")  # pushed live: it is back here
        expect(stock).to_have_text("2 left")
    finally:
        move_stock(ui_hub, "GS-007", units - 2, "receipt")
        del nearby.names["store-b"]


def test_language_switch_changes_words_and_product_names(kiosk_page: Page) -> None:
    choose_language(kiosk_page, "한국어")
    expect(kiosk_page.locator("html")).to_have_attribute("lang", "ko")
    expect(kiosk_page.locator("#prompt")).to_have_text("무엇을 찾으세요?")
    kiosk_page.get_by_role("button", name="이름 입력").click()
    kiosk_page.get_by_role("searchbox", name="상품 이름").press_sequentially("떡", delay=40)
    expect(kiosk_page.locator("#results .card .name").first).to_have_text("떡")
    stock = kiosk_page.locator("#results .card .stock").first
    expect(stock).to_have_text(re.compile(r"^\d+개 남음$"))
    choose_language(kiosk_page, "English")
    expect(kiosk_page.locator("#results .card .name").first).to_have_text("Rice cake")


def test_every_name_and_word_is_marked_with_the_language_it_is_in(kiosk_page: Page) -> None:
    """Why: in 中文 the page was marked Chinese over English words (screen readers read the
    whole kiosk with a Mandarin voice), and a product with no name in the kiosk's language was
    marked with that language all the same."""
    choose_language(kiosk_page, "中文")
    expect(kiosk_page.locator("html")).to_have_attribute("lang", "zh")
    expect(kiosk_page.locator("#prompt")).to_have_text("您在找什么？")
    kiosk_page.get_by_role("button", name="输入名称").click()
    box = kiosk_page.get_by_role("searchbox", name="商品名称")
    box.press_sequentially("年糕", delay=40)
    rice_cake = kiosk_page.locator("#results .card .name").first
    expect(rice_cake).to_have_text("年糕")
    expect(rice_cake).to_have_attribute("lang", "zh")
    choose_language(kiosk_page, "한국어")
    kiosk_page.get_by_role("searchbox", name="상품 이름").fill("banana")
    banana = kiosk_page.locator("#results .card .name").first
    expect(banana).to_have_text(re.compile("Banana", re.IGNORECASE))
    expect(banana).to_have_attribute("lang", "en")  # on a page marked Korean
    expect(kiosk_page.locator("html")).to_have_attribute("lang", "ko")


def test_korean_not_in_store_takes_the_particle_the_word_needs(kiosk_page: Page) -> None:
    """Why: the answer said "“자전거”을(를) 찾지 못했습니다", and the kiosk read "을(를)" aloud as
    two particles."""
    choose_language(kiosk_page, "한국어")
    kiosk_page.get_by_role("button", name="이름 입력").click()
    box = kiosk_page.get_by_role("searchbox", name="상품 이름")
    text = kiosk_page.locator("#answer-text")
    cases = (("자전거", "를"), ("수영복", "을"), ("lego", "을(를)"), ("자전거?", "를"),
             ("수영복! ", "을"), ("콜라 2", "를"), ("콜라 10", "을"))
    for word, particle in cases:
        box.fill("")
        box.press_sequentially(word, delay=40)
        expect(text).to_contain_text(f"이 매장에서 “{word.strip()}”{particle} 찾지 못했습니다.")


def test_kiosk_starts_and_starts_over_in_the_store_language(page: Page, ui_hub: UiHub) -> None:
    config = ui_hub.running.services.config.store
    config.language = "ko"
    try:
        page.goto("/kiosk")
        page.wait_for_selector("html[data-ready=true]")
        expect(page.locator("html")).to_have_attribute("lang", "ko")
        expect(page.locator("#prompt")).to_have_text("무엇을 찾으세요?")
        choose_language(page, "English")
        expect(page.locator("#prompt")).to_have_text("What are you looking for?")
        page.get_by_role("button", name="Start over").click()
        expect(page.locator("html")).to_have_attribute("lang", "ko")
    finally:
        config.language = None


def test_larger_text(kiosk_page: Page) -> None:
    body_size = "() => getComputedStyle(document.body).fontSize"
    assert kiosk_page.evaluate(body_size) == "24px"
    toggle = kiosk_page.get_by_role("button", name="Larger text")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert kiosk_page.evaluate(body_size) == "32px"


def answered_on_a_held_clock(page: Page) -> None:
    """A kiosk whose clock the test moves, showing the answer to a typed "banana"."""
    page.clock.install()
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    type_search(page, "banana")
    page.clock.run_for(500)
    expect(answer_title(page)).to_have_text("Results for “banana”")


def test_idle_kiosk_warns_then_clears_for_the_next_customer(page: Page) -> None:
    answered_on_a_held_clock(page)
    dialog = page.get_by_role("dialog", name="Are you still there?")
    page.clock.run_for(60_000)
    expect(dialog).to_be_hidden()
    page.clock.run_for(15_000)
    expect(dialog).to_be_visible()
    page.get_by_role("button", name="I'm still here").click()
    expect(dialog).to_be_hidden()
    expect(answer_title(page)).to_have_text("Results for “banana”")
    page.clock.run_for(95_000)
    expect(page.locator("#main")).to_have_attribute("data-mode", "")
    expect(page.locator("#answer")).to_be_hidden()
    expect(page.locator("#query")).to_have_value("")


def test_the_idle_warning_is_read_aloud_to_a_customer_who_listened(page: Page) -> None:
    """Why: a customer who had the answer read aloud (and may not read the screen) got the
    "Are you still there?" warning on screen only, and the answer went 20 s later, often while
    they walked to the shelf. A customer who only read the answer is not spoken to."""
    spoken: list[str] = []
    page.on("request", lambda r: spoken.append(parse_qs(urlsplit(r.url).query)["text"][0])
            if "/api/speech" in r.url else None)
    answered_on_a_held_clock(page)
    page.clock.run_for(75_000)  # read, not listened to: the warning is silent
    expect(page.get_by_role("dialog", name="Are you still there?")).to_be_visible()
    page.get_by_role("button", name="I'm still here").click()
    page.get_by_role("button", name="Hear the answer").click()
    page.clock.run_for(75_000)
    expect(page.get_by_role("dialog", name="Are you still there?")).to_be_visible()
    page.wait_for_timeout(300)
    assert [text.split(" The screen")[0] for text in spoken[1:]] == ["Are you still there?"]
    assert spoken[0].startswith("Banana."), spoken


def test_a_language_without_the_kiosks_words_is_spoken_and_marked_as_each_part_is(
        page: Page) -> None:
    """Why (review): in a language the kiosk has no words in (Swedish here, a catalogue
    language the hub is made to report), its English words were marked, and its warning
    spoken, as that language."""
    spoken: list[dict[str, list[str]]] = []
    page.on("request", lambda r: spoken.append(parse_qs(urlsplit(r.url).query))
            if "/api/speech" in r.url else None)

    def with_swedish(route: Route) -> None:
        config = route.fetch().json()
        route.fulfill(json={**config, "languages": [*config["languages"], "sv"]})

    page.route(re.compile(r".*/api/kiosk$"), with_swedish)
    page.clock.install()
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    choose_language(page, "svenska")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#prompt")).to_have_text("What are you looking for?")
    type_search(page, "rice cake")
    page.clock.run_for(500)
    name = page.locator("#results .card .name").first
    expect(name).to_have_text("Rice cake")
    expect(name).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Hear the answer").click()
    page.clock.run_for(75_000)
    expect(page.get_by_role("dialog", name="Are you still there?")).to_be_visible()
    page.wait_for_timeout(300)
    assert [s["lang"][0] for s in spoken] == ["sv", "en"]  # the answer, then the warning
    assert spoken[1]["text"][0].startswith("Are you still there?")


def idle_countdown(page: Page) -> list[str]:
    """Every warning the idle dialog shows, second by second, until the kiosk clears."""
    dialog = page.get_by_role("dialog")
    for _ in range(90):
        if dialog.is_visible():
            break
        page.clock.run_for(1000)
    seen = []
    while dialog.is_visible():
        seen.append(page.locator("#idle-text").inner_text())
        page.clock.run_for(1000)
    return seen


def test_the_idle_countdown_says_second_and_seconds(page: Page) -> None:
    """Why: the last warning read "clear for the next customer in 1 seconds"."""
    answered_on_a_held_clock(page)
    seen = idle_countdown(page)
    assert "The screen will clear for the next customer in 2 seconds." in seen
    assert seen[-1] == "The screen will clear for the next customer in 1 second."
    choose_language(page, "한국어")
    page.get_by_role("button", name="이름 입력").click()
    page.get_by_role("searchbox").press_sequentially("떡", delay=40)
    assert idle_countdown(page)[-1] == "1초 후 다음 손님을 위해 화면이 지워집니다."  # one form


def test_a_waiting_kiosk_stops_offering_a_search_that_failed(page: Page, ui_hub: UiHub) -> None:
    """Why: a kiosk loaded while the models were loading kept showing the microphone after the
    engine failed; it asked again only on "Start over", which nobody presses between customers.
    """
    voice = ui_hub.running.services.voice_search
    assert voice is not None
    page.clock.install()
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    ask = page.get_by_role("button", name="Ask out loud")
    expect(ask).to_be_visible()
    voice.failed = "the speech engine could not be loaded: (a test)"
    try:
        page.clock.run_for(31_000)
        expect(ask).to_be_hidden()
        expect(page.get_by_role("button", name="Show a photo")).to_be_visible()
    finally:
        voice.failed = None
    page.clock.run_for(31_000)
    expect(ask).to_be_visible()


def test_keyboard_only_search(kiosk_page: Page) -> None:
    focused = "() => document.activeElement.id"
    ring = "() => { const s = getComputedStyle(document.activeElement);" \
           " return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 3; }"
    for _ in range(10):
        kiosk_page.keyboard.press("Tab")
        assert kiosk_page.evaluate(ring), f"no visible focus on #{kiosk_page.evaluate(focused)}"
        if kiosk_page.evaluate(focused) == "mode-text":
            break
    else:
        raise AssertionError("Tab never reached the text search button")
    kiosk_page.keyboard.press("Enter")
    assert kiosk_page.evaluate(focused) == "query"
    kiosk_page.keyboard.type("banana", delay=40)
    expect(kiosk_page.locator("#results .card .name").first).to_have_text("Banana")
    kiosk_page.keyboard.press("Tab")
    assert kiosk_page.evaluate(focused) == "clear-query" and kiosk_page.evaluate(ring)
    for _ in range(10):
        kiosk_page.keyboard.press("Shift+Tab")
        if kiosk_page.evaluate(focused) == "start-over":
            break
    else:
        raise AssertionError("Shift+Tab never reached the start-over button")
    kiosk_page.keyboard.press("Enter")
    expect(kiosk_page.locator("#main")).to_have_attribute("data-mode", "")
    expect(kiosk_page.locator("#answer")).to_be_hidden()


_LONGEST_MOTION_S = """() => Math.max(0, ...[...document.querySelectorAll('*')].flatMap((el) => {
    const style = getComputedStyle(el);
    return [style.transitionDuration, style.animationDuration]
      .flatMap((value) => value.split(',').map((part) => parseFloat(part)));
}))"""


def test_motion_is_brief_and_off_for_reduced_motion(kiosk_page: Page) -> None:
    type_search(kiosk_page, "banana")
    expect(kiosk_page.locator("#results .card")).not_to_have_count(0)
    assert 0 < kiosk_page.evaluate(_LONGEST_MOTION_S) <= 0.3
    kiosk_page.emulate_media(reduced_motion="reduce")
    assert kiosk_page.evaluate(_LONGEST_MOTION_S) == 0


def test_the_language_list_by_keyboard_touch_and_for_the_next_customer(page: Page) -> None:
    """The language button opens the list on the language in use; Escape, "Close", a tap
    beside the list and a choice close it, the focus back on the button. Left open, it is
    closed for the next customer, as a search left open is."""
    page.clock.install()
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    button, dialog = page.locator("#language"), page.locator("#languages")
    expect(button).to_have_accessible_name("Language English")
    button.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="English")).to_be_focused()
    expect(dialog.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the next one: 한국어
    expect(dialog).to_be_hidden()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(button).to_have_accessible_name("언어 한국어")
    expect(button).to_be_focused()
    button.click()
    page.get_by_role("button", name="닫기").click()
    expect(dialog).to_be_hidden()
    button.click()
    page.mouse.click(5, 5)  # beside the list
    expect(dialog).to_be_hidden()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    page.get_by_role("button", name="처음으로").click()
    button.click()  # in English again, and walked away from
    page.clock.run_for(95_000)
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("dialog", name="Are you still there?")).to_be_hidden()
    expect(button).to_have_accessible_name("Language English")


@pytest.mark.parametrize("size", [(800, 480), (1024, 600)], ids=["800x480", "1024x600"])
@pytest.mark.parametrize("larger", [False, True], ids=["text", "larger-text"])
def test_the_three_ways_to_search_show_whole_on_a_small_screen(page: Page, larger: bool,
                                                               size: tuple[int, int]) -> None:
    """Why: tried as a new user would on an 800 x 480 touch screen, the start screen showed
    "Show a photo" and "Ask out loud" cut at the bottom edge and "Type the name" not at all;
    with larger text all three were still cut."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    if larger:
        page.get_by_role("button", name="Larger text").click()
        expect(page.locator("html")).to_have_class(re.compile(r"\blarge\b"))
    expect(page.locator("#prompt")).to_be_in_viewport(ratio=1)
    for name in ("Show a photo", "Ask out loud", "Type the name"):
        expect(page.get_by_role("button", name=name)).to_be_in_viewport(ratio=1)
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 80 and box["width"] >= 80, box


#: Every screen the kiosk's tests cover: small, landscape, a tablet upright, a floor-standing one.
EVERY_SCREEN = [(800, 480), (1024, 600), (1280, 800), (800, 1280), (1920, 1080), (1080, 1920)]
MODES = ("Show a photo", "Ask out loud", "Type the name")


@pytest.mark.parametrize("size", EVERY_SCREEN, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("larger", [False, True], ids=["text", "larger-text"])
def test_hold_to_talk_is_the_largest_button_on_every_screen(page: Page, larger: bool,
                                                            size: tuple[int, int]) -> None:
    """Why: "Hold to talk", the way to search that asks least of an older customer, was meant
    to be 192 px high (8rem) but was 105 px on every screen but a floor-standing one: every
    kiosk button's 80 px floor won over its height. It is at least 192 px high and the
    largest button on the screen, shown whole with the three ways to search, on 800 x 480 as
    on the others (where the bar stays at the top, it shows whole too)."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    if larger:
        page.get_by_role("button", name="Larger text").click()
    page.get_by_role("button", name="Ask out loud").click()
    talk = page.get_by_role("button", name="Hold to talk")
    expect(talk).to_be_focused()
    box = talk.bounding_box()
    assert box is not None and box["height"] >= 191.5 and box["width"] >= size[0] / 2, box
    areas = [b["width"] * b["height"] for b in (
        button.bounding_box() for button in page.locator("button:visible").all()) if b]
    assert box["width"] * box["height"] == max(areas)
    for shown in [talk, *(page.get_by_role("button", name=name) for name in MODES)]:
        expect(shown).to_be_in_viewport(ratio=1)
    if size[1] >= 700:
        expect(page.get_by_role("button", name="Start over")).to_be_in_viewport(ratio=1)


def test_start_over_stays_in_reach_when_an_answer_scrolls_the_page(kiosk_page: Page) -> None:
    """Why: tried as a new user would at 1280 x 800, the answer scrolled the page and took the
    top bar, "Start over" and the language with it, off the screen; an older customer rarely
    thinks of scrolling back up for them. On a screen that tall the bar stays at the top, and
    the answer is not hidden under it."""
    kiosk_page.set_viewport_size({"width": 1280, "height": 800})
    kiosk_page.get_by_role("button", name="Larger text").click()
    type_search(kiosk_page, "oat milk")
    expect(answer_title(kiosk_page)).to_have_text("Results for “oat milk”")
    first = kiosk_page.locator("#results .card").first
    first.scroll_into_view_if_needed()
    kiosk_page.mouse.wheel(0, 2000)
    kiosk_page.wait_for_function("window.scrollY > 0")
    start_over = kiosk_page.get_by_role("button", name="Start over")
    box = start_over.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800, box
    bar = kiosk_page.locator(".bar").bounding_box()
    assert bar is not None and bar["y"] == 0, bar
    kiosk_page.evaluate("window.scrollTo(0, 0)")
    first.evaluate("card => card.scrollIntoView({block: 'start'})")
    card = first.bounding_box()
    assert card is not None and card["y"] >= bar["height"] - 1, (card, bar)
    start_over.click()
    expect(kiosk_page.get_by_role("button", name="Type the name")).to_be_visible()
