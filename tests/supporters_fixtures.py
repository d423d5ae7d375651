"""Signed-in clients and polling for the supporters workspace tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyotp
from audit_fixtures import audit_rows
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from web_fixtures import add_staff, enrol_staff, make_app, sign_in

from sender.core.db import session_scope
from sender.core.models import ImportRun
from sender.staff.audit import Entry
from sender.staff.roles import Role

STAFF = {
    Role.VIEWER: "vera@example.org",
    Role.CAMPAIGNER: "omar@example.org",
    Role.ADMIN: "ada@example.org",
}
PAGE = "/workspace/supporters/"


def signed_in(engine: Engine, role: Role, upload_dir: Path, **settings: object) -> FlaskClient:
    account = add_staff(engine, role, email=STAFF[role])
    client = make_app(engine, upload_dir=upload_dir, **settings).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.30"
    code = pyotp.TOTP(enrol_staff(engine, account)).now() if role is Role.ADMIN else None
    assert sign_in(client, email=STAFF[role], code=code) == 302
    return client


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


def runs(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(ImportRun)) or 0)


def changes(engine: Engine, *what: str) -> list[Entry]:
    """Oldest first."""
    return audit_rows(engine, *what)
