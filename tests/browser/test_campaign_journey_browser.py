"""A whole campaign through the browser, as a campaigner runs it (issue 16's ten tasks).

Real parts only: PostgreSQL, Redis, the local SendGrid server, the web app over
HTTP, and a `celery -A worker worker` subprocess that imports the upload, runs
the scheduler's ticks and sends the batches. The test plays beat (a tick task
enqueued every two seconds, as beat does every thirty) and, at step 10, the
supporters who answer the email (the local server posts their replies to the
Inbound Parse webhook). After the one admin account, nothing is written to the
database but by the browser; the database is only read to check.

The preview works on a wave, so the wave is created (task 6) before the Arabic
preview and the proof (tasks 4 and 5). Every step is checked by axe-core and by
a screenshot with its key text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from browser_fixtures import (
    browser_page,  # noqa: F401 - provides page
    check_page,
    sign_in_with_code,
)
from faults.fault_fixtures import Worker, start_worker, wait_ready
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, func, select
from web_fixtures import GOOD_PASSWORD, SECRET_KEY, add_staff, enrol_staff

from sender.celery_app import TICK_TASK, create_celery
from sender.core.clock import SystemClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Assignment, Case, Reply, Supporter, Wave
from sender.devtools.crm_export import write_crm_export
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.waiting import wait_until
from sender.devtools.webapp import serving
from sender.staff.roles import Role
from sender.web import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "ines.campaigns@example.org"
API_KEY = "SG.journey"
INBOUND_SECRET = "journey-inbound-secret"
SLUG = "w4r-journey"
CASES = ("nassima-al-sada", "idris-khattak")
ROWS = 2_000
BATCH = 100
# Messages per hour. The rate limit lets a minute's worth (at least 1,000) go at once,
# then about 17 a second: the rest of the wave takes some 40 s, long enough to pause it
# half-way whatever the machine's speed, short enough for the test.
RATE = 60_000


@dataclass(frozen=True)
class Journey:
    base: str
    engine: Engine
    sg: LocalSendGrid
    secret: str  # the admin's second factor
    directory: Path
    worker: Worker


def _cases_file(directory: Path) -> Path:
    """Two of the 2020 cases, their English and Arabic texts only (the campaign's languages)."""
    cases = yaml.safe_load((ROOT / "audiences" / "w4r-2020" / "cases.yaml").read_text())["cases"]
    chosen = [dict(c, content={k: c["content"][k] for k in ("en", "ar")}) for c in cases]
    path = directory / "cases.yaml"
    path.write_text(
        yaml.safe_dump({"cases": [c for c in chosen if c["slug"] in CASES]}, allow_unicode=True),
        encoding="utf-8",
    )
    return path


def _beat(settings: Settings, stop: threading.Event) -> None:
    """What `celery -A worker beat` does, every two seconds instead of thirty."""
    celery = create_celery(settings)
    while not stop.wait(2.0):
        celery.send_task(TICK_TASK, expires=10)


@pytest.fixture
def journey(pg_url: str, pg_engine: Engine, redis_url: str, tmp_path: Path) -> Iterator[Journey]:
    secret = enrol_staff(pg_engine, add_staff(pg_engine, Role.ADMIN, email=ADMIN))
    uploads = tmp_path / "uploads"
    with local_sendgrid(api_key=API_KEY, inbound_auth=("sendgrid", INBOUND_SECRET)) as sg:
        values: dict[str, object] = {
            "database_url": pg_url,
            "redis_url": redis_url,
            "secret_key": SECRET_KEY,
            "sendgrid_api_key": API_KEY,
            "sendgrid_api_host": sg.base_url,
            "sendgrid_timeout_seconds": 5.0,
            "sendgrid_webhook_public_key": sg.public_key,
            "inbound_secret": INBOUND_SECRET,
            "upload_dir": uploads,
            "batch_size": BATCH,
        }
        with serving(create_app(_settings(values, "http://127.0.0.1"))) as base:
            settings = _settings(values, base)
            env = {
                "DATABASE_URL": pg_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": SECRET_KEY,
                "SENDGRID_API_KEY": API_KEY,
                "SENDGRID_API_HOST": sg.base_url,
                "SENDGRID_WEBHOOK_PUBLIC_KEY": sg.public_key,
                "INBOUND_SECRET": INBOUND_SECRET,
                "UPLOAD_DIR": str(uploads),
                "BATCH_SIZE": str(BATCH),
                "PUBLIC_BASE_URL": base,
                "LOG_JSON": "0",
            }
            worker = start_worker(_worker_env(env), "journey", tmp_path)
            stop = threading.Event()
            beat = threading.Thread(target=_beat, args=(settings, stop), daemon=True)
            try:
                wait_ready(worker, timeout=60)
                beat.start()
                yield Journey(base, pg_engine, sg, secret, tmp_path, worker)
            finally:
                stop.set()
                worker.kill()


def _settings(values: dict[str, object], public_base_url: str) -> Settings:
    return Settings(**values, public_base_url=public_base_url)  # type: ignore[arg-type]


def _worker_env(values: dict[str, str]) -> dict[str, str]:
    keep = ("SENDGRID_", "DATABASE_", "REDIS_", "TEST_", "UPLOAD_", "INBOUND_", "PUBLIC_")
    return {k: v for k, v in os.environ.items() if not k.startswith(keep)} | values


def _wave_id(engine: Engine, name: str) -> int:
    with session_scope(engine) as session:
        return int(session.scalars(select(Wave.id).where(Wave.name == name)).one())


def _sent(page: Page) -> int:
    return int(page.locator("[data-testid=sent]").inner_text())


def test_a_campaign_from_creation_to_solidarity_messages(
    journey: Journey, page: Page, tmp_path: Path
) -> None:
    base, shots = journey.base, tmp_path / "shots"
    shots.mkdir()
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in_with_code(page, base, ADMIN, GOOD_PASSWORD, journey.secret)
    today = SystemClock().now().date()

    # 1. A campaign whose window runs around today, then its cases from a cases file.
    page.click("nav >> text=Campaigns")
    page.get_by_label("Short name (slug)").fill(SLUG)
    page.get_by_label("Name", exact=True).fill("Write for Rights, this week")
    page.get_by_label("First day").fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("Last day").fill((today + timedelta(days=14)).isoformat())
    page.get_by_label("Time zone").fill("UTC")
    page.get_by_label("Sender address").fill("letters@example.org")
    page.get_by_label("Sender name").fill("Write for Rights")
    page.get_by_label("Languages").fill("en ar")
    page.get_by_role("button", name="Create campaign").click()
    page.locator(f"text=campaign {SLUG}: created").wait_for()
    check_page(page, shots / "01-campaign.png", SLUG)
    page.get_by_role("link", name="0 cases").click()
    page.get_by_label("Cases file (YAML)").set_input_files(str(_cases_file(tmp_path)))
    page.get_by_role("button", name="See what it changes").click()
    check_page(page, shots / "01-cases-preview.png", "nassima-al-sada")
    page.get_by_role("button", name="Apply these changes").click()
    page.locator("text=cases: 2 created").wait_for()
    check_page(page, shots / "01-cases.png", "Pause idris-khattak")

    # 2. A CRM export of a few thousand rows, imported in the background by the worker.
    export = write_crm_export(tmp_path / "crm-export.csv", ROWS, seed=16)
    page.click("nav >> text=Supporters")
    page.get_by_label("CSV file").set_input_files(str(export.path))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/workspace/supporters/imports/*")
    page.locator("[data-testid=import-done]").wait_for(timeout=90_000)
    assert page.locator("progress").get_attribute("value") == "100"
    assert page.locator("[data-testid=imported]").inner_text() == f"{export.valid_unique:,}"
    check_page(page, shots / "02-import.png", "Import finished")

    # 3. Assign every supporter one of the two cases.
    page.get_by_role("link", name="Next: assign cases").click()
    page.get_by_label("Campaign").first.select_option(SLUG)
    page.get_by_label("Seed").fill("16")
    page.get_by_role("button", name="Assign", exact=True).click()
    table = page.locator("[data-testid=case-table]")
    table.wait_for()
    assert all(case in table.inner_text() for case in CASES)
    check_page(page, shots / "03-assign.png", "assignments created")

    # 6. A draft wave starting now, all day in every time zone, at a low rate.
    now = SystemClock().now()
    page.click("nav >> text=Wave workspace")
    page.get_by_role("link", name="New draft wave").click()
    page.get_by_label("Name").fill("journey-email")
    page.get_by_label("Start (UTC)").fill(f"{now - timedelta(minutes=2):%Y-%m-%dT%H:%M}")
    page.get_by_label("End (UTC)").fill(f"{now + timedelta(days=1):%Y-%m-%dT%H:%M}")
    page.get_by_label("Local window, HH:MM-HH:MM").fill("00:00-24:00")
    page.get_by_label("Rate, messages per hour").fill(str(RATE))
    page.get_by_label("Subject (en)").fill("{{ first_name }}, one letter can change a life")
    page.get_by_label("Subject (ar)").fill("{{ first_name }}، رسالة واحدة قد تغيّر حياة")
    page.get_by_role("button", name="Save draft").click()
    page.locator("text=wave journey-email created (draft)").wait_for()
    check_page(page, shots / "06-wave.png", "journey-email")
    wave_id = _wave_id(journey.engine, "journey-email")

    # 4. The Arabic preview reads right to left.
    page.goto(f"{base}/workspace/waves/{wave_id}")
    page.get_by_role("link", name="Preview every variant").click()
    check_page(page, shots / "04-grid.png", "Every variant renders")
    page.get_by_role("link", name="Open nassima-al-sada in ar").click()
    frame = page.frame_locator("[data-testid=frame-640]")
    assert frame.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("[data-testid=text-part]").get_attribute("dir") == "auto"
    page.frame_locator("[data-testid=frame-375]").locator("h1").first.wait_for()
    assert "رسالة واحدة" in page.locator("[data-testid=subject]").inner_text()
    check_page(page, shots / "04-arabic.png", "Text part")

    # 5. A proof of every variant, through the local SendGrid server.
    page.get_by_role("link", name="Every variant").click()
    page.fill("#proof-to", "desk@staff.example.org")
    page.get_by_role("button", name="Send every variant").click()
    page.locator(".flash").wait_for()
    check_page(page, shots / "05-proof.png", "4 variants sent to 1 staff addresses")
    assert journey.sg.admin.count(email="desk@staff.example.org") == 4

    # 7. Launch after reading who gets it; the worker sends while the page watches.
    page.get_by_role("link", name="Back to the wave").click()
    page.get_by_role("link", name="Launch…").click()
    # The worker counts who it reaches; the figures and the button come when it is done.
    expect(page.get_by_role("button", name="Launch now")).to_be_visible(timeout=60_000)
    check_page(page, shots / "07-confirm.png", "Who will get it")
    page.get_by_role("button", name="Launch now").click()
    status = page.locator("[data-testid=wave-status]")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=sent]')?.textContent) > 0",
        timeout=60_000,
    )

    # 8. Pause half-way: sending stops; resume: it finishes.
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("[data-testid=wave-status]:has-text('paused')")
    page.wait_for_timeout(3_000)  # a batch the worker had already claimed may still land
    page.reload()
    held = _sent(page)
    assert page.locator("[data-testid=eta]").inner_text() == "paused"  # no time left while held
    check_page(page, shots / "08-paused.png", "Resume")
    page.wait_for_timeout(4_000)  # two ticks more: a paused wave sends nothing
    page.reload()
    assert _sent(page) == held, "mail went out while the wave was paused"
    planned = int(page.locator("[data-testid=wave-progress] td").first.inner_text())
    assert 0 < held < planned, (held, planned)
    page.get_by_role("button", name="Resume").click()
    page.wait_for_selector("[data-testid=wave-status]:has-text('done')", timeout=120_000)
    assert _sent(page) == planned
    assert status.text_content() == "done"
    check_page(page, shots / "07-done.png", "done")
    recorded = journey.sg.admin.stats()
    assert int(recorded["recipients"]) == planned + 4, recorded  # the wave and the proofs

    # 9. The kill switch for one case, after reading what it holds back.
    page.click("nav >> text=Campaigns")
    page.get_by_role("link", name="2 cases").click()
    page.get_by_role("link", name="Pause idris-khattak").click()
    check_page(page, shots / "09-confirm.png", "Pausing stops 0 pending messages")
    page.get_by_role("button", name="Pause idris-khattak").click()
    page.locator("text=case idris-khattak paused").wait_for()
    check_page(page, shots / "09-paused.png", "Resume idris-khattak")

    # 10. Supporters answer; the campaigner reads and exports their messages for the case team.
    mailed = journey.sg.admin.recipients(limit=planned + 4)
    people = [r for r in mailed if r["email"] != "desk@staff.example.org"][:3]
    for person in people:
        journey.sg.admin.reply(
            inbound_url=f"{base}/webhooks/sendgrid/inbound",
            **{"from": person["email"], "text": "Stay strong, we are writing for you."},
        )

    def parsed() -> bool:
        with session_scope(journey.engine) as session:
            return (session.scalar(select(func.count()).select_from(Reply)) or 0) >= 3

    wait_until(parsed, 30, "the worker to parse the three replies")
    case = _case_of(journey, people)
    page.click("nav >> text=Replies")
    page.get_by_role("link", name="Solidarity messages").click()
    page.get_by_label("Campaign").last.select_option(SLUG)
    page.get_by_label("Case").select_option(case)
    page.get_by_role("button", name="Read").click()
    page.locator("[data-testid=solidarity]").wait_for()
    first = page.locator("[data-testid=solidarity] input[type=checkbox]").first
    first.check()
    page.get_by_role("button", name="Mark selected delivered").click()
    page.get_by_text("1 messages marked delivered").wait_for()
    check_page(page, shots / "10-solidarity.png", "Stay strong")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / "solidarity.csv"
    download.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("reply_id,") and "Stay strong" in lines[1]


def _case_of(journey: Journey, people: list[dict[str, object]]) -> str:
    """The case the first replying supporter was assigned (read only, to know what to ask)."""
    with session_scope(journey.engine) as session:
        found = session.scalars(
            select(Case.slug)
            .join(Assignment, Assignment.case_id == Case.id)
            .join(Supporter, Supporter.id == Assignment.supporter_id)
            .where(func.lower(Supporter.email) == str(people[0]["email"]).lower())
        ).first()
    assert found is not None
    return str(found)
