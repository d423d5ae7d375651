"""The replies workspace in a real chromium: assign one review reply, dismiss another,
mark a solidarity message delivered, export the case's messages.

At 1280 and 390 px wide, with the keyboard for every form, axe-core on every page,
and screenshots checked by size and key text. Needs Debian's chromium
(`scripts/ensure-chromium`); a missing browser fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_fixtures import browser_page  # noqa: F401 - provides page
from ops_fixtures import EMAILS, NOW, seed
from PIL import Image
from playwright.sync_api import Page
from sqlalchemy import Engine, select
from web_fixtures import GOOD_PASSWORD, add_staff, make_app

from sender.core.db import session_scope
from sender.core.models import Reply
from sender.core.vocabulary import ReplyStatus
from sender.devtools.webapp import serving
from sender.staff.roles import Role
from sender.track.reply_sender import SPOOFED

pytestmark = pytest.mark.browser
CAMPAIGNER = "omar@example.org"
REVIEW = "/workspace/replies/review"


@pytest.fixture
def served(pg_engine: Engine) -> Iterator[tuple[str, Engine]]:
    seed(pg_engine)
    with session_scope(pg_engine) as session:
        session.add(
            Reply(
                status=ReplyStatus.REVIEW,
                from_email=EMAILS[3],
                subject="Re: Nassima",
                body="STOP",
                problem=f"asks to stop; {SPOOFED}: neither SPF nor DKIM passes for example.org",
                received_at=NOW,
            )
        )
    add_staff(pg_engine, Role.CAMPAIGNER, email=CAMPAIGNER)
    with serving(make_app(pg_engine)) as url:
        yield url, pg_engine


def accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def screenshot(page: Page, path: Path, width: int, text: str) -> None:
    assert text in page.inner_text("main")
    page.screenshot(path=str(path), full_page=True)
    image = Image.open(path)
    assert image.format == "PNG" and image.width == width and path.stat().st_size > 10_000


def reply_id(engine: Engine, sender: str) -> int:
    with session_scope(engine) as session:
        found = session.scalar(select(Reply.id).where(Reply.from_email == sender))
        assert found is not None
        return found


@pytest.mark.parametrize("width", [1280, 390])
def test_review_assign_dismiss_then_deliver_and_export(
    served: tuple[str, Engine], page: Page, tmp_path: Path, width: int
) -> None:
    base, engine = served
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{base}{REVIEW}")
    page.fill("input[name=username]", CAMPAIGNER)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{REVIEW}")
    assert page.locator("[data-testid=possibly-spoofed]").count() == 1
    accessible(page)
    screenshot(page, tmp_path / f"review-{width}.png", width, "Possibly spoofed")

    stranger = page.locator(f"[data-testid=reply-{reply_id(engine, 'stranger@example.net')}]")
    stranger.get_by_label("Supporter's email").fill(EMAILS[2])
    stranger.get_by_label("Case").select_option("popi")
    stranger.get_by_role("button", name="Assign").press("Enter")
    page.get_by_text("assigned.").wait_for()
    assert "stranger@example.net" not in page.inner_text("main")

    spoofed = page.locator(f"[data-testid=reply-{reply_id(engine, EMAILS[3])}]")
    spoofed.get_by_label("Reason to dismiss").fill("a forged STOP")
    spoofed.get_by_label("Reason to dismiss").press("Enter")
    page.get_by_text("dismissed.").wait_for()
    assert page.locator("[data-testid=possibly-spoofed]").count() == 0
    accessible(page)
    screenshot(page, tmp_path / f"decided-{width}.png", width, "Nothing to decide")

    page.get_by_role("link", name="Solidarity messages").click()
    page.wait_for_url("**/workspace/replies/solidarity*")
    page.get_by_label("Case").select_option("bird")
    page.get_by_role("button", name="Read").press("Enter")
    page.locator("[data-testid=solidarity]").wait_for()
    matched = reply_id(engine, EMAILS[1])
    box = page.get_by_label(f"Select message #{matched}")
    box.focus()
    page.keyboard.press("Space")
    assert box.is_checked()
    page.get_by_role("button", name="Mark selected delivered").press("Enter")
    page.get_by_text("1 messages marked delivered").wait_for()
    assert "by omar@example.org" in page.locator("[data-testid=solidarity]").inner_text()
    accessible(page)
    screenshot(page, tmp_path / f"delivered-{width}.png", width, "Stay strong")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").press("Enter")
    saved = tmp_path / f"solidarity-{width}.csv"
    download.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert download.value.suggested_filename == "solidarity-bird.csv"
    assert lines[0].startswith("reply_id,") and lines[1].endswith("Stay strong")
