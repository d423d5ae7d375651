"""Security headers on every response; HSTS on https only; ProxyFix only when trusted."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from web_fixtures import log_in, make_app

from sender.core.errors import ConfigError

PATHS = ["/login", "/dashboard/", "/a/not-a-token", "/unsubscribe/nope", "/metrics", "/healthz",
         "/readyz", "/no-such-page"]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_no_page_can_be_framed_or_sniffed(sqlite_engine: Engine, path: str) -> None:
    """Attack: frame the dashboard on another site and trick staff into clicking pause."""
    response = make_app(sqlite_engine).test_client().get(path)
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in {"same-origin", "no-referrer"}
    assert "Strict-Transport-Security" not in response.headers  # plain http here


def test_a_logged_in_dashboard_page_and_a_post_carry_them_too(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    assert log_in(client) == 302
    for response in (client.get("/dashboard/replies"), client.post("/login", data={})):
        assert response.headers["X-Frame-Options"] == "DENY"


def test_token_pages_send_no_referer_at_all(sqlite_engine: Engine) -> None:
    response = make_app(sqlite_engine).test_client().get("/a/not-a-token")
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_hsts_only_on_https(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, public_base_url="https://act.example.org").test_client()
    secure = client.get("/login", base_url="https://act.example.org")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_https_seen_through_a_trusted_proxy_only(sqlite_engine: Engine) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}
    trusted = make_app(sqlite_engine, trusted_proxies=1).test_client()
    assert "Strict-Transport-Security" in trusted.get("/login", headers=forwarded).headers
    untrusted = make_app(sqlite_engine).test_client()
    assert "Strict-Transport-Security" not in untrusted.get("/login", headers=forwarded).headers


def test_a_metrics_allow_list_typo_stops_the_app(sqlite_engine: Engine) -> None:
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        make_app(sqlite_engine, metrics_allow="10.0.0.0/8, 10.0.0.300")
