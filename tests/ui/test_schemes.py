"""The kiosk and the staff page follow the screen's settings: a dark screen (chosen by a kiosk's
operator against glare, or a staff tablet in dark mode), more contrast, and forced colours (a
Windows high-contrast theme, light or dark). In each, every word keeps 7:1 on what is behind it
(axe's AAA rule, on the computed colours), every button 7:1 under a mouse and turned on, and
every focus ring 3:1 against what is around it."""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.ui.checks import (
    assert_accessible,
    contrast,
    edge_contrast,
    low_contrast_buttons,
    turn,
    weak_focus_rings,
)
from tests.ui.conftest import choose_language

Scheme = tuple[Literal["light", "dark"], Literal["no-preference", "more"],
               Literal["none", "active"]]
SCHEMES: dict[str, Scheme] = {
    "light": ("light", "no-preference", "none"),
    "dark": ("dark", "no-preference", "none"),
    "more_contrast": ("light", "more", "none"),
    "dark_more_contrast": ("dark", "more", "none"),
    "forced_colours": ("light", "no-preference", "active"),
    "forced_colours_dark": ("dark", "no-preference", "active"),
}

#: The relative luminance of an element's own background (computed), from 0 (black) to 1.
_LUMINANCE_JS = """(el) => getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).slice(0, 3)
  .map(Number).map((c) => c / 255)
  .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
  .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0)"""


def emulate(page: Page, name: str) -> None:
    scheme, more, forced = SCHEMES[name]
    page.emulate_media(color_scheme=scheme, contrast=more, forced_colors=forced,
                       reduced_motion="reduce")


def retype(page: Page, words: str) -> None:
    """The search field now says ``words``, in one input: typed letter by letter on a busy
    machine, a pause searched a part of the word, and its answer was on screen (and its buttons
    counted) until the whole word's replaced it."""
    page.get_by_role("searchbox").fill(words)


def checked(page: Page, where: str) -> dict[str, Any]:
    """axe, the buttons' contrast and the focus rings of the page as it is now, by name."""
    forced = page.evaluate("matchMedia('(forced-colors: active)').matches")
    assert_accessible(page, colours=not forced)
    return {"where": where, "buttons": low_contrast_buttons(page),
            "rings": weak_focus_rings(page)}


#: The schemes walked whole: each palette once at its darkest (the light ones' more-contrast and
#: forced-colours variants take their colours to black on white; their edges, photo buttons,
#: stock marks and pressed buttons have tests of their own below), six walks had cost 36 s.
WALKED = ["light", "dark", "dark_more_contrast", "forced_colours_dark"]


@pytest.mark.parametrize("name", WALKED)
def test_the_kiosk_stays_readable_in_every_scheme(kiosk_page: Page, name: str) -> None:
    """Why: the kiosk had one light look whatever the screen asked for, and on a dark
    high-contrast theme the focus ring around the search chosen was near-black on black
    (1.1:1). Walked as a customer would on an upright kiosk screen: the start screen, typed
    results, "did you mean", "not in this store", voice, photo, the language list and larger
    text; every word, button and focus ring is checked on each."""
    page = kiosk_page
    turn(page, {"width": 1080, "height": 1920})
    emulate(page, name)
    dark = SCHEMES[name][0] == "dark"
    paper = page.locator("html").evaluate(_LUMINANCE_JS)
    assert (paper < 0.02) if dark else (paper > 0.8), f"the page's background: {paper:.3f}"
    found = [checked(page, "start")]
    page.get_by_role("button", name="Type the name").click()
    retype(page, "milk")
    expect(page.locator("#results .card")).to_have_count(5)
    found.append(checked(page, "results"))
    retype(page, "nektarin")
    expect(page.locator("#choices button")).not_to_have_count(0)
    found.append(checked(page, "did you mean"))
    retype(page, "xylophone")
    expect(page.locator("#answer-title")).to_have_text("Not in this store")
    found.append(checked(page, "not in this store"))
    page.get_by_role("button", name="Ask out loud").click()
    found.append(checked(page, "voice"))
    page.get_by_role("button", name="Show a photo").click()
    expect(page.get_by_role("button", name="Take photo")).to_be_visible()
    found.append(checked(page, "photo"))
    choose_language(page, "한국어")
    page.locator("#language").click()
    found.append(checked(page, "language list"))
    page.keyboard.press("Escape")
    toggle = page.locator("#large-text")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert contrast(toggle) >= 7
    found.append(checked(page, "larger text"))
    assert [f for f in found if f["buttons"] or f["rings"]] == []


@pytest.mark.parametrize("name", ["more_contrast", "dark_more_contrast"])
def test_more_contrast_takes_the_edges_to_the_extreme(kiosk_page: Page, name: str) -> None:
    """Why: with more contrast asked for, the edges of the search field, its panel and the
    result cards stayed mid-grey (6.7:1); they go to black (white on a dark screen), as the
    words do."""
    emulate(kiosk_page, name)
    kiosk_page.get_by_role("button", name="Type the name").click()
    retype(kiosk_page, "milk")
    expect(kiosk_page.locator("#results .card")).to_have_count(5)
    edges = {selector: round(edge_contrast(kiosk_page.locator(selector).first), 1)
             for selector in ("#query", "#panel-text", "#results .card")}
    assert {selector: ratio for selector, ratio in edges.items() if ratio < 15} == {}


#: What a forced-colours mode leaves of an element's look.
_LOOK_JS = ("e => { const s = getComputedStyle(e); return [s.backgroundColor, s.color, "
            "s.borderTopColor].join(' / '); }")
#: The mark before an element's words (a tick, a cross), and its edge.
_MARK_JS = """(e) => { const s = getComputedStyle(e);
  return {mark: getComputedStyle(e, '::before').content, edge: s.borderTopStyle,
          width: parseFloat(s.borderTopWidth)}; }"""


@pytest.mark.parametrize("name", ["forced_colours", "forced_colours_dark"])
def test_forced_colours_keep_the_photo_buttons_and_the_stock_apart(kiosk_page: Page,
                                                                  name: str) -> None:
    """Why: in forced colours "Take photo" (filled in the store's colour) and "Choose a
    picture" (outlined) looked the same, and the stock, green or red on a tint, became plain
    words. "Take photo" is now filled with the system's button colours the other way round,
    each of the two has its own picture, and the stock has an edge and a mark for in stock or
    out (a tick, a cross)."""
    page = kiosk_page
    emulate(page, name)
    page.get_by_role("button", name="Show a photo").click()
    shutter = page.get_by_role("button", name="Take photo")
    pick = page.get_by_role("button", name="Choose a picture")
    expect(shutter).to_be_visible()
    page.evaluate("document.activeElement.blur()")
    assert shutter.evaluate(_LOOK_JS) != pick.evaluate(_LOOK_JS)
    assert contrast(shutter) >= 7 and contrast(pick) >= 7
    pictures = [button.locator("svg") for button in (shutter, pick)]
    for picture in pictures:
        expect(picture).to_be_visible()
    assert pictures[0].inner_html() != pictures[1].inner_html()
    page.get_by_role("button", name="Type the name").click()
    retype(page, "milk")
    badge = page.locator("#results .stock").first
    expect(badge).to_have_class("stock ok")
    in_stock = badge.evaluate(_MARK_JS)
    assert in_stock["edge"] == "solid" and in_stock["width"] >= 3, in_stock
    assert edge_contrast(badge) >= 7
    badge.evaluate("e => { e.className = 'stock out'; }")  # the look results.js gives none left
    out = badge.evaluate(_MARK_JS)
    assert out["edge"] == "solid" and out["width"] >= 3, out
    assert {in_stock["mark"], out["mark"]} & {"none", "normal"} == set()
    assert in_stock["mark"] != out["mark"]


@pytest.mark.parametrize("name", ["forced_colours", "forced_colours_dark"])
def test_a_button_that_is_on_keeps_the_system_highlight_under_a_mouse(kiosk_page: Page,
                                                                     name: str) -> None:
    """Why: in forced colours "Larger text", once on, showed the store's dark blue while the
    mouse was over it (the hover rule outranked the forced one): on a dark high-contrast
    screen a dark button on black."""
    page = kiosk_page
    emulate(page, name)
    larger = page.get_by_role("button", name="Larger text")
    larger.click()
    expect(larger).to_have_attribute("aria-pressed", "true")
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement.blur()")
    away = larger.evaluate(_LOOK_JS)
    larger.hover()
    assert larger.evaluate(_LOOK_JS) == away
    assert contrast(larger) >= 7


def grey(shot: bytes) -> Any:
    return cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_GRAYSCALE).astype(float)


def test_product_photos_are_softened_on_a_dark_screen(kiosk_page: Page) -> None:
    """Why: on a dark screen the product photos, mostly white around the product, glared as
    bright white squares. They are dimmed: their brightest part a good deal darker than on a
    light screen, their picture otherwise the same (the product as recognisable)."""
    page = kiosk_page
    page.emulate_media(reduced_motion="reduce")
    page.get_by_role("button", name="Type the name").click()
    retype(page, "milk")
    photo = page.locator("#results .card img").first
    expect(photo).to_have_js_property("complete", True)
    page.mouse.move(0, 0)
    shots = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        shots[scheme] = grey(photo.screenshot())[10:-10, 10:-10]  # inside its round corners
    light, dark = shots["light"], shots["dark"]
    peaks = {scheme: float(np.percentile(shot, 99)) for scheme, shot in shots.items()}
    assert 0.65 * peaks["light"] <= peaks["dark"] <= 0.85 * peaks["light"], peaks
    alike = float(np.corrcoef(light.ravel(), dark.ravel())[0, 1])
    assert alike >= 0.98, alike


@pytest.mark.parametrize("name", ["dark", "dark_more_contrast"])
def test_the_staff_page_follows_a_dark_screen(staff_page: Page, name: str) -> None:
    """The staff page shares the kiosk's colours: on a tablet in dark mode it is dark too, the
    pickup queue and the stock section readable at 7:1."""
    emulate(staff_page, name)
    assert staff_page.locator("html").evaluate(_LUMINANCE_JS) < 0.02
    assert_accessible(staff_page)
    assert low_contrast_buttons(staff_page) == []
    staff_page.get_by_role("link", name="Stock").click()
    staff_page.get_by_label("Product name or SKU").fill("GS-045")
    staff_page.get_by_role("button", name="Find").click()
    expect(staff_page.locator("#stock-name")).to_have_text("Oatly Oat Milk")
    assert_accessible(staff_page)
    assert low_contrast_buttons(staff_page) == []
