"""Checks run inside the page: axe-core (the copy shipped with axe-playwright-python) and the
size of everything a finger or a pointer can activate."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

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


def assert_accessible(page: Page, enhanced_contrast: bool = False) -> None:
    """No axe-core violation on the page as it is now (WCAG A/AA and best practices; with
    ``enhanced_contrast`` also the AAA 7:1 contrast rule)."""
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if enhanced_contrast:
        options["rules"] = {"color-contrast-enhanced": {"enabled": True}}
    results = AXE.run(page, options=options)
    assert results.violations_count == 0, results.generate_report()


def visible_targets(page: Page) -> list[dict[str, Any]]:
    """Every visible element a person can activate, with its size in CSS pixels."""
    targets: list[dict[str, Any]] = page.evaluate(_TARGETS_JS)
    return targets


def small_targets(page: Page, minimum: float = KIOSK_TARGET_PX) -> list[dict[str, Any]]:
    return [t for t in visible_targets(page)
            if t["width"] < minimum - 0.5 or t["height"] < minimum - 0.5]
