"""Debian's chromium under playwright, for the browser tests (tests/browser), and the one
home of what they check on a page: axe-core, sideways scrolling, the screenshot.

A missing browser fails the test with the install command: never a silent skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(name="page")
def browser_page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/ensure-chromium "
            "(as root: apt-get install -y chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 800})
        finally:
            browser.close()


# --- what every browser test checks on a page -----------------------------------------

SERIOUS = frozenset({"serious", "critical"})


def assert_accessible(page: Page, impacts: frozenset[str] | None = SERIOUS) -> None:
    """axe-core in the page: no violation of these impacts (None: of any impact)."""
    results = Axe().run(page)
    found = [v for v in results.response["violations"] if impacts is None or v["impact"] in impacts]
    assert not found, f"{page.url}\n" + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in found
    )


def assert_no_sideways_scroll(page: Page) -> None:
    """At phone width nothing pushes the page wider than the screen (tables scroll inside)."""
    wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wider <= 0, f"{page.url} is {wider}px wider than the {page.viewport_size} viewport"


def assert_screenshot(page: Page, path: Path, text: str, min_bytes: int = 8_000) -> Path:
    """The page's main part says `text`; its full-page PNG is the viewport's width and not blank."""
    shown = page.locator("main").inner_text()
    assert text in shown, f"{text!r} not on {page.url}:\n{shown[:2000]}"
    page.screenshot(path=str(path), full_page=True)
    viewport = page.viewport_size
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert viewport is None or image.width == viewport["width"], (image.size, viewport)
    assert path.stat().st_size > min_bytes, f"{path} is {path.stat().st_size} bytes"
    return path


def check_page(page: Page, path: Path, text: str, min_bytes: int = 8_000) -> Path:
    """One step's evidence: accessible, then photographed with its key text."""
    assert_accessible(page)
    return assert_screenshot(page, path, text, min_bytes)


def sign_in_with_code(page: Page, base: str, email: str, password: str, secret: str) -> None:
    """Password, then the authenticator's code, from the keyboard; lands on the dashboard."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/login/code*")
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/dashboard/*")
