"""The staff dashboard against a seeded campaign: progress, controls, chart, search."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from events_fixtures import keep_odd_events, refuse_forged_events
from flask.testing import FlaskClient
from markupsafe import escape
from ops_fixtures import EMAILS, seed
from sqlalchemy import Engine, select
from web_fixtures import csrf_token, log_in, make_app

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Batch, Suppression, Wave
from sender.core.vocabulary import BatchStatus, WaveStatus
from sender.report.totals import catch_up

PAGES = [
    "/workspace/reports/",
    "/dashboard/",
    "/dashboard/actions",
    "/dashboard/actions.svg",
    "/dashboard/replies",
    "/dashboard/replies.csv",
    "/dashboard/suppressions",
    "/dashboard/audit",
    "/dashboard/audit.csv",
    "/dashboard/account",
    "/dashboard/account/two-factor",
]


@pytest.fixture
def staff(any_engine: Engine) -> FlaskClient:
    client = make_app(any_engine).test_client()
    assert log_in(client) == 302
    return client


def _wave_status(engine: Engine, wave_id: int) -> str:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        return wave.status


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(sqlite_engine: Engine, path: str) -> None:
    seed(sqlite_engine)
    response = make_app(sqlite_engine).test_client().get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert not any(e.encode() in response.get_data() for e in EMAILS)


def test_index_shows_waves_with_progress_and_controls(
    any_engine: Engine, staff: FlaskClient
) -> None:
    seeded = seed(any_engine)
    html = staff.get("/dashboard/").get_data(as_text=True)
    assert "Write for Rights 2020" in html and "case-email" in html
    assert 'aria-valuenow="4"' in html and 'aria-valuemax="10"' in html
    assert "width: 40.0%" in html  # 4 of 10 sent
    assert f"/dashboard/waves/{seeded.wave_id}/pause" in html
    assert f"/dashboard/waves/{seeded.wave_id}/resume" not in html  # it is not paused
    assert "400 Bad Request: personalizations" in html  # failed batch with its reason
    assert "in-process" in html


def test_pause_then_resume_through_the_pipeline(any_engine: Engine, staff: FlaskClient) -> None:
    seeded = seed(any_engine)
    token = csrf_token(staff, "/dashboard/")
    response = staff.post(f"/dashboard/waves/{seeded.wave_id}/pause", data={"csrf_token": token})
    assert response.status_code == 302
    assert _wave_status(any_engine, seeded.wave_id) == WaveStatus.PAUSED
    html = staff.get("/dashboard/").get_data(as_text=True)
    assert "paused" in html and f"/dashboard/waves/{seeded.wave_id}/resume" in html
    staff.post(f"/dashboard/waves/{seeded.wave_id}/resume", data={"csrf_token": token})
    assert _wave_status(any_engine, seeded.wave_id) == WaveStatus.SENDING


def test_cancel_drops_unsent_batches(any_engine: Engine, staff: FlaskClient) -> None:
    seeded = seed(any_engine)
    token = csrf_token(staff, "/dashboard/")
    staff.post(f"/dashboard/waves/{seeded.wave_id}/cancel", data={"csrf_token": token})
    assert _wave_status(any_engine, seeded.wave_id) == WaveStatus.CANCELLED
    with session_scope(any_engine) as session:
        statuses = set(session.scalars(select(Batch.status).where(Batch.wave_id == seeded.wave_id)))
    assert BatchStatus.PENDING not in statuses and BatchStatus.SENT in statuses


def test_control_without_csrf_token_is_refused_and_changes_nothing(
    any_engine: Engine, staff: FlaskClient
) -> None:
    seeded = seed(any_engine)
    response = staff.post(f"/dashboard/waves/{seeded.wave_id}/pause")
    assert response.status_code == 400
    response = staff.post(
        f"/dashboard/waves/{seeded.wave_id}/cancel", data={"csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert _wave_status(any_engine, seeded.wave_id) == WaveStatus.SENDING


def test_unknown_wave_or_action_is_404(any_engine: Engine, staff: FlaskClient) -> None:
    seeded = seed(any_engine)
    token = csrf_token(staff, "/dashboard/")
    assert staff.post("/dashboard/waves/9999/pause", data={"csrf_token": token}).status_code == 404
    url = f"/dashboard/waves/{seeded.wave_id}/delete"
    assert staff.post(url, data={"csrf_token": token}).status_code == 404
    assert _wave_status(any_engine, seeded.wave_id) == WaveStatus.SENDING


def test_actions_chart_is_an_svg_with_a_line_per_case(
    any_engine: Engine, staff: FlaskClient
) -> None:
    now = datetime.now(UTC)
    seed(any_engine, now=now)
    catch_up(any_engine, now)  # the chart reads the totals the tick rolls up
    response = staff.get("/dashboard/actions.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "bird" in svg and "popi" in svg  # legend entries
    assert "<title" in svg and "<desc" in svg
    assert "<image" not in svg and 'href="http' not in svg  # nothing fetched from elsewhere
    page = staff.get("/dashboard/actions").get_data(as_text=True)
    assert '<img src="/dashboard/actions.svg"' in page


def test_suppression_search_by_address(any_engine: Engine, staff: FlaskClient) -> None:
    seed(any_engine)
    with session_scope(any_engine) as session:
        session.add(
            Suppression(email_hash=email_hash(EMAILS[2]), reason="bounced", source="sendgrid")
        )
    token = csrf_token(staff, "/dashboard/suppressions")
    html = staff.post(
        "/dashboard/suppressions", data={"email": " Supporter2@Example.org ", "csrf_token": token}
    ).get_data(as_text=True)
    assert 'data-testid="suppressed"' in html and "bounced" in html
    assert "Name2" not in html  # no other personal data
    html = staff.post(
        "/dashboard/suppressions", data={"email": EMAILS[3], "csrf_token": token}
    ).get_data(as_text=True)
    assert 'data-testid="not-suppressed"' in html


def test_suppression_search_refuses_a_bad_address(any_engine: Engine, staff: FlaskClient) -> None:
    seed(any_engine)
    token = csrf_token(staff, "/dashboard/suppressions")
    response = staff.post(
        "/dashboard/suppressions", data={"email": "not an address", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "Not a usable address" in response.get_data(as_text=True)
    assert staff.post("/dashboard/suppressions", data={"email": EMAILS[0]}).status_code == 400


def test_index_shows_webhook_events_kept_raw_with_reasons(
    any_engine: Engine, staff: FlaskClient
) -> None:
    seed(any_engine)
    assert "rejected-events" not in staff.get("/dashboard/").get_data(as_text=True)
    reasons = keep_odd_events(any_engine)
    html = staff.get("/dashboard/").get_data(as_text=True)
    assert 'data-testid="rejected-events"' in html
    assert "2 webhook events could not be stored" in html
    assert all(reason in html for reason in reasons)
    assert 'data-testid="refused-events"' not in html
    refused = refuse_forged_events(any_engine)
    html = staff.get("/dashboard/").get_data(as_text=True)
    assert 'data-testid="refused-events"' in html and "2 webhook events refused" in html
    assert all(str(escape(reason)) in html for reason in refused)  # as Jinja escapes
