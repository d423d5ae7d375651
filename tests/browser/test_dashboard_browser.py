"""The dashboard in a real headless chromium: log in, read the progress bar, pause a wave.

Needs Debian's chromium (`scripts/ensure-chromium`, which `make test` runs).
A missing browser fails the test with the install command: never a silent skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
from browser_fixtures import browser_page  # noqa: F401 - provides page
from ops_fixtures import seed
from PIL import Image
from playwright.sync_api import Page
from sqlalchemy import Engine
from web_fixtures import STAFF_PASSWORD, STAFF_USER, make_app

from sender.core.db import session_scope
from sender.core.models import Wave
from sender.core.vocabulary import WaveStatus
from sender.devtools.webapp import serving

YELLOW = (0xFF, 0xFF, 0x00)  # the default brand_primary: the bar's fill
RED = (0xC6, 0x28, 0x28)  # the failed share of the bar

pytestmark = pytest.mark.browser


@pytest.fixture
def served(pg_engine: Engine) -> Iterator[tuple[str, Engine, int]]:
    seeded = seed(pg_engine)
    with serving(make_app(pg_engine)) as url:
        yield url, pg_engine, seeded.wave_id


def _share(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 12) -> float:
    pixels = numpy.asarray(image.convert("RGB"), dtype=numpy.int16).reshape(-1, 3)
    close = (numpy.abs(pixels - numpy.array(colour)) <= tolerance).all(axis=1)
    return float(close.mean())


def _wave_status(engine: Engine, wave_id: int) -> str:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        return wave.status


def test_log_in_see_progress_and_pause(
    served: tuple[str, Engine, int], page: Page, tmp_path: Path
) -> None:
    base, engine, wave_id = served
    page.goto(f"{base}/dashboard/")
    assert "/login" in page.url  # no session yet
    page.fill("input[name=username]", STAFF_USER)
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("That user name")
    page.fill("input[name=username]", STAFF_USER)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")

    row = page.locator(f"tr[data-wave-id='{wave_id}']")
    bar = row.locator(".bar")
    assert bar.get_attribute("aria-valuenow") == "4"
    assert row.locator(".bar span").inner_text() == "50%"  # sent + failed of planned

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    image = Image.open(shot)
    assert image.format == "PNG" and image.width == 1280 and 300 <= image.height <= 4000
    box = bar.bounding_box()
    assert box is not None and box["width"] > 100
    crop = image.crop(
        (
            int(box["x"]) + 2,
            int(box["y"]) + 2,
            int(box["x"] + box["width"]) - 2,
            int(box["y"] + box["height"]) - 2,
        )
    )
    # 4 of 10 sent in brand yellow, 1 of 10 failed in red; the label covers a little.
    assert 0.30 <= _share(crop, YELLOW) <= 0.42
    assert 0.06 <= _share(crop, RED) <= 0.11

    row.locator("button", has_text="Pause").click()
    page.wait_for_selector(f"tr[data-wave-id='{wave_id}'] button:has-text('Resume')")
    assert _wave_status(engine, wave_id) == WaveStatus.PAUSED
    assert row.locator("[data-testid=wave-status]").inner_text().lower() == "paused"
    assert "paused" in page.locator(".flash").first.inner_text()
    page.screenshot(path=str(tmp_path / "paused.png"), full_page=True)
