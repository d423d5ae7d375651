"""The reports page in a real chromium: table and chart at 1280 and 390 px, axe, keyboard, CSV.

Needs Debian's chromium (`scripts/ensure-chromium`); a missing browser fails the test.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_fixtures import browser_page  # noqa: F401 - provides page
from PIL import Image
from playwright.sync_api import Page
from reports_fixtures import NEW, OLD, two_campaigns
from sqlalchemy import Engine
from web_fixtures import GOOD_PASSWORD, STAFF_EMAIL, add_staff, make_app

from sender.devtools.webapp import serving
from sender.staff.roles import Role

pytestmark = pytest.mark.browser
WIDTHS = (1280, 390)
SERIOUS = {"serious", "critical"}


@pytest.fixture
def served(pg_engine: Engine) -> Iterator[str]:
    two_campaigns(pg_engine)
    add_staff(pg_engine, Role.VIEWER)
    with serving(make_app(pg_engine)) as url:
        yield url


def no_serious_violations(page: Page) -> None:
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert not serious, results.generate_report()


def screenshot(page: Page, path: Path, width: int, *texts: str) -> None:
    shown = page.inner_text("main")
    assert all(text in shown for text in texts), texts
    page.screenshot(path=str(path), full_page=True)
    image = Image.open(path)
    assert image.format == "PNG" and image.width == width and path.stat().st_size > 10_000


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/workspace/reports/")
    page.fill("input[name=username]", STAFF_EMAIL)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/workspace/reports/")


def focused(page: Page) -> str:
    """What has the keyboard focus, as `tag name=value` or the link's text."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.tagName.toLowerCase() + ' ' + (e.name || '') + '=' +"
            " (e.value || e.getAttribute('aria-labelledby') || e.textContent.trim()); }"
        )
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_a_report_with_its_chart_compared_and_downloaded(
    served: str, page: Page, tmp_path: Path, width: int
) -> None:
    base = served
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base)
    no_serious_violations(page)
    screenshot(page, tmp_path / f"case-{width}.png", width, "Reports", "bird (Nassima)", "1,080")
    chart = page.locator("svg[role=img]").first
    assert chart.is_visible()
    assert "bird (Nassima): 1,080" in chart.locator("desc").text_content()  # type: ignore[operator]
    # Nothing wider than the screen: the wide table scrolls inside its own region.
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # The keyboard alone reaches every control, then the table's region and the download.
    page.locator("select[name=campaign]").focus()
    reached = [focused(page)]
    for _ in range(8):
        page.keyboard.press("Tab")
        reached.append(focused(page))
    seen = " | ".join(reached)
    controls = ("select campaign=", "select by=", f"input compare={OLD}", "button")
    for control in (*controls, "Download CSV", "div =view-heading"):
        assert control in seen, seen

    page.select_option("select[name=by]", "language")
    page.check(f"input[name=compare][value={OLD}]")
    page.locator("button:has-text('Show')").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=compared by language")
    no_serious_violations(page)
    screenshot(page, tmp_path / f"compared-{width}.png", width, "sends, compared", NEW, OLD)

    with page.expect_download() as download:
        page.click("text=Download CSV")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["language", "metric", NEW, OLD]
    assert ["en", "sends", "960", "320"] in rows


def test_a_bad_choice_reads_as_an_error(served: str, page: Page, tmp_path: Path) -> None:
    base = served
    sign_in(page, base)
    page.goto(f"{base}/workspace/reports/?campaign={NEW}&by=planet")
    assert "by must be one of" in page.inner_text("[role=alert]")
    no_serious_violations(page)
    screenshot(page, tmp_path / "bad.png", 1280, "What to show")
