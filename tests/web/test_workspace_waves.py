"""The wave workspace: the live page, controls, launch confirmation and the draft form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from ops_fixtures import seed
from sqlalchemy import Engine, select
from wave_workspace_fixtures import (
    CAMPAIGNER,
    changes,
    client_as,
    counted_launch_page,
    post,
    seed_assigned,
    wave_count,
    wave_status,
)
from web_fixtures import add_staff, audit_rows, csrf_token, make_app, sign_in

from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Batch, Case, Wave
from sender.core.vocabulary import BatchStatus, WaveStatus
from sender.staff.roles import Role


def test_the_wave_page_shows_progress_failed_batches_and_controls(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    html = client.get(f"/workspace/waves/{seeded.wave_id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in html and "/static/vendor/htmx-2.0.11.min.js" in html
    assert 'aria-valuenow="4"' in html and 'aria-valuemax="10"' in html
    assert "400 Bad Request: personalizations" in html
    assert f"/workspace/waves/{seeded.wave_id}/pause" in html
    assert f"/workspace/waves/{seeded.wave_id}/resume" not in html
    fragment = client.get(f"/workspace/waves/{seeded.wave_id}/progress").get_data(as_text=True)
    assert "<html" not in fragment and 'data-testid="sent">4<' in fragment


def test_pause_resume_and_retry_are_audited(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"/workspace/waves/{seeded.wave_id}/pause") == 302
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.PAUSED
    assert post(client, f"/workspace/waves/{seeded.wave_id}/resume") == 302
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.SENDING
    assert post(client, f"/workspace/waves/{seeded.wave_id}/retry-failed") == 302
    with session_scope(pg_engine) as session:
        assert session.get_one(Batch, seeded.failed_batch_id).status != BatchStatus.FAILED
    assert changes(pg_engine) == [
        ("wave.retry-failed", "done"),
        ("wave.resume", "done"),
        ("wave.pause", "done"),
    ]
    newest = audit_rows(pg_engine, "wave.pause")[0]
    assert newest.actor == CAMPAIGNER and newest.after == "status=paused"


@pytest.mark.parametrize("action", ["pause", "cancel", "retry-failed", "launch"])
def test_a_viewer_sees_no_control_and_is_refused(pg_engine: Engine, action: str) -> None:
    seeded = seed(pg_engine)
    client = client_as(pg_engine, Role.VIEWER)
    wave_id = seeded.draft_wave_id if action == "launch" else seeded.wave_id
    html = client.get(f"/workspace/waves/{wave_id}").get_data(as_text=True)
    assert '<form class="inline"' not in html and "Launch…" not in html
    before = wave_status(pg_engine, wave_id)
    assert post(client, f"/workspace/waves/{wave_id}/{action}") == 403
    assert wave_status(pg_engine, wave_id) == before
    assert changes(pg_engine) == [(f"wave.{action}", "refused")]


def test_a_control_without_csrf_or_unknown_is_refused(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    assert client.post(f"/workspace/waves/{seeded.wave_id}/pause").status_code == 400
    assert post(client, f"/workspace/waves/{seeded.wave_id}/explode") == 404
    assert post(client, "/workspace/waves/999999/pause") == 404
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.SENDING
    assert changes(pg_engine) == []


def test_the_launch_page_counts_who_gets_it_and_who_is_left_out(pg_engine: Engine) -> None:
    seeded = seed_assigned(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    html = counted_launch_page(client, seeded.draft_wave_id)
    text = " ".join(html.split())
    assert "Who will get it: 6 supporters" in text
    assert "<td>bird</td><td>ar</td><td>2</td>" in text
    assert "<td>popi</td><td>en</td><td>4</td>" in text
    assert "<td>bird</td><td>en</td>" not in text  # its English readers are all left out
    assert "<td>frequency cap</td><td>2</td>" in text
    assert "<td>no consent</td><td>1</td>" in text and "<td>suppressed</td><td>1</td>" in text
    assert wave_status(pg_engine, seeded.draft_wave_id) == WaveStatus.DRAFT
    assert changes(pg_engine) == []


def test_a_second_launch_changes_nothing(pg_engine: Engine) -> None:
    seeded = seed_assigned(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    path = f"/workspace/waves/{seeded.draft_wave_id}/launch"
    assert post(client, path) == 302
    first = wave_status(pg_engine, seeded.draft_wave_id)
    assert post(client, path) == 302
    assert wave_status(pg_engine, seeded.draft_wave_id) == first
    assert first == WaveStatus.SCHEDULED
    details = [r.detail for r in audit_rows(pg_engine, "wave.launch")]
    assert details == [
        "wave reminder is already scheduled; nothing changed",
        "wave reminder launched",
    ]


def test_a_launch_is_refused_while_a_variant_has_an_error(pg_engine: Engine) -> None:
    seeded = seed_assigned(pg_engine)
    with session_scope(pg_engine) as session:
        session.get_one(Case, seeded.case_ids[1]).content = {}
    client = client_as(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"/workspace/waves/{seeded.draft_wave_id}/launch") == 302
    html = client.get(f"/workspace/waves/{seeded.draft_wave_id}").get_data(as_text=True)
    assert "templates have problems" in html and "case popi: no content" in html
    assert wave_status(pg_engine, seeded.draft_wave_id) == WaveStatus.DRAFT
    assert changes(pg_engine) == [("wave.launch", "failed")]


def test_the_form_refuses_bad_fields_and_saves_nothing(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    before = wave_count(pg_engine)
    token = csrf_token(client, "/workspace/waves/new/w4r-2020")
    bad = {
        "csrf_token": token,
        "name": "autumn",
        "kind": "case_email",
        "start": "2026-13-01T09:00",
        "end": "2026-12-02T09:00",
        "subject_en": "Write today",
    }
    response = client.post("/workspace/waves/new/w4r-2020", data=bad)
    assert response.status_code == 422
    assert "is not a date and time" in response.get_data(as_text=True)
    assert 'value="autumn"' in response.get_data(as_text=True)  # what was typed is kept
    assert wave_count(pg_engine) == before
    assert changes(pg_engine) == []


def test_a_viewer_may_not_create_a_wave(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = client_as(pg_engine, Role.VIEWER)
    before = wave_count(pg_engine)
    assert post(client, "/workspace/waves/new/w4r-2020", name="x", kind="case_email") == 403
    assert wave_count(pg_engine) == before
    assert changes(pg_engine) == [("wave.create", "refused")]


def test_a_campaigner_creates_a_draft_wave(pg_engine: Engine) -> None:
    seed(pg_engine, SystemClock().now())
    client = client_as(pg_engine, Role.CAMPAIGNER)
    start = SystemClock().now() + timedelta(hours=2)
    form = {
        "csrf_token": csrf_token(client, "/workspace/waves/new/w4r-2020"),
        "name": "autumn",
        "kind": "case_email",
        "audience": "not_acted",
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}",
        "window": "09:00-18:00",
        "rate": "600",
        "domain_rates": "example.org=120",
        "subject_en": "Write for Nassima today",
        "preheader_en": "Two minutes, one letter",
    }
    response = client.post("/workspace/waves/new/w4r-2020", data=form)
    assert response.status_code == 302
    with session_scope(pg_engine) as session:
        wave = session.scalars(select(Wave).where(Wave.name == "autumn")).one()
        assert wave.status == WaveStatus.DRAFT and wave.audience == "not_acted"
        assert wave.rate_per_hour == 600 and wave.domain_rates == {"example.org": 120}
        assert wave.subjects == {"en": "Write for Nassima today"}
        assert wave.preheaders == {"en": "Two minutes, one letter"}
    assert changes(pg_engine) == [("wave.create", "done")]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate", "fast", "is not a whole number"),
        ("domain_rates", "example.org:120", "is not DOMAIN=NUMBER"),
        ("kind", "carrier_pigeon", "carrier_pigeon"),
        ("subject_en", "", "subject"),
    ],
)
def test_a_bad_field_is_named_and_nothing_is_saved(
    pg_engine: Engine, field: str, value: str, message: str
) -> None:
    seed(pg_engine, SystemClock().now())
    client = client_as(pg_engine, Role.CAMPAIGNER)
    start = SystemClock().now() + timedelta(hours=2)
    form = {
        "csrf_token": csrf_token(client, "/workspace/waves/new/w4r-2020"),
        "name": "autumn",
        "kind": "case_email",
        "start": f"{start:%Y-%m-%dT%H:%M}",
        "end": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}",
        "subject_en": "Write today",
        field: value,
    }
    before = wave_count(pg_engine)
    response = client.post("/workspace/waves/new/w4r-2020", data=form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert wave_count(pg_engine) == before
    assert [c for c in changes(pg_engine) if c[1] == "done"] == []


def edit_form(client: FlaskClient, wave_id: int, **changed: str) -> dict[str, str]:
    """The edit page's own fields (version included), with `changed` typed over them."""
    html = client.get(f"/workspace/waves/{wave_id}/edit").get_data(as_text=True)
    fields = dict(
        re.findall(
            r'<input type="[a-z-]+"(?: id="[^"]*")? name="([^"]+)"[^>]*?value="([^"]*)"', html
        )
    )
    return {**fields, "subject_en": "Write today", **changed}


def stored(engine: Engine, wave_id: int) -> tuple[object, ...]:
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        return (wave.status, wave.rate_per_hour, dict(wave.subjects), wave.ends_at)


def test_a_draft_is_edited_from_the_version_shown(pg_engine: Engine) -> None:
    seeded = seed(pg_engine, SystemClock().now())
    client = client_as(pg_engine, Role.CAMPAIGNER)
    form = edit_form(client, seeded.draft_wave_id, rate="900")
    assert form["name"] == "reminder" and form["version"]
    assert (
        client.post(f"/workspace/waves/{seeded.draft_wave_id}/edit", data=form).status_code == 302
    )
    assert stored(pg_engine, seeded.draft_wave_id)[1:3] == (900, {"en": "Write today"})
    assert changes(pg_engine) == [("wave.edit", "done")]


def test_the_second_of_two_editors_is_told_the_wave_changed(pg_engine: Engine) -> None:
    seeded = seed(pg_engine, SystemClock().now())
    first = client_as(pg_engine, Role.CAMPAIGNER)
    second = make_second_campaigner(pg_engine)
    mine = edit_form(first, seeded.draft_wave_id, rate="900")
    theirs = edit_form(second, seeded.draft_wave_id, rate="50")
    assert first.post(f"/workspace/waves/{seeded.draft_wave_id}/edit", data=mine).status_code == 302
    saved = stored(pg_engine, seeded.draft_wave_id)
    response = second.post(f"/workspace/waves/{seeded.draft_wave_id}/edit", data=theirs)
    assert response.status_code == 422
    assert "changed since this form was opened" in response.get_data(as_text=True)
    assert stored(pg_engine, seeded.draft_wave_id) == saved  # the first save stands
    assert changes(pg_engine) == [("wave.edit", "failed"), ("wave.edit", "done")]


def test_only_a_draft_is_edited_and_not_by_a_viewer(pg_engine: Engine) -> None:
    seeded = seed(pg_engine, SystemClock().now())
    client = client_as(pg_engine, Role.CAMPAIGNER)
    form = edit_form(client, seeded.wave_id, rate="900")  # the wave that is sending
    before = stored(pg_engine, seeded.wave_id)
    assert client.post(f"/workspace/waves/{seeded.wave_id}/edit", data=form).status_code == 422
    viewer = make_second_campaigner(pg_engine, Role.VIEWER)
    draft = edit_form(viewer, seeded.draft_wave_id, rate="900")
    draft_before = stored(pg_engine, seeded.draft_wave_id)
    assert (
        viewer.post(f"/workspace/waves/{seeded.draft_wave_id}/edit", data=draft).status_code == 403
    )
    assert stored(pg_engine, seeded.wave_id) == before
    assert stored(pg_engine, seeded.draft_wave_id) == draft_before
    assert changes(pg_engine) == [("wave.edit", "refused"), ("wave.edit", "failed")]


def make_second_campaigner(engine: Engine, role: Role = Role.CAMPAIGNER) -> FlaskClient:
    email = "second@example.org"
    add_staff(engine, role, email=email)
    client = make_app(engine).test_client()
    assert sign_in(client, email=email) == 302
    return client
