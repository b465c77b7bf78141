"""Checks run inside the page: axe-core (the copy shipped with axe-playwright-python, a dev
extra of pyproject.toml: installed by `make setup`, never fetched at run time), the
size of everything a finger or a pointer can activate, and the contrast of a control as it looks
at the moment (hovered, pressed), which axe does not put it in, and the order Tab goes in."""

from __future__ import annotations

import itertools
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page

AXE = Axe()
KIOSK_TARGET_PX = 80

_TARGETS_JS = """() => [...document.querySelectorAll(
    'button, a[href], input, select, textarea, summary, [role=button], '
    + '[tabindex]:not([tabindex="-1"])')]
  .filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden')
  .map((el) => {
    const box = el.getBoundingClientRect();
    return {what: el.outerHTML.slice(0, 80), width: box.width, height: box.height};
  })"""


#: Waits for the page's transitions and animations to end (at most 2 s): axe read a button's
#: colours halfway from off to on, 2.8:1, a state no one sees for longer than 200 ms.
_SETTLE_JS = """() => Promise.race([
    Promise.all(document.getAnimations().map((animation) => animation.finished.catch(() => {}))),
    new Promise((resolve) => setTimeout(resolve, 2000))])"""


def assert_accessible(page: Page, colours: bool = True) -> None:
    """No axe-core violation on the page as it is now, once its transitions have ended: WCAG
    2.0-2.2 A/AA, the best practices, and the AAA 7:1 contrast rule (both pages promise 7:1).
    ``colours=False`` leaves contrast out, for forced colours: the system's theme owns the
    colours there, and axe read the page's own colour for words the screen showed white on
    black ("Hold to talk", 1.3:1); ``contrast`` reads what the screen shows."""
    page.evaluate(_SETTLE_JS)
    options: dict[str, Any] = {"resultTypes": ["violations"], "rules": {
        "color-contrast-enhanced": {"enabled": colours}, "color-contrast": {"enabled": colours}}}
    results = AXE.run(page, options=options)
    assert results.violations_count == 0, results.generate_report()


def visible_targets(page: Page) -> list[dict[str, Any]]:
    """Every visible element a person can activate, with its size in CSS pixels."""
    targets: list[dict[str, Any]] = page.evaluate(_TARGETS_JS)
    return targets


def small_targets(page: Page, minimum: float = KIOSK_TARGET_PX) -> list[dict[str, Any]]:
    return [t for t in visible_targets(page)
            if t["width"] < minimum - 0.5 or t["height"] < minimum - 0.5]


#: The WCAG contrast formula in the page, on computed colours taken as opaque: ``behind`` is
#: the nearest opaque background from a node up.
_COLOURS_JS = """
  const rgb = (value) => value.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => [r, g, b].map((c) => c / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (colour, paper) => {
    const [light, dark] = [luminance(rgb(colour)), luminance(paper)].sort((a, b) => b - a);
    return (light + 0.05) / (dark + 0.05);
  };
  const behind = (node) => {
    for (; node; node = node.parentElement) {
      const colour = rgb(getComputedStyle(node).backgroundColor);
      if (colour.length < 4 || colour[3] > 0) return colour;
    }
    return [255, 255, 255];
  };"""

_CONTRAST_JS = "(el) => {" + _COLOURS_JS + """
  return ratio(getComputedStyle(el).color, behind(el)); }"""

#: An element's edge (its top border) against what is around it.
_EDGE_JS = "(el) => {" + _COLOURS_JS + """
  return ratio(getComputedStyle(el).borderTopColor, behind(el.parentElement)); }"""


def contrast(target: Locator) -> float:
    """Contrast ratio of an element's text on its background as it looks now (hovered, focused,
    pressed or not): the WCAG formula on the computed colours, both taken as opaque."""
    ratio: float = target.evaluate(_CONTRAST_JS)
    return ratio


def edge_contrast(target: Locator) -> float:
    """Contrast ratio of an element's edge (its top border) on what is around it."""
    ratio: float = target.evaluate(_EDGE_JS)
    return ratio


def low_contrast_buttons(page: Page, minimum: float = 7.0) -> list[str]:
    """Every visible button whose text falls under ``minimum`` while the mouse is over it (those
    of the open dialog only: it takes the pointer from the page behind it)."""
    dialog = page.locator("dialog[open]")
    low = []
    for button in (dialog if dialog.count() else page).locator("button:visible").all():
        button.hover()
        if (ratio := contrast(button)) < minimum:
            low.append(f"{button.evaluate('el => el.outerHTML.slice(0, 80)')}: {ratio:.2f}")
    return low


#: The focused element's ring: its outline's width and its contrast with what is around it (the
#: nearest opaque background outside the element), the WCAG formula as in ``_CONTRAST_JS``.
_RING_JS = "() => {" + _COLOURS_JS + """
  const el = document.activeElement;
  if (el === null || el === document.body) return null;
  const style = getComputedStyle(el);
  return {key: [...document.querySelectorAll('*')].indexOf(el),
          what: el.outerHTML.slice(0, 80), style: style.outlineStyle,
          width: parseFloat(style.outlineWidth),
          ratio: ratio(style.outlineColor, behind(el.parentElement))};
}"""

#: The focused element and where it is on the page (not the screen: Tab scrolls).
_FOCUSED_BOX_JS = """() => {
  const el = document.activeElement;
  if (el === null || el === document.body) return null;
  const box = el.getBoundingClientRect();
  return {key: [...document.querySelectorAll('*')].indexOf(el),
          what: el.id || el.outerHTML.slice(0, 60), x: box.x + scrollX, y: box.y + scrollY,
          right: box.right + scrollX, bottom: box.bottom + scrollY};
}"""


def tab_round(page: Page, probe_js: str) -> list[dict[str, Any]]:
    """Tabs once round every control of the page (the open dialog's, when one is open), from
    wherever the focus is, and returns what ``probe_js`` says of each control in the order Tab
    reaches them: a dict with a ``key`` unique to the control, or null where the focus is on
    none (past the last control, before the first again)."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()
    for _ in range(len(visible_targets(page)) + 2):
        page.keyboard.press("Tab")
        probe = page.evaluate(probe_js)
        if probe is None:
            continue
        if probe["key"] in seen:
            break
        seen.add(probe["key"])
        found.append(probe)
    return found


def weak_focus_rings(page: Page, minimum: float = 3.0, width_px: float = 3.0) -> list[str]:
    """Every control whose focus ring is missing, thinner than ``width_px`` or under
    ``minimum`` contrast with what is around it (WCAG 2.4.13 asks for 3:1), Tab once round."""
    return [f"{ring['what']}: {ring['style']} {ring['width']:.1f} px, {ring['ratio']:.2f}:1"
            for ring in tab_round(page, _RING_JS)
            if ring["style"] == "none" or ring["width"] < width_px or ring["ratio"] < minimum]


def focus_order(page: Page) -> list[dict[str, Any]]:
    """The page's controls in the order Tab reaches them from the start of the page (Tab past
    the last control first), each with its box on the page."""
    for _ in range(len(visible_targets(page)) + 2):
        page.keyboard.press("Tab")
        if page.evaluate(_FOCUSED_BOX_JS) is None:
            break
    return tab_round(page, _FOCUSED_BOX_JS)


def out_of_reading_order(order: list[dict[str, Any]]) -> list[str]:
    """Each step of ``order`` (boxes on the page, as ``focus_order`` gives them) that goes
    against the order a page is read in: to the next control below, or beside to its right
    on the same row. WCAG 2.4.3: a switch or keyboard user sees the focus jump otherwise."""
    wrong = []
    for a, b in itertools.pairwise(order):
        below = b["y"] >= a["bottom"] - 1
        same_row = b["y"] < a["bottom"] - 1 and b["bottom"] > a["y"] + 1
        if not (below or (same_row and b["x"] >= a["right"] - 1)):
            wrong.append(f"{a['what']} ({a['x']:.0f}, {a['y']:.0f}) then {b['what']} "
                         f"({b['x']:.0f}, {b['y']:.0f})")
    return wrong


#: kiosk.js moves the bar after the search where this matches (kiosk.css's upright layout).
UPRIGHT_QUERY = "(orientation: portrait) and (min-height: 1500px)"


def turn(page: Page, size: dict[str, int]) -> None:
    """Show the page at ``size`` and wait until kiosk.js has put the bar where the screen
    wants it: the media query's change event comes a moment after the resize, and a page
    measured before it had the bar of the last screen (seen on a busy machine)."""
    page.set_viewport_size(size)
    page.wait_for_function(
        f"() => matchMedia({UPRIGHT_QUERY!r}).matches === Boolean(document.getElementById("
        "'main').compareDocumentPosition(document.querySelector('.bar')) & "
        "Node.DOCUMENT_POSITION_FOLLOWING)")
