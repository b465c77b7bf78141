"""Screenshots of a running demo for the README: the kiosk (with a text search) and the staff
page (signed in). Run while 'make demo' is up:

    .venv/bin/python scripts/screenshots.py [--hub http://127.0.0.1:8080] [--data var/demo]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hub", default="http://127.0.0.1:8080")
    parser.add_argument("--data", type=Path, default=Path("var/demo"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    token = (args.data / "staff-token").read_text(encoding="utf-8").strip()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # a kiosk has a camera and a microphone; without them the page rightly offers neither
        browser = playwright.chromium.launch(
            executable_path=args.chromium,
            args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=args.hub)
        page.goto("/kiosk")
        page.get_by_role("button", name="Type the name").click()
        page.get_by_role("searchbox", name="Product name").press_sequentially("oat milk", delay=40)
        page.locator("#answer-title").wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(OUT / "kiosk.png"))
        page.goto("/staff")
        page.get_by_label("Staff token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Live", exact=True).wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(OUT / "staff.png"))
        browser.close()
    print(f"wrote {OUT / 'kiosk.png'} and {OUT / 'staff.png'}")


if __name__ == "__main__":
    main()
