"""`campaign init DIR`: a starter campaign folder, dated from today.

The files are commented templates (sender/campaign/starter_files/), so a new
user learns each field where they edit it. The window opens today and the
first wave starts now, so the folder as written can already send a wave
today; the example case says plainly that it is one.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from sender.campaign.folder import CAMPAIGN_FILE, CASES_FILE, PLAN_FILE
from sender.core.errors import InvalidInput

STARTER_FILES = Path(__file__).with_name("starter_files")
WINDOW_DAYS = 60


def starter_slug(text: str) -> str:
    """A folder name as a slug: lower case, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64]
    if not slug:
        raise InvalidInput(f"{text!r} gives no slug: pass --slug, e.g. --slug w4r-2026")
    return slug


def write_starter(folder: Path, slug: str, now: datetime) -> list[Path]:
    """Write campaign.yaml, cases.yaml and plan.yaml into a new or empty folder."""
    if folder.exists() and any(folder.iterdir()):
        raise InvalidInput(f"{folder} already holds files: choose a new folder")
    values = _values(folder, starter_slug(slug), now)
    environment = Environment(
        loader=FileSystemLoader(STARTER_FILES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - YAML, not HTML
    )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (CAMPAIGN_FILE, CASES_FILE, PLAN_FILE):
        path = folder / name
        path.write_text(environment.get_template(name).render(values), encoding="utf-8")
        written.append(path)
    return written


def _values(folder: Path, slug: str, now: datetime) -> dict[str, str]:
    today = now.date()
    last_day = today + timedelta(days=WINDOW_DAYS)
    start = now.replace(second=0, microsecond=0)

    def instant(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    last_start = datetime.combine(last_day - timedelta(days=5), start.timetz())
    return {
        "slug": slug,
        "name": f"Write for Rights {today.year}",
        "folder": str(folder),
        "today": today.isoformat(),
        "window_start": today.isoformat(),
        "window_end": last_day.isoformat(),
        "first_start": instant(start),
        "first_end": instant(start + timedelta(days=2)),
        "reminder_start": instant(start + timedelta(days=7)),
        "reminder_end": instant(start + timedelta(days=9)),
        "last_start": instant(last_start),
        "last_end": instant(last_start + timedelta(days=2)),
    }
