"""An app on a seeded database, a logged-in client and CSRF helpers for the web tests."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from sender.core.config import Settings
from sender.web import create_app

STAFF_USER = "organiser"
STAFF_PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(engine: Engine, **overrides: object) -> Flask:
    values: dict[str, object] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "secret_key": "web-test-secret",
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
