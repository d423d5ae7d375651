"""Signed-in clients, form posts and database reads for the workspace's campaigns area tests."""

from __future__ import annotations

import io

import pyotp
from flask.testing import FlaskClient
from ops_fixtures import seed
from sqlalchemy import Engine, select
from web_fixtures import add_staff, audit_rows, csrf_token, enrol_staff, make_app, sign_in

from sender.campaign.cases import case_text_changes
from sender.core.db import session_scope
from sender.core.models import Campaign, Case
from sender.staff.roles import Role

PERSON = "omar@example.org"
BASE = "/workspace/campaigns"


def signed_in(engine: Engine, role: Role) -> FlaskClient:
    account = add_staff(engine, role, email=PERSON)
    client = make_app(engine).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.30"
    code = pyotp.TOTP(enrol_staff(engine, account)).now() if role is Role.ADMIN else None
    assert sign_in(client, email=PERSON, code=code) == 302
    return client


def post(client: FlaskClient, path: str, data: dict[str, object] | None = None) -> tuple[int, str]:
    token = csrf_token(client, f"{BASE}/")
    response = client.post(path, data={"csrf_token": token, **(data or {})})
    return response.status_code, response.get_data(as_text=True)


def campaign_slugs(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Campaign.slug).order_by(Campaign.slug)))


def case_status(engine: Engine, slug: str) -> str:
    with session_scope(engine) as session:
        return session.scalars(select(Case.status).where(Case.slug == slug)).one()


def changes(engine: Engine) -> list[tuple[str, str, str]]:
    return [
        (r.action, r.outcome, r.target)
        for r in audit_rows(engine)
        if not r.action.startswith(("login", "logout", "2fa"))
    ]


def a_case(slug: str, person: str, country: str = "SA") -> str:
    return (
        f"  - slug: {slug}\n    person: {person}\n    country: {country}\n    status: active\n"
        "    content:\n      en:\n        title: Free them\n        summary: Held for writing.\n"
        "        ask: Release them.\n        authority: The Minister\n"
        "        authority_address: [Ministry, Capital]\n        letter: Please release them.\n"
    )


def cases_upload(client: FlaskClient, path: str, text: str) -> tuple[int, str]:
    return post(client, path, {"cases": (io.BytesIO(text.encode()), "cases.yaml")})


def with_texts(engine: Engine) -> None:
    seed(engine)
    case_text_changes(
        engine, "cases:\n" + a_case("bird", "Nassima al-Sada"), "w4r-2020", apply=True
    )


def stored_title(engine: Engine) -> str:
    with session_scope(engine) as session:
        content = session.scalars(select(Case.content).where(Case.slug == "bird")).one()
        return str(content["en"]["title"])


def edited(**overrides: str) -> dict[str, object]:
    values = {
        "title": "Free Nassima al-Sada now",
        "summary": "Held for writing.",
        "ask": "Release them.",
        "authority": "The Minister",
        "authority_address": "Ministry\nCapital",
        "letter": "Please release them.",
        "good_news": "",
    }
    return {**values, **overrides}


TEXTS = f"{BASE}/w4r-2020/cases/bird/texts"
