"""Signed-in clients and polling for the supporters workspace tests."""

from __future__ import annotations

from pathlib import Path

import pyotp
from audit_fixtures import audit_rows
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from web_fixtures import add_staff, enrol_staff, make_app, sign_in

from sender.audience.import_runs import read_run
from sender.core.db import session_scope
from sender.core.models import ImportRun
from sender.devtools.waiting import wait_until
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


def import_over(engine: Engine, run_id: int, timeout: float = 30.0) -> None:
    wait_until(lambda: read_run(engine, run_id).finished, timeout, f"import #{run_id} to end")


def runs(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(ImportRun)) or 0)


def changes(engine: Engine, *what: str) -> list[Entry]:
    """Oldest first."""
    return audit_rows(engine, *what)
