"""The campaigns workspace in a real chromium, wide and phone-narrow, checked by axe-core.

An admin creates a campaign whose window runs around today from the form, and a
campaigner pauses a case after reading how many messages that holds back; both
are driven from the keyboard where a person would use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from browser_fixtures import (
    assert_accessible,
    assert_screenshot,
    browser_page,  # noqa: F401 - provides page
)
from ops_fixtures import seed
from playwright.sync_api import Page
from sqlalchemy import Engine, select
from web_fixtures import GOOD_PASSWORD, add_staff, audit_rows, enrol_staff, make_app

from sender.campaign.cases import case_text_changes
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Campaign, Case
from sender.devtools.webapp import serving
from sender.staff.roles import Role

pytestmark = pytest.mark.browser
ADMIN = "ada@example.org"
CAMPAIGNER = "omar@example.org"
WIDTHS = (1280, 390)
CASES = """cases:
  - slug: bird
    person: Nassima al-Sada
    country: SA
    status: active
    content:
      en:
        title: Free them
        summary: Held for writing.
        ask: Release them.
        authority: The Minister
        authority_address: [Ministry, Capital]
        letter: Please release them.
"""


@pytest.fixture
def served(pg_engine: Engine) -> Iterator[tuple[str, Engine, str]]:
    seed(pg_engine)
    secret = enrol_staff(pg_engine, add_staff(pg_engine, Role.ADMIN, email=ADMIN))
    add_staff(pg_engine, Role.CAMPAIGNER, email=CAMPAIGNER)
    with serving(make_app(pg_engine)) as url:
        yield url, pg_engine, secret


def sign_in(page: Page, base: str, email: str, secret: str | None = None) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.keyboard.press("Enter")
    if secret is not None:
        page.wait_for_url(f"{base}/login/code*")
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/dashboard/*")


@pytest.mark.parametrize("width", WIDTHS)
def test_an_admin_creates_a_campaign_whose_window_is_around_today(
    served: tuple[str, Engine, str], page: Page, tmp_path: Path, width: int
) -> None:
    base, engine, secret = served
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base, ADMIN, secret)
    page.click("nav >> text=Campaigns")
    page.wait_for_url(f"{base}/workspace/campaigns/")
    assert_accessible(page, impacts=None)
    today = SystemClock().now().date()
    page.get_by_label("Short name (slug)").fill("w4r-today")
    page.get_by_label("Name", exact=True).fill("Write for Rights today")
    page.get_by_label("First day").fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("Last day").fill((today + timedelta(days=14)).isoformat())
    page.get_by_label("Time zone").fill("Europe/Madrid")
    page.get_by_label("Sender address").fill("campaigns@example.org")
    page.get_by_label("Sender name").fill("Write for Rights")
    page.get_by_label("Languages").fill("en es")
    page.get_by_label("Languages").press("Enter")  # submits the form from the keyboard
    page.locator("text=campaign w4r-today: created").wait_for()
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"created-{width}.png", "w4r-today")
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.slug == "w4r-today")).one()
        assert campaign.window_start <= SystemClock().now() < campaign.window_end
    assert ("campaign.create", "done") in [(r.action, r.outcome) for r in audit_rows(engine)]


@pytest.mark.parametrize("width", WIDTHS)
def test_a_campaigner_pauses_a_case(
    served: tuple[str, Engine, str], page: Page, tmp_path: Path, width: int
) -> None:
    base, engine, _ = served
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base, CAMPAIGNER)
    page.goto(f"{base}/workspace/campaigns/w4r-2020/cases")
    assert_accessible(page, impacts=None)
    page.get_by_role("link", name="Pause bird").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/workspace/campaigns/w4r-2020/cases/bird/pause")
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"confirm-{width}.png", "stops 5 pending messages")
    page.get_by_role("button", name="Pause bird").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/workspace/campaigns/w4r-2020/cases")
    page.locator("text=case bird paused").wait_for()
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"paused-{width}.png", "Resume bird")
    with session_scope(engine) as session:
        assert session.scalars(select(Case.status).where(Case.slug == "bird")).one() == "paused"


def test_the_email_preview_follows_what_is_typed(
    served: tuple[str, Engine, str], page: Page, tmp_path: Path
) -> None:
    base, engine, _ = served
    case_text_changes(engine, CASES, "w4r-2020", apply=True)
    sign_in(page, base, CAMPAIGNER)
    page.goto(f"{base}/workspace/campaigns/w4r-2020/cases/bird/texts?lang=en")
    frame = page.frame_locator("#preview iframe")
    frame.locator("text=Free them").first.wait_for()  # the first preview loads with the page
    page.get_by_label("Title").fill("Free Nassima al-Sada today")
    frame.locator("text=Free Nassima al-Sada today").first.wait_for()
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / "texts.png", "Preview")
    with session_scope(engine) as session:  # previewing stored nothing
        content = session.scalars(select(Case.content).where(Case.slug == "bird")).one()
        assert content["en"]["title"] == "Free them"
