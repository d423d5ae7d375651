"""Every staff page, found in the url_map, at 1280 and 390 px: axe-core, no sideways scroll.

The walk takes every GET route under /dashboard and /workspace, so an area added
later (replies, reports) is checked without touching this file; its path
arguments come from one seeded campaign (the `site` fixture). Downloads (CSV, SVG) and
the htmx fragments, which are no pages of their own, are passed over by what
they answer. An admin walks, so every control is on the page.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_fixtures import (
    assert_accessible,
    assert_no_sideways_scroll,
    browser_page,  # noqa: F401 - provides page
    sign_in_with_code,
)
from flask import Flask
from playwright.sync_api import Page
from sqlalchemy import Engine, select
from wave_workspace_fixtures import seed_assigned
from web_fixtures import GOOD_PASSWORD, add_staff, enrol_staff, make_app

from sender.core.db import session_scope
from sender.core.models import Case, Wave
from sender.devtools.webapp import serving
from sender.staff.roles import Role

pytestmark = pytest.mark.browser
ADMIN = "walker.admin@example.org"
STAFF_PREFIXES = ("/dashboard", "/workspace")
# Query strings that make a page show what it is for (a search with a hit, a case's messages).
QUERIES = {
    "supporters.search": "email=fan1@example.org",
    "supporters.solidarity": "case=bird&format=html",
    "campaigns.texts_page": "lang=ar",
}
CSV = "email,first_name,language\nwalk1@example.org,Ana,en\nwalk2@example.org,Omar,ar\nbad\n"


@dataclass(frozen=True)
class Site:
    base: str
    app: Flask
    secret: str
    arguments: dict[str, tuple[str, ...]]


@pytest.fixture
def site(pg_engine: Engine, tmp_path: Path) -> Iterator[Site]:
    seeded = seed_assigned(pg_engine)
    with session_scope(pg_engine) as session:
        session.get_one(Wave, seeded.draft_wave_id).subjects = {"en": "Write", "ar": "اكتبوا"}
        case = session.scalars(select(Case.slug).where(Case.id == seeded.case_ids[0])).one()
    secret = enrol_staff(pg_engine, add_staff(pg_engine, Role.ADMIN, email=ADMIN))
    app = make_app(pg_engine, upload_dir=tmp_path / "uploads", outbox_dir=tmp_path / "outbox")
    arguments = {
        "wave_id": (str(seeded.draft_wave_id), str(seeded.wave_id)),
        "slug": ("w4r-2020",),
        "campaign": ("w4r-2020",),
        "case": (case,),
        "language": ("en", "ar"),
        "action": ("pause",),
    }
    with serving(app) as base:
        yield Site(base, app, secret, arguments)


def staff_pages(app: Flask, arguments: dict[str, tuple[str, ...]]) -> list[str]:
    """Every GET route under the staff prefixes, once per combination of its arguments."""
    paths: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or ()) or not rule.rule.startswith(STAFF_PREFIXES):
            continue
        names = sorted(rule.arguments)
        missing = [n for n in names if n not in arguments]
        assert not missing, f"{rule.rule}: give the site fixture a value for {missing}"
        for values in itertools.product(*(arguments[n] for n in names)):
            path = rule.rule
            for name, value in zip(names, values, strict=True):
                path = _fill(path, name, value)
            query = QUERIES.get(rule.endpoint)
            paths.append(f"{path}?{query}" if query else path)
    return paths


def _fill(path: str, name: str, value: str) -> str:
    for converter in ("", "int:", "path:"):
        path = path.replace(f"<{converter}{name}>", value)
    return path


def _upload(page: Page, site: Site, tmp_path: Path) -> str:
    """A small import through the page, so its run has pages to walk; its id."""
    export = tmp_path / "walk.csv"
    export.write_text(CSV, encoding="utf-8")
    page.goto(f"{site.base}/workspace/supporters/")
    page.get_by_label("CSV file").set_input_files(str(export))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/workspace/supporters/imports/*")
    page.locator("[data-testid=import-done]").wait_for(timeout=30_000)
    return page.url.rstrip("/").rsplit("/", 1)[1]


def _problems(page: Page, width: int) -> list[str]:
    checks = [assert_accessible] + ([assert_no_sideways_scroll] if width < 600 else [])
    found: list[str] = []
    for check in checks:
        try:
            check(page)
        except AssertionError as error:
            found.append(str(error))
    return found


@pytest.mark.parametrize("width", [1280, 390])
def test_every_staff_page_is_accessible_and_fits(
    site: Site, page: Page, tmp_path: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    sign_in_with_code(page, site.base, ADMIN, GOOD_PASSWORD, site.secret)
    arguments = {**site.arguments, "run_id": (_upload(page, site, tmp_path),)}
    checked: list[str] = []
    problems: list[str] = []  # every page's, so one run lists all there is to fix
    for path in staff_pages(site.app, arguments):
        # Asked first with the page's own cookies, redirects followed (an old address
        # may move to a CSV): a goto to a download fails in playwright.
        answer = page.request.get(f"{site.base}{path}")
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue  # a download
        response = page.goto(f"{site.base}{path}")
        assert response is not None, path
        if page.locator("main").count() == 0:
            continue  # an htmx fragment, shown inside its page
        assert response.status < 500, f"{path} answered {response.status}"
        problems += _problems(page, width)
        checked.append(path)
    assert not problems, "\n".join(problems)
    assert len(checked) >= 20, checked
    for page_of_area in ("/dashboard/", "/workspace/waves/", "/workspace/campaigns/"):
        assert page_of_area in checked
