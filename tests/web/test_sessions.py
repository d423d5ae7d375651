"""Staff sessions end: 8 h after login, after idling, at logout everywhere, on a password change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from web_fixtures import STAFF_PASSWORD, add_staff, csrf_token, log_in, make_app, sign_in

from sender.core.clock import MovableClock
from sender.core.db import session_scope
from sender.core.models import StaffSessionVersion
from sender.staff.accounts import Account
from sender.staff.roles import Role
from sender.web import context
from sender.web.sessions import Limits, SessionEnd, account_session_end, session_end

PAGE = "/workspace/replies/review"


def app_with_clock(engine: Engine, clock: MovableClock, **overrides: object) -> Flask:
    app = make_app(engine, **overrides)
    app.extensions[context.CLOCK] = clock
    return app


@pytest.fixture
def clock() -> MovableClock:
    # Near real time: the test client drops cookies whose expiry has passed in real time.
    return MovableClock(datetime.now(UTC).replace(microsecond=0))


def opens(client: FlaskClient) -> bool:
    return client.get(PAGE).status_code == 200


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replay(app: Flask, cookie: str) -> FlaskClient:
    """Another browser that was handed a copy of the cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def test_a_cookie_saved_before_logout_fails_after_it(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine)
    client = app.test_client()
    assert log_in(client) == 302
    saved = session_cookie(client)
    assert opens(replay(app, saved))  # the copy works while the session lives
    token = csrf_token(client, "/dashboard/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    stolen = replay(app, saved)
    assert stolen.get(PAGE).status_code == 302  # to the login page
    assert stolen.get("/api/report").status_code == 401
    assert not opens(client)


def test_logout_in_one_browser_ends_the_session_in_another(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine)
    laptop, phone = app.test_client(), app.test_client()
    assert log_in(laptop) == 302 and log_in(phone) == 302
    token = csrf_token(phone, "/dashboard/")
    assert phone.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not opens(laptop)
    assert log_in(laptop) == 302 and opens(laptop)  # logging in again works at once


def test_a_session_ends_eight_hours_after_login_however_active(
    sqlite_engine: Engine, clock: MovableClock
) -> None:
    app = app_with_clock(sqlite_engine, clock)
    client = app.test_client()
    assert log_in(client) == 302
    saved = session_cookie(client)
    for _ in range(47):  # a request every 10 minutes: never idle
        clock.advance(minutes=10)
        assert opens(client)
    clock.advance(minutes=9, seconds=59)  # 7 h 59 min 59 s after login
    assert opens(client)
    clock.advance(seconds=1)
    assert not opens(client)
    assert not opens(replay(app, saved))


def test_the_lifetime_is_a_setting(sqlite_engine: Engine, clock: MovableClock) -> None:
    client = app_with_clock(sqlite_engine, clock, session_lifetime_hours=1).test_client()
    assert log_in(client) == 302
    clock.advance(minutes=29)
    assert opens(client)
    clock.advance(minutes=29)
    assert opens(client)
    clock.advance(minutes=2)
    assert not opens(client)


def test_an_idle_session_ends(sqlite_engine: Engine, clock: MovableClock) -> None:
    app = app_with_clock(sqlite_engine, clock, session_idle_minutes=20)
    client = app.test_client()
    assert log_in(client) == 302
    clock.advance(minutes=19)
    assert opens(client)  # and this request counts as activity
    saved = session_cookie(client)
    clock.advance(minutes=19)
    assert opens(client)
    clock.advance(minutes=20)
    assert not opens(client)
    assert not opens(replay(app, saved))


def test_the_cookie_expires_at_login_plus_lifetime_not_later(
    sqlite_engine: Engine, clock: MovableClock
) -> None:
    client = app_with_clock(sqlite_engine, clock).test_client()
    assert log_in(client) == 302
    login_at = clock.now()
    for _ in range(6):  # two active hours
        clock.advance(minutes=20)
        assert opens(client)
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None
    assert cookie.expires.replace(tzinfo=UTC) == login_at + timedelta(hours=8)


def test_a_password_change_ends_every_session(sqlite_engine: Engine) -> None:
    before = make_app(sqlite_engine)
    client = before.test_client()
    assert log_in(client) == 302
    saved = session_cookie(client)
    restarted = make_app(sqlite_engine)  # a restart with the same password keeps sessions
    assert opens(replay(restarted, saved))
    changed = make_app(sqlite_engine, staff_password="a new passphrase, long and chosen")
    assert not opens(replay(changed, saved))
    assert not opens(replay(restarted, saved))  # and the old processes agree
    fresh = changed.test_client()
    assert log_in(fresh, password=STAFF_PASSWORD) == 401
    assert log_in(fresh, password="a new passphrase, long and chosen") == 302


def test_the_version_is_kept_server_side_per_user(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine)
    client = app.test_client()
    assert log_in(client) == 302
    token = csrf_token(client, "/dashboard/")
    client.post("/logout", data={"csrf_token": token})
    with session_scope(sqlite_engine) as session:
        rows = session.execute(
            select(StaffSessionVersion.user_name, StaffSessionVersion.version)
        ).all()
    assert [tuple(r) for r in rows] == [("organiser", 2)]


def test_a_hand_made_or_edited_session_is_no_session(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine)
    client = app.test_client()
    with client.session_transaction() as session:
        session["staff"] = True  # signed with the right key, but written by a test, not a login
    assert not opens(client)
    assert log_in(client) == 302
    with client.session_transaction() as session:
        session["v"] = session["v"] + 1  # a guessed future version
    assert not opens(client)


def test_session_end_reasons() -> None:
    limits = Limits(timedelta(hours=8), timedelta(minutes=30))
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    good = {"user": "u", "v": 3, "login": now.timestamp() - 60, "seen": now.timestamp() - 60}

    def end(data: dict[str, object], version: int = 3) -> SessionEnd | None:
        return session_end(data, now, limits, "u", lambda _user: version)

    assert end(good) is None
    assert end(good, version=4) == SessionEnd.REVOKED
    assert end({**good, "user": "someone-else"}) == SessionEnd.REVOKED
    assert end({**good, "login": now.timestamp() - 8 * 3600}) == SessionEnd.EXPIRED
    assert end({**good, "login": now.timestamp() + 60}) == SessionEnd.EXPIRED  # from the future
    assert end({**good, "seen": now.timestamp() - 1800}) == SessionEnd.IDLE
    assert end({"staff": True}) == SessionEnd.MALFORMED
    assert end({**good, "v": "3"}) == SessionEnd.MALFORMED


def test_account_session_end_reasons() -> None:
    limits = Limits(timedelta(hours=8), timedelta(minutes=30))
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    made = datetime(2025, 12, 1, tzinfo=UTC)
    active = Account(7, "lena@example.org", Role.VIEWER, (), None, False, False, 3, None, made)
    good: dict[str, object] = {
        "account": 7,
        "v": 3,
        "login": now.timestamp() - 60,
        "seen": now.timestamp() - 60,
    }

    def end(data: dict[str, object], account: Account | None = active) -> SessionEnd | None:
        return account_session_end(data, now, limits, lambda _id: account)

    assert end(good) is None
    assert end(good, replace(active, session_version=4)) == SessionEnd.REVOKED
    assert end(good, replace(active, disabled=True)) == SessionEnd.REVOKED
    assert end(good, None) == SessionEnd.REVOKED  # the account was deleted
    assert end({**good, "login": now.timestamp() - 8 * 3600}) == SessionEnd.EXPIRED
    assert end({**good, "seen": now.timestamp() - 1800}) == SessionEnd.IDLE
    assert end({**good, "account": "7"}) == SessionEnd.MALFORMED
    assert end({"staff": True, "v": 3}) == SessionEnd.MALFORMED


def test_an_account_session_keeps_the_lifetime_and_idle_rules(
    pg_engine: Engine, clock: MovableClock
) -> None:
    add_staff(pg_engine, Role.CAMPAIGNER)  # the replies page is a campaigner's
    client = app_with_clock(pg_engine, clock, session_idle_minutes=20).test_client()
    assert sign_in(client) == 302
    clock.advance(minutes=19)
    assert opens(client)
    clock.advance(minutes=20)
    assert not opens(client)
    assert sign_in(client) == 302
    for _ in range(24):  # active every 19 minutes, for 7 h 36 min
        clock.advance(minutes=19)
        assert opens(client)
    clock.advance(minutes=19)  # 7 h 55 min
    assert opens(client)
    clock.advance(minutes=5)
    assert not opens(client)
