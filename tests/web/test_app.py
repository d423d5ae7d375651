"""The app factory in production mode: no app, hence no forged cookie or link, on a bad secret."""

from __future__ import annotations

import secrets
import time

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine
from web_fixtures import STAFF_USER, make_app

from sender.core.config import DEV_INBOUND_SECRET, DEV_SECRET, DEV_STAFF_PASSWORD
from sender.core.runmode import UnsafeSettings

STRONG = {
    "campaign_mode": "production",
    "secret_key": secrets.token_urlsafe(32),
    "staff_password": secrets.token_urlsafe(32),
    "inbound_secret": secrets.token_urlsafe(32),
    "public_base_url": "https://act.amnesty-demo.org",
}


def forged_staff_cookie(secret: str) -> str:
    """What an outsider makes from a secret they read in this repository."""
    outsider = Flask("outsider")
    outsider.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(outsider)
    assert serializer is not None
    now = time.time()
    forged = {"staff": True, "user": STAFF_USER, "v": 1, "login": now, "seen": now}
    return str(serializer.dumps(forged))


def test_with_the_published_secret_a_cookie_can_be_forged_so_production_will_not_start(
    sqlite_engine: Engine,
) -> None:
    # The threat, shown where it is allowed (dev mode): the forged cookie opens the dashboard.
    dev = make_app(sqlite_engine, secret_key=DEV_SECRET)
    client = dev.test_client()
    client.set_cookie("session", forged_staff_cookie(DEV_SECRET))
    assert client.get("/workspace/replies/review").status_code == 200
    # The defence: in production the same settings build no app at all.
    with pytest.raises(UnsafeSettings) as refused:
        make_app(sqlite_engine, **{**STRONG, "secret_key": DEV_SECRET})
    assert [p.setting for p in refused.value.problems] == ["SECRET_KEY"]


@pytest.mark.parametrize("weak", ["x", "web-test-secret", "0123456789" * 2, "z" * 48])
def test_a_weak_secret_key_is_refused_too(sqlite_engine: Engine, weak: str) -> None:
    with pytest.raises(UnsafeSettings, match="SECRET_KEY"):
        make_app(sqlite_engine, **{**STRONG, "secret_key": weak})


@pytest.mark.parametrize("key", [None, "SG.real"])
@pytest.mark.parametrize("host", ["https://api.sendgrid.com", "https://api.eu.sendgrid.com"])
def test_every_bad_setting_is_named_at_once(
    sqlite_engine: Engine, key: str | None, host: str
) -> None:
    """Any SendGrid host, and a web process with no API key: the check no longer depends on them."""
    with pytest.raises(UnsafeSettings) as refused:
        make_app(
            sqlite_engine,
            campaign_mode="production",
            secret_key=DEV_SECRET,
            staff_password=DEV_STAFF_PASSWORD,
            inbound_secret=DEV_INBOUND_SECRET,
            public_base_url="http://act.amnesty-demo.org",
            sendgrid_api_key=key,
            sendgrid_api_host=host,
        )
    names = [p.setting for p in refused.value.problems]
    assert names == ["SECRET_KEY", "STAFF_PASSWORD", "INBOUND_SECRET", "PUBLIC_BASE_URL"]
    assert str(refused.value).count("to fix:") == 4


def test_good_production_settings_serve(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, **STRONG).test_client()
    assert client.get("/login").status_code == 200
    cookie_forged_with_a_guess = forged_staff_cookie(DEV_SECRET)
    client.set_cookie("session", cookie_forged_with_a_guess)
    assert client.get("/dashboard/replies").status_code == 302
