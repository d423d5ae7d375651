"""For the wave and preview workspace tests: a signed-in client, CSRF posts, seeded waves."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from ops_fixtures import Seeded, seed
from render_fixtures import TEXTS
from sqlalchemy import Engine, func, select
from web_fixtures import add_staff, audit_rows, csrf_token, make_app, sign_in

from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Assignment, Case, Supporter, Suppression, Wave
from sender.devtools.waiting import wait_until
from sender.staff.roles import Role

CAMPAIGNER = "amara@example.org"


def client_as(engine: Engine, role: Role) -> FlaskClient:
    add_staff(engine, role, email=CAMPAIGNER)
    client = make_app(engine).test_client()
    assert sign_in(client, email=CAMPAIGNER) == 302
    return client


def post(client: FlaskClient, path: str, **data: str) -> int:
    token = csrf_token(client, "/dashboard/account")
    return client.post(path, data={"csrf_token": token, **data}).status_code


def reach_state(client: FlaskClient, wave_id: int) -> str:
    """The launch confirmation's count as its polled fragment shows it."""
    fragment = client.get(f"/workspace/waves/{wave_id}/launch/reach").get_data(as_text=True)
    found = re.search(r'data-testid="reach" data-state="(\w+)"', fragment)
    assert found, fragment
    return found.group(1)


def counted_launch_page(client: FlaskClient, wave_id: int) -> str:
    """The launch confirmation once its background count is over (it starts on the first GET)."""
    client.get(f"/workspace/waves/{wave_id}/launch")
    wait_until(lambda: reach_state(client, wave_id) != "counting", 30.0, "the reach count")
    return client.get(f"/workspace/waves/{wave_id}/launch").get_data(as_text=True)


def wave_status(engine: Engine, wave_id: int) -> str:
    with session_scope(engine) as session:
        return session.get_one(Wave, wave_id).status


def changes(engine: Engine) -> list[tuple[str, str]]:
    return [(r.action, r.outcome) for r in audit_rows(engine) if r.action.startswith("wave.")]


def wave_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Wave)) or 0)


def seed_assigned(engine: Engine) -> Seeded:
    """The seed around now, its ten supporters assigned (the first two were mailed a moment ago)."""
    seeded = seed(engine, SystemClock().now())
    with session_scope(engine) as session:
        people = session.scalars(select(Supporter).order_by(Supporter.id)).all()
        for i, person in enumerate(people):
            case_id = seeded.case_ids[0] if i < 6 else seeded.case_ids[1]
            session.add(Assignment(supporter_id=person.id, case_id=case_id, strategy="manual"))
        for found in session.scalars(select(Case)):
            found.content = TEXTS  # English and Arabic: every variant renders
        people[4].language = people[5].language = "ar"
        people[2].consent = False
        session.add(Suppression(email_hash=people[3].email_hash, reason="bounce"))
    return seeded
