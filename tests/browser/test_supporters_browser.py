"""A campaigner in chromium: upload a CRM export, watch it import, assign, export messages.

At 1280 and 390 px wide, with the keyboard for the forms, axe-core on every
page, and screenshots checked by size. Needs Debian's chromium
(`scripts/ensure-chromium`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_fixtures import (
    assert_accessible,
    assert_screenshot,
    browser_page,  # noqa: F401 - provides page
)
from ops_fixtures import seed
from playwright.sync_api import Page
from sqlalchemy import Engine
from web_fixtures import GOOD_PASSWORD, add_staff, make_app

from sender.devtools.crm_export import write_crm_export
from sender.devtools.webapp import serving
from sender.staff.roles import Role

pytestmark = pytest.mark.browser

CAMPAIGNER = "omar@example.org"
ROWS = 3_000


@pytest.fixture
def served(pg_engine: Engine, tmp_path: Path) -> Iterator[str]:
    seed(pg_engine)
    add_staff(pg_engine, Role.CAMPAIGNER, email=CAMPAIGNER)
    with serving(make_app(pg_engine, upload_dir=tmp_path / "uploads")) as url:
        yield url


@pytest.mark.parametrize("width", [1280, 390])
def test_upload_import_assign_and_export(
    served: str, page: Page, tmp_path: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    export = write_crm_export(tmp_path / "crm-export.csv", ROWS, seed=11)
    page.goto(f"{served}/workspace/supporters/")
    page.fill("input[name=username]", CAMPAIGNER)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{served}/workspace/supporters/")
    assert_accessible(page, impacts=None)

    page.get_by_label("CSV file").set_input_files(str(export.path))
    page.get_by_role("button", name="Upload and import").press("Enter")
    page.wait_for_url("**/workspace/supporters/imports/*")
    done = page.locator("[data-testid=import-done]")
    done.wait_for(timeout=60_000)  # htmx polls the progress until the run is over
    assert page.locator("progress").get_attribute("value") == "100"
    assert page.locator("[data-testid=imported]").inner_text() == f"{export.valid_unique:,}"
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"import-{width}.png", "Import finished")
    page.reload()  # the record survives a reload
    assert page.locator("[data-testid=import-done]").is_visible()

    page.get_by_role("link", name="Next: assign cases").click()
    page.get_by_label("Seed").fill("3")
    page.get_by_role("button", name="Assign", exact=True).press("Enter")
    table = page.locator("[data-testid=case-table]")
    table.wait_for()
    assert "bird" in table.inner_text() and "popi" in table.inner_text()
    assert_accessible(page, impacts=None)
    assert_screenshot(
        page, tmp_path / f"assign-{width}.png", "assignments created", min_bytes=10_000
    )

    page.get_by_label("Case (slug)").fill("bird")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").press("Enter")
    saved = tmp_path / f"solidarity-{width}.csv"
    download.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert download.value.suggested_filename == "solidarity-bird.csv"
    assert lines[0].startswith("reply_id,") and lines[1].endswith("Stay strong")
    page.get_by_role("button", name="Read").press("Enter")
    page.locator("[data-testid=solidarity]").wait_for()
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"solidarity-{width}.png", "Stay strong")
