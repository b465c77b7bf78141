"""The kiosk on a tall upright screen (a floor-standing kiosk, 1080 x 1920 CSS pixels): the
question at eye level, the three ways to search filling the screen below it, and the top bar's
buttons (language, larger text, start over) at the bottom, where a short or seated customer
reaches them, on the start screen as after an answer that scrolled the page, and after the
search in the order of Tab and of a screen reader too. The photo and voice panels fill the
screen until an answer comes, and "did you mean" offers large buttons."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.ui.checks import assert_accessible, focus_order, out_of_reading_order, turn
from tests.ui.conftest import choose_language

UPRIGHT = {"width": 1080, "height": 1920}
MODES = ("#mode-photo", "#mode-voice", "#mode-text")
#: Below this share of the screen's height a customer in a wheelchair, or a short one, reaches
#: on a floor-standing kiosk (its top edge is about 1.9 m up).
REACH = 0.7


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def bar_in_reach(page: Page) -> None:
    bar = box(page, ".bar")
    assert bar["y"] + bar["height"] == pytest.approx(UPRIGHT["height"], abs=1), bar
    for button in page.locator(".bar button:visible").all():
        top = button.bounding_box()
        assert top is not None and top["y"] >= REACH * UPRIGHT["height"], top


@pytest.mark.parametrize("large", [False, True], ids=["text", "larger_text"])
def test_the_ways_to_search_fill_an_upright_screen(kiosk_page: Page, large: bool) -> None:
    """Why: at 1080 x 1920 the start screen used its top 40 %: three 250 px boxes side by side
    under the question, the rest of the screen empty, and "Larger text" and "Start over" at
    the very top, out of reach of a seated customer."""
    turn(kiosk_page, UPRIGHT)
    if large:
        kiosk_page.locator("#large-text").click()
        expect(kiosk_page.locator("html")).to_have_class("large")
    expect(kiosk_page.locator("#prompt")).to_be_in_viewport(ratio=1)
    assert box(kiosk_page, "#prompt")["y"] < 0.1 * UPRIGHT["height"]
    boxes = [box(kiosk_page, mode) for mode in MODES]
    assert len({(round(b["width"]), round(b["height"])) for b in boxes}) == 1, boxes
    assert all(b["height"] >= 400 and b["width"] >= 900 for b in boxes), boxes
    bar = box(kiosk_page, ".bar")
    assert bar["y"] - (boxes[-1]["y"] + boxes[-1]["height"]) < 60, (boxes[-1], bar)
    bar_in_reach(kiosk_page)
    assert kiosk_page.evaluate("document.documentElement.scrollHeight") <= UPRIGHT["height"]


def test_the_bar_stays_in_reach_below_an_answer(kiosk_page: Page) -> None:
    """An answer longer than the screen scrolls under the bar, which stays at the bottom, and
    the result scrolled to is not hidden behind it."""
    turn(kiosk_page, UPRIGHT)
    kiosk_page.get_by_role("button", name="Type the name").click()
    kiosk_page.get_by_role("searchbox").press_sequentially("milk", delay=30)
    cards = kiosk_page.locator("#results .card")
    expect(cards).to_have_count(5)
    kiosk_page.mouse.wheel(0, 2000)
    for _ in range(50):  # the wheel scrolls the page a moment later
        if kiosk_page.evaluate("scrollY") > 0:
            break
        kiosk_page.wait_for_timeout(100)
    assert kiosk_page.evaluate("scrollY") > 0
    bar_in_reach(kiosk_page)
    kiosk_page.evaluate("window.scrollTo(0, 0)")
    cards.nth(1).evaluate("card => card.scrollIntoView({block: 'end'})")
    card, bar = box(kiosk_page, "#results .card >> nth=1"), box(kiosk_page, ".bar")
    assert card["y"] + card["height"] <= bar["y"] + 1, (card, bar)


@pytest.mark.parametrize("large", [False, True], ids=["text", "larger_text"])
def test_the_panels_buttons_are_large_on_an_upright_screen(kiosk_page: Page, large: bool) -> None:
    """Why: "Hold to talk", a button held down while speaking, was 80 px high on a 1920 px
    screen; upright, the screen has room for one as large as a way to search. With larger
    text it was 160 px (larger text's own height for it won over the upright one)."""
    turn(kiosk_page, UPRIGHT)
    if large:
        kiosk_page.locator("#large-text").click()
    kiosk_page.get_by_role("button", name="Ask out loud").click()
    talk = box(kiosk_page, "#talk")
    assert talk["height"] >= 300 and talk["width"] >= 900, talk
    expect(kiosk_page.locator("#talk")).to_be_in_viewport(ratio=1)
    kiosk_page.get_by_role("button", name="Show a photo").click()
    for selector in ("#shutter", "#pick-photo"):
        expect(kiosk_page.locator(selector)).to_be_in_viewport(ratio=1)
        assert box(kiosk_page, selector)["height"] >= 120


@pytest.mark.parametrize("dialog", ["languages", "idle"])
def test_a_list_opens_just_above_the_bar(kiosk_page: Page, dialog: str) -> None:
    """The language list and the "still there?" question open just above the bar, within reach,
    not in the middle of an upright screen."""
    turn(kiosk_page, UPRIGHT)
    choose_language(kiosk_page, "한국어")
    if dialog == "languages":
        kiosk_page.locator("#language").click()
    else:
        kiosk_page.evaluate("document.getElementById('idle').showModal()")
    shown = box(kiosk_page, f"#{dialog}")
    bar = box(kiosk_page, ".bar")
    assert 0 <= bar["y"] - (shown["y"] + shown["height"]) < 60, (shown, bar)


#: Screens on which the focus order is checked: upright (the bar at the bottom) and landscape
#: (at the top), one after the other on the same page, as a screen turned round.
TURNED = [(1280, 800), (1080, 1920), (800, 480), (1080, 1920), (1920, 1080)]


def test_the_focus_follows_what_is_seen_on_an_upright_screen_and_a_wide_one(
        kiosk_page: Page) -> None:
    """Why: upright, the bar is shown at the bottom but came first in the page, so Tab (and a
    switch, and a screen reader) went from "Start over" at the bottom to the ways to search at
    the top. On every screen Tab now goes down the screen, left to right along a row; the bar
    is the page's banner on each, after its main part when upright; a button of the bar keeps
    the focus when the screen turns."""
    page = kiosk_page
    for width, height in TURNED:
        turn(page, {"width": width, "height": height})
        upright = height > width
        order = focus_order(page)
        assert [control["what"] for control in order][:6] == (
            ["mode-photo", "mode-voice", "mode-text", "language", "large-text", "start-over"]
            if upright else
            ["language", "large-text", "start-over", "mode-photo", "mode-voice", "mode-text"])
        assert out_of_reading_order(order) == [], (width, height)
        expect(page.get_by_role("banner")).to_have_count(1)
        expect(page.get_by_role("main")).to_have_count(1)
        after = page.locator("#main").evaluate(
            "main => Boolean(main.compareDocumentPosition(document.querySelector('.bar'))"
            " & Node.DOCUMENT_POSITION_FOLLOWING)")
        assert after == upright, (width, height)
    assert_accessible(page)
    page.locator("#large-text").focus()
    turn(page, {"width": 1280, "height": 800})
    expect(page.locator("#large-text")).to_be_focused()
    turn(page, UPRIGHT)
    expect(page.locator("#large-text")).to_be_focused()
    page.get_by_role("button", name="Ask out loud").click()
    assert out_of_reading_order(focus_order(page)) == []
    page.get_by_role("button", name="Type the name").click()
    page.get_by_role("searchbox").fill("nektarin")  # one search: see test_schemes.retype
    expect(page.locator("#choices button")).not_to_have_count(0)
    assert out_of_reading_order(focus_order(page)) == []


def space_above_bar(page: Page, selector: str) -> float:
    shown = box(page, selector)
    return box(page, ".bar")["y"] - (shown["y"] + shown["height"])


@pytest.mark.parametrize("large", [False, True], ids=["text", "larger_text"])
def test_the_photo_and_voice_panels_fill_an_upright_screen_until_an_answer(
        kiosk_page: Page, large: bool) -> None:
    """Why: upright, the photo and voice panels took the top half of the screen and left the
    rest empty until an answer came. Until one comes, "Hold to talk", and "Take photo" and
    "Choose a picture" under the camera's picture, fill it down to the bar, with larger
    instructions; an answer, when it comes, shows under the panel as before."""
    page = kiosk_page
    turn(page, UPRIGHT)
    if large:
        page.locator("#large-text").click()
    page.get_by_role("button", name="Ask out loud").click()
    assert 0 <= space_above_bar(page, "#panel-voice") < 60
    assert box(page, "#talk")["height"] >= 0.4 * UPRIGHT["height"]
    for words in ("#talk-help", "#talk-limit"):
        assert page.locator(words).evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 30
    page.get_by_role("button", name="Show a photo").click()
    expect(page.get_by_role("button", name="Take photo")).to_be_visible()
    assert 0 <= space_above_bar(page, "#panel-photo") < 60
    assert box(page, "#camera")["height"] >= 0.4 * UPRIGHT["height"] - 1
    for selector in ("#shutter", "#pick-photo"):
        expect(page.locator(selector)).to_be_in_viewport(ratio=1)
        assert box(page, selector)["height"] >= 200 and box(page, selector)["width"] >= 900
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose a picture").click()
    grey = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    chooser.value.set_files(files=[{"name": "grey.png", "mimeType": "image/png", "buffer": grey}])
    expect(page.locator("#answer-title")).to_have_text("Not sure what this is")
    expect(page.locator("#answer-title")).to_be_in_viewport(ratio=1)
    expect(page.locator("#choices")).to_be_in_viewport()


def test_did_you_mean_offers_large_pictures_on_an_upright_screen(kiosk_page: Page) -> None:
    """Why: upright, "did you mean" offered 80 px buttons with 64 px pictures, the rest of the
    screen empty; each product is now a wide button with a picture as large as a result's."""
    turn(kiosk_page, UPRIGHT)
    kiosk_page.get_by_role("button", name="Type the name").click()
    kiosk_page.get_by_role("searchbox").fill("nektarin")  # one search: see test_schemes.retype
    choices = kiosk_page.locator("#choices button")
    expect(choices).not_to_have_count(0)
    for choice in choices.all():
        expect(choice).to_be_in_viewport(ratio=1)
        shown, picture = choice.bounding_box(), choice.locator("img").bounding_box()
        assert shown is not None and shown["height"] >= 200 and shown["width"] >= 900, shown
        assert picture is not None and min(picture["width"], picture["height"]) >= 150, picture
