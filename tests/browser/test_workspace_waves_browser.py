"""The wave workspace in a real chromium: previews, a proof, a new draft, launch, pause, resume.

At 1280 and 390 px wide; axe-core checks each page. Needs Debian's chromium
(`scripts/ensure-chromium`); a missing browser fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta
from pathlib import Path

import pytest
from browser_fixtures import (
    assert_accessible,
    assert_screenshot,
    browser_page,  # noqa: F401 - provides page
)
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select
from wave_workspace_fixtures import seed_assigned
from web_fixtures import GOOD_PASSWORD, STAFF_EMAIL, add_staff, make_app

from sender.core.clock import MovableClock, SystemClock
from sender.core.db import session_scope
from sender.core.models import Campaign, SubjectTest, Wave
from sender.devtools.webapp import serving
from sender.send.scheduler import InlineDispatcher, tick
from sender.send.wiring import default_sender
from sender.staff.roles import Role

pytestmark = pytest.mark.browser
WIDTHS = (1280, 390)


@pytest.fixture
def served(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[str, Engine, dict[str, int]]]:
    seeded = seed_assigned(pg_engine)
    with session_scope(pg_engine) as session:
        draft = session.get_one(Wave, seeded.draft_wave_id)
        draft.subjects = {"en": "Write today, {{ first_name }}", "ar": "اكتبوا اليوم"}
    add_staff(pg_engine, Role.CAMPAIGNER)
    ids = {"draft": seeded.draft_wave_id, "sending": seeded.wave_id}
    with serving(make_app(pg_engine, outbox_dir=tmp_path / "outbox")) as url:
        yield url, pg_engine, ids


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/workspace/waves/")
    page.fill("input[name=username]", STAFF_EMAIL)
    page.fill("input[name=password]", GOOD_PASSWORD)
    page.keyboard.press("Enter")  # the keyboard alone gets a member of staff in
    page.wait_for_url(f"{base}/workspace/waves/")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_arabic_preview_is_right_to_left_and_a_proof_goes(
    served: tuple[str, Engine, dict[str, int]], page: Page, tmp_path: Path, width: int
) -> None:
    base, _engine, ids = served
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base)
    page.goto(f"{base}/workspace/preview/{ids['draft']}")
    assert_accessible(page, impacts=None)
    assert_screenshot(
        page, tmp_path / f"grid-{width}.png", "Every variant renders", min_bytes=10_000
    )
    page.click("text=Open bird in ar")
    frame = page.frame_locator("[data-testid=frame-640]")
    assert frame.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("[data-testid=subject]").inner_text() == "اكتبوا اليوم"
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"arabic-{width}.png", "Text part")

    page.goto(f"{base}/workspace/preview/{ids['draft']}")
    page.fill("#proof-to", "desk@staff.example.org")
    page.click("text=Send every variant")
    page.locator(".flash").wait_for()
    assert "4 variants sent to 1 staff addresses" in page.inner_text(".flash")
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 4


@pytest.mark.parametrize("width", WIDTHS)
def test_create_a_wave_then_launch_pause_and_resume(
    served: tuple[str, Engine, dict[str, int]], page: Page, tmp_path: Path, width: int
) -> None:
    base, engine, ids = served
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base)
    page.click("text=New draft wave")
    assert_accessible(page, impacts=None)
    start = SystemClock().now() + timedelta(hours=2)
    page.fill("input[name=name]", "autumn")
    page.fill("input[name=start]", f"{start:%Y-%m-%dT%H:%M}")
    page.fill("input[name=end]", f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}")
    page.fill("input[name=subject_en]", "Write today")
    page.click("text=Save draft")
    page.wait_for_url(f"{base}/workspace/waves/")
    assert "wave autumn created (draft)" in page.inner_text(".flash")
    with session_scope(engine) as session:
        assert session.scalars(select(Wave.status).where(Wave.name == "autumn")).one() == "draft"

    page.goto(f"{base}/workspace/waves/{ids['draft']}/launch")
    # The figures are counted in the background: a panel first, then they and the button.
    expect(page.get_by_role("button", name="Launch now")).to_be_visible(timeout=30_000)
    assert_accessible(page, impacts=None)
    assert_screenshot(
        page, tmp_path / f"launch-{width}.png", "Who will get it: 6 supporters", min_bytes=10_000
    )
    page.click("text=Launch now")
    page.locator("[data-testid=wave-status]").wait_for()
    assert page.text_content("[data-testid=wave-status]") == "scheduled"

    page.goto(f"{base}/workspace/waves/{ids['sending']}")
    page.click("button:has-text('Pause')")
    page.wait_for_selector("[data-testid=wave-status]:has-text('paused')")
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"paused-{width}.png", "Resume")
    page.click("button:has-text('Resume')")
    page.wait_for_selector("[data-testid=wave-status]:has-text('sending')")
    # The fragment refreshes on its own: a change made elsewhere shows without a reload.
    with session_scope(engine) as session:
        session.get_one(Wave, ids["sending"]).status = "paused"
    page.wait_for_selector("[data-testid=wave-status]:has-text('paused')", timeout=10_000)


def test_launch_it_and_watch_it_finish(
    served: tuple[str, Engine, dict[str, int]], page: Page, tmp_path: Path
) -> None:
    """The scheduler's ticks run here, in-process, as `campaign run` runs them without Redis;
    the page only watches, through its polled fragment."""
    base, engine, ids = served
    with session_scope(engine) as session:
        draft = session.get_one(Wave, ids["draft"])
        draft.local_window_start, draft.local_window_end = time(0, 0), time(23, 59)
        # The seeded wave in flight would mail the same people first: the cap would skip them.
        session.get_one(Wave, ids["sending"]).status = "cancelled"
    sign_in(page, base)
    page.goto(f"{base}/workspace/waves/{ids['draft']}/launch")
    expect(page.get_by_role("button", name="Launch now")).to_be_visible(timeout=30_000)
    page.click("text=Launch now")
    page.wait_for_selector("[data-testid=wave-status]:has-text('scheduled')")
    settings = make_app(engine, outbox_dir=tmp_path / "outbox").extensions["campaign.settings"]
    for _ in range(10):
        now = SystemClock().now()
        tick(engine, settings, now, InlineDispatcher(default_sender(settings, MovableClock(now))))
        if page.text_content("[data-testid=wave-status]") == "done":
            break
        page.wait_for_timeout(2_500)  # the fragment polls every two seconds
    page.wait_for_selector("[data-testid=wave-status]:has-text('done')", timeout=10_000)
    assert page.text_content("[data-testid=sent]") == "6"
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / "done.png", "done")


@pytest.mark.parametrize("width", WIDTHS)
def test_create_a_subject_test_in_the_form_and_see_the_launch_split(
    served: tuple[str, Engine, dict[str, int]], page: Page, tmp_path: Path, width: int
) -> None:
    base, engine, _ids = served
    with session_scope(engine) as session:
        session.scalars(select(Campaign)).one().languages = ["en", "ar"]
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base)
    page.click("text=New draft wave")
    start = SystemClock().now() + timedelta(hours=2)
    page.fill("input[name=name]", "autumn")
    page.fill("input[name=start]", f"{start:%Y-%m-%dT%H:%M}")
    page.fill("input[name=end]", f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}")
    page.fill("input[name=subject_en]", "Write today")
    page.fill("input[name=subject_ar]", "اكتبوا اليوم")
    page.click("text=Add a subject test")  # a plain submit: the form comes back with A and B
    page.locator("[data-testid=variant-B]").wait_for()
    assert page.input_value("input[name=subject_en]") == "Write today"
    page.fill("input[name=variant_1_subject_en]", "Nassima needs you")
    page.fill("input[name=variant_1_subject_ar]", "نسيمة تحتاجكم")
    page.fill("input[name=test_share]", "50")
    # The inbox preview follows the typing (htmx), each variant on its own line.
    page.wait_for_selector("[data-testid=inbox-ar] li[data-variant=B]:has-text('نسيمة تحتاجكم')")
    assert "Write today" in page.inner_text("[data-testid=inbox-en] li[data-variant=A]")
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"test-form-{width}.png", "Variant B subject (ar)")
    page.press("input[name=test_share]", "Enter")  # Enter saves, it adds no variant
    page.wait_for_url(f"{base}/workspace/waves/")
    assert "wave autumn created (draft)" in page.inner_text(".flash")
    with session_scope(engine) as session:
        wave = session.scalars(select(Wave).where(Wave.name == "autumn")).one()
        wave_id, stored = wave.id, wave.subject_test
    assert [v["name"] for v in stored["variants"]] == ["A", "B"] and stored["share"] == 0.5

    page.goto(f"{base}/workspace/waves/{wave_id}/launch")
    expect(page.locator("[data-testid=test-split]")).to_be_visible(timeout=30_000)
    assert_accessible(page, impacts=None)
    text = " ".join(page.inner_text("main").split())
    assert "Subject test: 3 now, 3 wait for the winner" in text
    assert "variant A (now) 1" in text and "variant B (now) 2" in text
    assert_screenshot(page, tmp_path / f"test-launch-{width}.png", "the winner (later)")

    page.goto(f"{base}/workspace/waves/{wave_id}")
    assert_accessible(page, impacts=None)
    assert "the test share goes out from the wave's start" in page.inner_text(
        "[data-testid=wave-subject-test]"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_pick_a_subject_tests_winner_on_the_wave_page(
    served: tuple[str, Engine, dict[str, int]], page: Page, tmp_path: Path, width: int
) -> None:
    base, engine, ids = served
    variants = [
        {"name": "A", "subjects": {}, "preheaders": {}},
        {"name": "B", "subjects": {"en": "Nassima needs you"}, "preheaders": {}},
    ]
    with session_scope(engine) as session:
        session.get_one(Wave, ids["sending"]).subject_test = {
            "variants": variants,
            **{"default": "A", "share": 0.2, "seed": 0, "metric": "human_clicks"},
            **{"wait_minutes": 240, "confidence": 0.95, "min_sends": 100},
        }
        started = SystemClock().now() - timedelta(hours=1)
        session.add(SubjectTest(wave_id=ids["sending"], state="testing", started_at=started))
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, base)
    page.goto(f"{base}/workspace/waves/{ids['sending']}")
    assert_accessible(page, impacts=None)
    assert_screenshot(page, tmp_path / f"test-wave-{width}.png", "Pick the winner now")
    page.select_option("select[name=variant]", "B")
    page.click("text=Pick this variant")
    page.locator(".flash").wait_for()
    assert "B picked" in page.inner_text(".flash")
    assert "B won" in page.inner_text("[data-testid=wave-subject-test]")
    assert page.locator("text=Pick this variant").count() == 0
    assert_accessible(page, impacts=None)
