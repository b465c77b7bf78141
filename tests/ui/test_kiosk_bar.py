"""The kiosk's top bar (store name, language, larger text, start over) holds one designed
layout on every kiosk screen the style sheet is made for, whatever the number of catalogue
languages, in both text sizes: its controls in one row, none overlapping another, none cut
off or outside the screen, each at least 80 x 80 CSS pixels."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.ui.checks import KIOSK_TARGET_PX

#: The kiosk screens kiosk.css is made for: landscape, upright, and small touch screens.
KIOSK_SIZES = [(1920, 1080), (1280, 800), (1080, 1920), (1024, 600), (800, 480)]
ONE = ["en"]
FOUR = ["en", "ko", "sv", "zh"]
#: More than the brief's four, some with long names for themselves.
SIX = ["en", "id", "ko", "sv", "vi", "zh"]

_BAR_JS = """() => {
  const box = (el) => { const b = el.getBoundingClientRect();
    return {x: b.x, y: b.y, right: b.right, bottom: b.bottom, width: b.width, height: b.height}; };
  const parts = [...document.querySelectorAll('.bar .store, .bar button')]
    .filter((el) => el.getClientRects().length > 0);
  return {bar: box(document.querySelector('.bar')),
          parts: parts.map((el) => ({what: el.id || el.textContent.trim(), ...box(el),
            cut: el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1,
            button: el.tagName === 'BUTTON'}))};
}"""


def answer_with_languages(page: Page, languages: list[str]) -> None:
    """The hub's kiosk settings as a catalogue in ``languages`` gives them."""
    def answer(route: Route) -> None:
        config = route.fetch().json()
        route.fulfill(json={**config, "languages": languages})

    page.unroute_all()
    page.route(re.compile(r".*/api/kiosk$"), answer)


def load(page: Page, languages: list[str], large: bool) -> None:
    answer_with_languages(page, languages)
    page.goto("/kiosk")
    page.wait_for_selector("html[data-ready=true]")
    if large:
        page.locator("#large-text").click()
    page.mouse.click(2, page.viewport_size["height"] - 2)  # no hover, no focus ring


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (min(a["right"], b["right"]) - max(a["x"], b["x"]) > 0.5
            and min(a["bottom"], b["bottom"]) - max(a["y"], b["y"]) > 0.5)


def bar_problems(page: Page) -> list[str]:
    """What is wrong with the bar as it is now: controls in more than one row, overlapping,
    cut off, outside the bar or the screen, or smaller than a kiosk target."""
    width = page.viewport_size["width"]
    found = page.evaluate(_BAR_JS)
    bar, parts = found["bar"], found["parts"]
    buttons = [part for part in parts if part["button"]]
    wrong = []
    if buttons and max(b["y"] for b in buttons) >= min(b["bottom"] for b in buttons):
        wrong.append("controls in more than one row: " + ", ".join(
            f"{b['what']} at y={b['y']:.0f}" for b in buttons))
    for i, a in enumerate(parts):
        wrong += [f"{a['what']} overlaps {b['what']}" for b in parts[i + 1:] if overlap(a, b)]
        if a["cut"]:
            wrong.append(f"{a['what']}: its content is cut off")
        if a["x"] < -0.5 or a["right"] > width + 0.5:
            wrong.append(f"{a['what']}: outside the screen ({a['x']:.0f}-{a['right']:.0f})")
        if a["y"] < bar["y"] - 0.5 or a["bottom"] > bar["bottom"] + 0.5:
            wrong.append(f"{a['what']}: outside the bar")
        if a["button"] and min(a["width"], a["height"]) < KIOSK_TARGET_PX - 0.5:
            wrong.append(f"{a['what']}: {a['width']:.0f} x {a['height']:.0f} px")
    return wrong


def bar_height(page: Page) -> float:
    height: float = page.locator(".bar").evaluate("e => e.getBoundingClientRect().height")
    return height


@pytest.mark.parametrize("large", [False, True], ids=["text", "larger_text"])
@pytest.mark.parametrize("size", KIOSK_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_bar_holds_one_layout_for_four_languages(
        page: Page, size: tuple[int, int], large: bool) -> None:
    """Why: with a catalogue in four languages the bar's buttons wrapped onto a second and third
    row (at 1280 x 800 with larger text "Start over" alone on one), pushing the ways to search
    down and off a small screen; its height depended on the number of languages."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    load(page, ONE, large)
    one_language = bar_height(page)
    assert bar_problems(page) == [], "one language"
    for languages in (FOUR, SIX):
        load(page, languages, large)
        assert bar_problems(page) == [], languages
        assert bar_height(page) == pytest.approx(one_language, abs=1), languages


#: The list's buttons, and the part of the screen the list shows (its box, less its border).
_LIST_JS = """() => {
  const dialog = document.getElementById('languages');
  const d = dialog.getBoundingClientRect(), edge = dialog.clientLeft;
  return {shown: {x: d.x + edge, y: d.y + edge, right: d.right - edge, bottom: d.bottom - edge},
          buttons: [...dialog.querySelectorAll('button')].map((el) => {
    const b = el.getBoundingClientRect();
    return {what: el.textContent.trim(), x: b.x, y: b.y, right: b.right, bottom: b.bottom,
            width: b.width, height: b.height,
            cut: el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1};
  })};
}"""


@pytest.mark.parametrize("large", [False, True], ids=["text", "larger_text"])
@pytest.mark.parametrize("size", KIOSK_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_language_list_shows_every_language_large(
        page: Page, size: tuple[int, int], large: bool) -> None:
    """The list the language button opens shows six languages, each in its own name, on the
    screen at once as kiosk-sized buttons; the language chosen, here the one with the longest
    name, is on the bar's button, and the bar keeps its height and shows it whole."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    load(page, ONE, large)
    one_language = bar_height(page)
    load(page, SIX, large)
    page.locator("#language").click()
    choices = page.locator("#languages").get_by_role("button")
    expect(choices).to_have_text(["Close", "English", "Indonesia", "한국어", "svenska",
                                  "Tiếng Việt", "中文"])
    found = page.evaluate(_LIST_JS)
    boxes, shown = found["buttons"], found["shown"]
    assert 0 <= shown["x"] and 0 <= shown["y"]
    assert shown["right"] <= size[0] and shown["bottom"] <= size[1]
    wrong = []
    for i, a in enumerate(boxes):
        wrong += [f"{a['what']} overlaps {b['what']}" for b in boxes[i + 1:] if overlap(a, b)]
        if a["cut"]:
            wrong.append(f"{a['what']}: its content is cut off")
        if (a["x"] < shown["x"] - 0.5 or a["y"] < shown["y"] - 0.5
                or a["right"] > shown["right"] + 0.5 or a["bottom"] > shown["bottom"] + 0.5):
            wrong.append(f"{a['what']}: not shown, or only in part")
        if min(a["width"], a["height"]) < KIOSK_TARGET_PX - 0.5:
            wrong.append(f"{a['what']}: {a['width']:.0f} x {a['height']:.0f} px")
    assert wrong == []
    choices.filter(has_text="Tiếng Việt").click()
    expect(page.locator("#languages")).to_be_hidden()
    expect(page.locator("#language")).to_have_text("Language Tiếng Việt")
    assert bar_problems(page) == []
    assert bar_height(page) == pytest.approx(one_language, abs=1)
