"""Two-factor sign-in on the web: the code step, replays, recovery codes, and admins' enrolment."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pyotp
import pytest
from flask.testing import FlaskClient
from ops_fixtures import seed
from sqlalchemy import Engine, select
from web_fixtures import (
    STAFF_EMAIL,
    add_staff,
    audit_rows,
    csrf_token,
    enrol_staff,
    make_app,
    sign_in,
    submit_code,
    wrong_code,
)

from sender.core.clock import MovableClock
from sender.core.db import session_scope
from sender.core.models import Wave
from sender.core.staff_models import StaffAccount
from sender.core.vocabulary import WaveStatus
from sender.staff import totp
from sender.staff.roles import Role
from sender.web import context

PAGE = "/workspace/reports/"
_SECRET = re.compile(r'data-testid="totp-secret">([A-Z2-7]+)<')
_CODE = re.compile(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>")


def opens(client: FlaskClient) -> bool:
    return client.get(PAGE).status_code == 200


def two_factor_on(engine: Engine) -> bool:
    with session_scope(engine) as session:
        return session.scalar(select(StaffAccount.totp_secret)) is not None


def log_out(client: FlaskClient) -> None:
    token = csrf_token(client, "/dashboard/account")
    client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def enrolled(pg_engine: Engine) -> tuple[FlaskClient, str]:
    account = add_staff(pg_engine, Role.CAMPAIGNER)
    return make_app(pg_engine).test_client(), enrol_staff(pg_engine, account)


def test_the_password_alone_opens_nothing_then_the_code_does(
    pg_engine: Engine, enrolled: tuple[FlaskClient, str]
) -> None:
    client, secret = enrolled
    response = client.post(
        "/login",
        data={
            "username": STAFF_EMAIL,
            "password": "quiet-harbour-lantern-71",
            "csrf_token": csrf_token(client),
            "next": "/workspace/reports/",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/code")
    assert not opens(client)
    assert client.get("/api/report").status_code == 401
    assert audit_rows(pg_engine) == []  # no sign-in yet
    token = csrf_token(client, "/login/code")
    done = client.post(
        "/login/code",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": token, "next": "/workspace/reports/"},
    )
    assert done.status_code == 302 and done.headers["Location"] == "/workspace/reports/"
    assert opens(client)
    (row,) = audit_rows(pg_engine)
    assert (row.action, row.actor, row.detail) == ("login", STAFF_EMAIL, "authenticator code")


def test_a_wrong_code_is_refused_and_recorded(
    pg_engine: Engine, enrolled: tuple[FlaskClient, str]
) -> None:
    client, secret = enrolled
    assert sign_in(client, code=wrong_code(secret)) == 401
    assert not opens(client)
    with client.session_transaction() as session:
        assert "staff" not in session
    (row,) = audit_rows(pg_engine)
    assert (row.action, row.actor, row.address) == ("2fa.failed", STAFF_EMAIL, "127.0.0.1")
    assert submit_code(client, pyotp.TOTP(secret).now()) == 302  # a right one still may follow
    assert opens(client)


def test_a_replayed_code_is_refused(pg_engine: Engine, enrolled: tuple[FlaskClient, str]) -> None:
    """Attack: a code seen over a shoulder or phished, used again within its 30 seconds."""
    client, secret = enrolled
    code = pyotp.TOTP(secret).now()
    assert sign_in(client, code=code) == 302
    log_out(client)
    assert sign_in(client, code=code) == 401
    assert not opens(client)
    assert [r.action for r in audit_rows(pg_engine)] == ["2fa.failed", "logout", "login"]


def test_a_recovery_code_works_once(pg_engine: Engine) -> None:
    account = add_staff(pg_engine, Role.VIEWER)
    with session_scope(pg_engine) as session:
        secret = totp.new_secret()
        now = datetime.now(UTC)
        codes = totp.enrol(
            session, "web-test-secret", account.id, secret, pyotp.TOTP(secret).at(now), now
        )
    assert codes is not None
    client = make_app(pg_engine).test_client()
    assert sign_in(client, code=codes[0].upper()) == 302 and opens(client)
    used = audit_rows(pg_engine, "2fa.recovery")
    assert [(r.actor, r.detail) for r in used] == [(STAFF_EMAIL, "9 recovery codes left")]
    log_out(client)
    assert sign_in(client, code=codes[0]) == 401
    assert not opens(client)
    assert sign_in(client, code=codes[1]) == 302
    assert "8 recovery codes left" in client.get("/dashboard/account").get_data(as_text=True)


def test_wrong_codes_count_in_the_login_brake(
    pg_engine: Engine, enrolled: tuple[FlaskClient, str]
) -> None:
    client, secret = enrolled
    assert sign_in(client) == 302
    codes = [submit_code(client, wrong_code(secret)) for _ in range(6)]
    assert codes == [401] * 5 + [429]
    assert submit_code(client, pyotp.TOTP(secret).now()) == 429  # the right code waits too
    assert not opens(client)
    assert len(audit_rows(pg_engine, "2fa.failed")) == 5
    assert len(audit_rows(pg_engine, "login.locked")) == 2


def test_the_code_step_expires(pg_engine: Engine, enrolled: tuple[FlaskClient, str]) -> None:
    _, secret = enrolled
    app = make_app(pg_engine)
    clock = MovableClock(datetime.now(UTC))
    app.extensions[context.CLOCK] = clock
    client = app.test_client()
    assert sign_in(client) == 302
    clock.advance(minutes=5)
    response = client.post(
        "/login/code",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(client, "/login")},
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert not opens(client)


def test_an_admin_must_enrol_before_any_other_page(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    add_staff(pg_engine, Role.ADMIN)
    client = make_app(pg_engine).test_client()
    assert sign_in(client) == 302
    for path in ("/dashboard/", PAGE, "/dashboard/audit", "/dashboard/account"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/dashboard/account/two-factor"
    assert client.get("/api/report").status_code == 401
    token = csrf_token(client, "/dashboard/account/two-factor")
    forged = client.post(f"/dashboard/waves/{seeded.wave_id}/pause", data={"csrf_token": token})
    assert forged.headers["Location"] == "/dashboard/account/two-factor"
    with session_scope(pg_engine) as session:
        wave = session.get(Wave, seeded.wave_id)
        assert wave is not None and wave.status == WaveStatus.SENDING

    page = client.get("/dashboard/account/two-factor").get_data(as_text=True)
    assert "<svg" in page and "otpauth" not in page.split("<svg", 1)[0]
    match = _SECRET.search(page)
    assert match
    secret = match.group(1)
    refused = client.post(
        "/dashboard/account/two-factor", data={"code": wrong_code(secret), "csrf_token": token}
    )
    assert refused.status_code == 400 and not two_factor_on(pg_engine)
    assert secret in refused.get_data(as_text=True)  # the same secret: the app need not rescan
    done = client.post(
        "/dashboard/account/two-factor",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": token},
    )
    assert done.status_code == 200 and two_factor_on(pg_engine)
    assert len(_CODE.findall(done.get_data(as_text=True))) == 10
    assert client.get("/dashboard/").status_code == 200
    (row,) = audit_rows(pg_engine, "2fa.enrol")
    assert (row.actor, row.actor_role, row.after) == (STAFF_EMAIL, "admin", "2fa=on")
    with client.session_transaction() as session:
        assert "enrolling" not in session  # the secret left the cookie once stored


def test_others_may_enrol_from_their_account_page(pg_engine: Engine) -> None:
    add_staff(pg_engine, Role.VIEWER)
    client = make_app(pg_engine).test_client()
    assert sign_in(client) == 302 and opens(client)  # no enrolment needed to work
    page = client.get("/dashboard/account").get_data(as_text=True)
    assert "Turn on two-factor sign-in" in page and 'data-testid="two-factor">off' in page
    secret_page = client.get("/dashboard/account/two-factor").get_data(as_text=True)
    match = _SECRET.search(secret_page)
    assert match
    token = csrf_token(client, "/dashboard/account")
    # The current step's code: accepted even if the server's clock has moved into the
    # next 30 s step by the time it checks (one step of drift is allowed, two are not).
    code = pyotp.TOTP(match.group(1)).now()
    client.post("/dashboard/account/two-factor", data={"code": code, "csrf_token": token})
    assert two_factor_on(pg_engine)
    assert "10 recovery codes left" in client.get("/dashboard/account").get_data(as_text=True)
    again = client.get("/dashboard/account/two-factor")
    assert again.status_code == 302  # already on: no second enrolment over the first


def test_codes_and_enrolment_need_the_csrf_token(
    pg_engine: Engine, enrolled: tuple[FlaskClient, str]
) -> None:
    client, secret = enrolled
    assert sign_in(client) == 302
    assert client.post("/login/code", data={"code": pyotp.TOTP(secret).now()}).status_code == 400
    assert not opens(client)
    other = make_app(pg_engine).test_client()
    add_staff(pg_engine, Role.VIEWER, email="omar@example.org")
    assert sign_in(other, email="omar@example.org") == 302
    page = other.get("/dashboard/account/two-factor").get_data(as_text=True)
    match = _SECRET.search(page)
    assert match
    forged = other.post(
        "/dashboard/account/two-factor", data={"code": pyotp.TOTP(match.group(1)).now()}
    )
    assert forged.status_code == 400
    with session_scope(pg_engine) as session:
        secrets = session.scalars(select(StaffAccount.totp_secret).order_by(StaffAccount.id))
        assert [s is not None for s in secrets] == [True, False]  # the viewer is not enrolled
