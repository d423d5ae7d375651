"""Roles on the dashboard: hidden controls, forged requests refused with 403, and audit rows."""

from __future__ import annotations

import pyotp
import pytest
from campaign_fixtures import add_campaign_now
from flask.testing import FlaskClient
from ops_fixtures import EMAILS, NOW, seed
from sqlalchemy import Engine
from web_fixtures import add_staff, audit_rows, csrf_token, enrol_staff, log_in, make_app, sign_in

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Suppression, Wave
from sender.core.vocabulary import WaveStatus
from sender.staff.roles import Role

CAMPAIGNER = "omar@example.org"


def wave_status(engine: Engine, wave_id: int) -> str:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        return wave.status


def signed_in(engine: Engine, role: Role, campaigns: tuple[str, ...] = ()) -> FlaskClient:
    account = add_staff(engine, role, email=CAMPAIGNER, campaigns=campaigns)
    client = make_app(engine).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    if role is Role.ADMIN:
        code = pyotp.TOTP(enrol_staff(engine, account)).now()
        assert sign_in(client, email=CAMPAIGNER, code=code) == 302
    else:
        assert sign_in(client, email=CAMPAIGNER) == 302
    return client


def post(client: FlaskClient, path: str, **data: str) -> int:
    token = csrf_token(client, "/dashboard/account")
    return client.post(path, data={"csrf_token": token, **data}).status_code


def changes(engine: Engine) -> list[tuple[str, str]]:
    """(action, outcome) of every row that is not a sign-in event."""
    return [
        (r.action, r.outcome)
        for r in audit_rows(engine)
        if not r.action.startswith(("login", "logout", "2fa"))
    ]


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_a_viewer_sees_no_control_and_a_forged_one_is_refused(
    pg_engine: Engine, action: str
) -> None:
    seeded = seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "case-email" in html and "/dashboard/waves/" not in html  # status, no buttons
    response = client.post(
        f"/dashboard/waves/{seeded.wave_id}/{action}",
        data={"csrf_token": csrf_token(client, "/dashboard/")},
    )
    assert response.status_code == 403
    assert "needs the campaigner role" in response.get_data(as_text=True)
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.SENDING
    (row,) = [r for r in audit_rows(pg_engine) if r.action.startswith("wave")]
    assert (row.action, row.outcome, row.actor, row.actor_role, row.address) == (
        f"wave.{action}",
        "refused",
        CAMPAIGNER,
        "viewer",
        "198.51.100.20",
    )
    assert row.campaign_id == seeded.campaign_id and row.target == "wave w4r-2020/case-email"


def test_a_viewer_may_not_resume_a_paused_wave(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    with session_scope(pg_engine) as session:
        wave = session.get(Wave, seeded.wave_id)
        assert wave is not None
        wave.status = WaveStatus.PAUSED
    client = signed_in(pg_engine, Role.VIEWER)
    assert "/resume" not in client.get("/dashboard/").get_data(as_text=True)
    assert post(client, f"/dashboard/waves/{seeded.wave_id}/resume") == 403
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.PAUSED
    assert changes(pg_engine) == [("wave.resume", "refused")]


def test_a_campaigner_limited_to_another_campaign_is_refused(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    add_campaign_now(pg_engine, "other-2026", NOW)
    client = signed_in(pg_engine, Role.CAMPAIGNER, campaigns=("other-2026",))
    assert "/dashboard/waves/" not in client.get("/dashboard/").get_data(as_text=True)
    assert post(client, f"/dashboard/waves/{seeded.wave_id}/pause") == 403
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.SENDING
    (row,) = audit_rows(pg_engine, "wave")
    assert (row.outcome, row.actor_role, row.campaign_id) == (
        "refused",
        "campaigner",
        seeded.campaign_id,
    )
    assert row.detail == f"{CAMPAIGNER} may not act on this campaign"


def test_a_campaigner_of_the_campaign_pauses_and_resumes_with_rows(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER, campaigns=("w4r-2020",))
    assert f"/dashboard/waves/{seeded.wave_id}/pause" in client.get("/dashboard/").get_data(
        as_text=True
    )
    assert post(client, f"/dashboard/waves/{seeded.wave_id}/pause") == 302
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.PAUSED
    assert post(client, f"/dashboard/waves/{seeded.wave_id}/resume") == 302
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.SENDING
    resumed, paused = audit_rows(pg_engine, "wave")
    assert (paused.action, paused.outcome, paused.before, paused.after) == (
        "wave.pause",
        "done",
        "status=sending",
        "status=paused",
    )
    assert (resumed.action, resumed.before, resumed.after) == (
        "wave.resume",
        "status=paused",
        "status=sending",
    )
    assert {paused.campaign_id, resumed.campaign_id} == {seeded.campaign_id}


def test_a_control_that_changes_nothing_says_so_in_its_row(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    assert post(client, f"/dashboard/waves/{seeded.wave_id}/resume") == 302  # not paused
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.SENDING
    (row,) = audit_rows(pg_engine, "wave")
    assert (row.action, row.outcome, row.before, row.after) == (
        "wave.resume",
        "done",
        "status=sending",
        "status=sending",
    )
    assert row.detail == "wave case-email is sending; nothing changed"


def test_the_bootstrap_login_acts_as_an_admin_with_its_own_name(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = make_app(pg_engine).test_client()
    assert log_in(client) == 302
    assert post(client, f"/dashboard/waves/{seeded.wave_id}/cancel") == 302
    assert wave_status(pg_engine, seeded.wave_id) == WaveStatus.CANCELLED
    (row,) = audit_rows(pg_engine, "wave")
    assert (row.actor, row.actor_role, row.outcome) == ("bootstrap:organiser", "admin", "done")


def test_a_viewer_may_not_look_up_an_address(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    assert "Suppressions" not in client.get("/dashboard/").get_data(as_text=True)
    page = client.get("/dashboard/suppressions").get_data(as_text=True)
    assert 'name="email"' not in page and "needs the campaigner role" in page
    assert post(client, "/dashboard/suppressions", email=EMAILS[2]) == 403
    assert changes(pg_engine) == [("suppression.lookup", "refused")]
    assert all(EMAILS[2] not in str(r) for r in audit_rows(pg_engine))


def test_a_lookup_is_recorded_without_the_address(pg_engine: Engine) -> None:
    seed(pg_engine)
    with session_scope(pg_engine) as session:
        session.add(Suppression(email_hash=email_hash(EMAILS[2]), reason="bounced", source="sg"))
    client = signed_in(pg_engine, Role.CAMPAIGNER)
    assert post(client, "/dashboard/suppressions", email=EMAILS[2]) == 200
    assert post(client, "/dashboard/suppressions", email="not an address") == 400
    (row,) = audit_rows(pg_engine, "suppression")
    assert (row.actor, row.outcome, row.detail) == (CAMPAIGNER, "done", "suppressed")
    for entry in audit_rows(pg_engine):
        assert EMAILS[2] not in str(entry) and email_hash(EMAILS[2]) not in str(entry)


def test_replies_are_for_campaigners_not_viewers(pg_engine: Engine) -> None:
    seed(pg_engine)
    client = signed_in(pg_engine, Role.VIEWER)
    assert client.get("/dashboard/replies").status_code == 403
    assert client.get("/dashboard/replies.csv").status_code == 403
    assert changes(pg_engine) == [("reply.review", "refused")] * 2
    assert client.get("/workspace/reports/").status_code == 200  # reports stay open to viewers
