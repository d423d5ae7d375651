"""An admin's first sign-in in a real chromium: enrol two-factor, reach the dashboard, read the log.

axe-core (from axe-playwright-python, which ships it: nothing loads from the
internet) checks the enrolment and audit pages. Needs Debian's chromium
(`scripts/ensure-chromium`); a missing browser fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_fixtures import browser_page  # noqa: F401 - provides page
from ops_fixtures import seed
from PIL import Image
from playwright.sync_api import Page
from sqlalchemy import Engine
from web_fixtures import GOOD_PASSWORD, STAFF_EMAIL, add_staff, audit_rows, enrol_staff, make_app

from sender.devtools.webapp import serving
from sender.staff.roles import Role

pytestmark = pytest.mark.browser


@pytest.fixture
def served(pg_engine: Engine) -> Iterator[tuple[str, Engine]]:
    seed(pg_engine)
    add_staff(pg_engine, Role.ADMIN)
    with serving(make_app(pg_engine)) as url:
        yield url, pg_engine


def accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    image = Image.open(path)
    assert image.format == "PNG" and image.width == 1280 and path.stat().st_size > 10_000


def test_an_admin_enrols_then_reads_the_audit_log(
    served: tuple[str, Engine], page: Page, tmp_path: Path
) -> None:
    base, engine = served
    page.goto(f"{base}/dashboard/")
    accessible(page)  # the login page
    page.fill("input[name=username]", STAFF_EMAIL)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/account/two-factor")

    assert page.locator("[data-testid=qr] svg").count() == 1
    secret = page.locator("[data-testid=totp-secret]").inner_text().strip()
    accessible(page)
    screenshot(page, tmp_path / "enrol.png")
    page.goto(f"{base}/dashboard/")  # every other page waits for the enrolment
    page.wait_for_url(f"{base}/dashboard/account/two-factor")
    assert page.locator("[data-testid=totp-secret]").inner_text().strip() == secret

    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    codes = page.locator("[data-testid=recovery-codes] li")
    codes.first.wait_for()
    assert codes.count() == 10
    accessible(page)
    page.click("text=go to the dashboard")
    page.wait_for_url(f"{base}/dashboard/")
    assert page.locator("[data-testid=signed-in-as]").inner_text() == STAFF_EMAIL
    assert page.locator("[data-testid=wave-status]").count() >= 1
    screenshot(page, tmp_path / "dashboard.png")

    page.click("nav >> text=Audit log")
    page.wait_for_url(f"{base}/dashboard/audit")
    actions = page.locator("[data-testid=audit-table] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions == ["2fa.enrol", "login"]
    accessible(page)
    page.fill("input[name=what]", "login")
    page.click("main button[type=submit]")
    page.wait_for_url("**/dashboard/audit?*what=login*")
    assert page.locator("[data-testid=audit-table] tbody tr").count() == 1
    screenshot(page, tmp_path / "audit.png")
    page.click("nav >> text=Account")
    assert "on, 10 recovery codes left" in page.locator("[data-testid=two-factor]").inner_text()
    accessible(page)
    assert [r.action for r in audit_rows(engine)] == ["2fa.enrol", "login"]


def test_a_viewer_with_two_factor_signs_in_and_sees_no_controls(
    served: tuple[str, Engine], page: Page, tmp_path: Path
) -> None:
    base, engine = served
    viewer = add_staff(engine, Role.VIEWER, email="omar@example.org")
    secret = enrol_staff(engine, viewer)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", viewer.email)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/login/code*")
    accessible(page)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")
    assert page.locator("[data-testid=wave-status]").count() >= 1
    assert page.locator("main form button").count() == 0  # no pause, resume or cancel
    assert page.locator("nav >> text=Audit log").count() == 0
    screenshot(page, tmp_path / "viewer.png")
    assert [(r.action, r.actor) for r in audit_rows(engine)] == [("login", viewer.email)]
