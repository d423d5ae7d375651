"""The audit log page: admins only, filters, a formula-safe CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from web_fixtures import STAFF_EMAIL, add_staff, audit_rows, enrol_staff, make_app, sign_in

from sender.core.db import session_scope
from sender.staff.actions import What
from sender.staff.audit import COLUMNS, Actor, record
from sender.staff.roles import Role

_ACTION = re.compile(r'<tr data-action="([^"]+)"')


def admin(engine: Engine) -> FlaskClient:
    account = add_staff(engine, Role.ADMIN)
    client = make_app(engine).test_client()
    assert sign_in(client, code=pyotp.TOTP(enrol_staff(engine, account)).now()) == 302
    return client


def add_rows(engine: Engine) -> None:
    """Rows as other adapters leave them: an old import, a recent pause, a formula in a target."""
    old = datetime.now(UTC) - timedelta(days=10)
    omar = Actor("omar@example.org", Role.CAMPAIGNER, "cli-host")
    with session_scope(engine) as session:
        record(session, omar, What.IMPORT, "march.csv", detail="120 added", at=old)
        record(session, omar, What.WAVE_PAUSE, "wave w4r/case-email", before="status=sending")
        record(session, omar, What.WAVE_CREATE, '=HYPERLINK("http://x")')


def shown(client: FlaskClient, query: str) -> list[str]:
    """The actions of the rows the page shows, top to bottom."""
    response = client.get(f"/dashboard/audit?{query}")
    assert response.status_code == 200
    return _ACTION.findall(response.get_data(as_text=True))


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CAMPAIGNER])
def test_only_admins_open_the_audit_log(pg_engine: Engine, role: Role) -> None:
    add_staff(pg_engine, role)
    client = make_app(pg_engine).test_client()
    assert sign_in(client) == 302
    assert "Audit log" not in client.get("/dashboard/").get_data(as_text=True)
    assert client.get("/dashboard/audit").status_code == 403
    assert client.get("/dashboard/audit.csv").status_code == 403
    refusals = audit_rows(pg_engine, "audit")
    assert [(r.outcome, r.actor, r.actor_role) for r in refusals] == [
        ("refused", STAFF_EMAIL, role.value)
    ] * 2


def test_an_admin_reads_and_filters_the_log(pg_engine: Engine) -> None:
    add_rows(pg_engine)
    client = admin(pg_engine)
    page = client.get("/dashboard/").get_data(as_text=True)
    assert 'href="/dashboard/audit"' in page
    html = client.get("/dashboard/audit").get_data(as_text=True)
    assert "march.csv" in html and "status=sending" in html and 'scope="col"' in html
    assert f"<td>{STAFF_EMAIL}</td>" in html  # the admin's own sign-in is a row too
    assert shown(client, "what=wave") == ["wave.create", "wave.pause"]
    assert shown(client, "what=wave.pause,supporters") == ["wave.pause", "supporters.import"]
    assert shown(client, "since=7d&who=omar@example.org") == ["wave.create", "wave.pause"]
    assert shown(client, "who=omar@example.org") == [
        "wave.create",
        "wave.pause",
        "supporters.import",
    ]
    assert shown(client, "who=nobody@example.org") == []
    assert shown(client, "since=30m") == ["login", "wave.create", "wave.pause"]


def test_a_since_it_cannot_read_is_400_and_shows_nothing(pg_engine: Engine) -> None:
    add_rows(pg_engine)
    client = admin(pg_engine)
    response = client.get("/dashboard/audit?since=last+tuesday")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "neither a date" in html and "march.csv" not in html
    assert client.get("/dashboard/audit.csv?since=soon").status_code == 400


def test_the_csv_has_every_column_and_defuses_formulas(pg_engine: Engine) -> None:
    add_rows(pg_engine)
    client = admin(pg_engine)
    response = client.get("/dashboard/audit.csv?who=omar@example.org")
    assert response.headers["Content-Disposition"] == "attachment; filename=audit-log.csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == COLUMNS
    assert [r["action"] for r in rows] == ["wave.create", "wave.pause", "supporters.import"]
    assert rows[0]["target"] == '\'=HYPERLINK("http://x")'
    assert rows[2]["detail"] == "120 added"
