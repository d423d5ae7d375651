"""An app on a seeded database, logged-in clients, staff accounts and CSRF helpers for web tests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

import audit_fixtures
import pyotp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from sender.core.clock import SystemClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.staff import accounts, totp
from sender.staff.accounts import Account
from sender.staff.audit import Entry
from sender.staff.roles import Role
from sender.web import create_app

STAFF_USER = "organiser"
STAFF_PASSWORD = "correct horse battery staple"
SECRET_KEY = "web-test-secret"  # make_app's: it also encrypts the TOTP secrets
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(engine: Engine, **overrides: object) -> Flask:
    values: dict[str, object] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "secret_key": SECRET_KEY,
        "staff_user": STAFF_USER,
        "staff_password": STAFF_PASSWORD,
        "public_base_url": "http://localhost",
        **overrides,
    }
    app = create_app(Settings(**values))  # type: ignore[arg-type]
    app.config["TESTING"] = True
    return app


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    match = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def log_in(client: FlaskClient, password: str = STAFF_PASSWORD, user: str = STAFF_USER) -> int:
    response = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": csrf_token(client)},
    )
    return response.status_code


# Staff accounts: a password the rule accepts, the accounts made as `campaign staff add` makes them.
STAFF_EMAIL = "lena.kovac@example.org"
GOOD_PASSWORD = "quiet-harbour-lantern-71"


def add_staff(
    engine: Engine,
    role: Role,
    email: str = STAFF_EMAIL,
    campaigns: Sequence[str] = (),
    password: str = GOOD_PASSWORD,
) -> Account:
    with session_scope(engine) as session:
        return accounts.add_account(session, email, role, password, SystemClock().now(), campaigns)


def enrol_staff(engine: Engine, account: Account) -> str:
    """Two-factor on, as if enrolled a step ago, so the code of this step is still unused."""
    secret = totp.new_secret()
    earlier = SystemClock().now() - timedelta(seconds=30)
    code = pyotp.TOTP(secret).at(earlier)
    with session_scope(engine) as session:
        assert totp.enrol(session, SECRET_KEY, account.id, secret, code, earlier) is not None
    return secret


def wrong_code(secret: str) -> str:
    """Six digits that no step near now accepts."""
    totp_now = pyotp.TOTP(secret)
    now = SystemClock().now()
    near = {totp_now.at(now + timedelta(seconds=s)) for s in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


def sign_in(
    client: FlaskClient,
    email: str = STAFF_EMAIL,
    password: str = GOOD_PASSWORD,
    code: str | None = None,
) -> int:
    """The status of the last step: the password's, or with `code` the second factor's."""
    status = log_in(client, password=password, user=email)
    if code is None or status != 302:
        return status
    return submit_code(client, code)


def submit_code(client: FlaskClient, code: str) -> int:
    token = csrf_token(client, "/login/code")
    return client.post("/login/code", data={"code": code, "csrf_token": token}).status_code


def audit_rows(engine: Engine, *what: str) -> list[Entry]:
    """Newest first, as the audit page shows them."""
    return audit_fixtures.audit_rows(engine, *what, newest_first=True)
