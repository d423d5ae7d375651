"""Staff login: wrong passwords, guessing brake, CSRF, redirects, hashed passwords."""

from __future__ import annotations

import logging
import secrets

import pytest
from flask.testing import FlaskClient
from ops_fixtures import ops_redis_fixture  # noqa: F401 - provides ops_redis_url
from sqlalchemy import Engine
from web_fixtures import STAFF_PASSWORD, STAFF_USER, csrf_token, log_in, make_app
from werkzeug.security import generate_password_hash

from sender.web.auth import safe_next
from sender.web.sessions import StaffSessionInterface


def test_dashboard_without_login_redirects_to_login(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    response = client.get("/dashboard/replies")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/dashboard/replies")
    assert client.get("/dashboard/replies.csv").status_code == 302


def test_right_password_logs_in_and_follows_next(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    token = csrf_token(client, "/login?next=/workspace/replies/review")
    response = client.post(
        "/login",
        data={
            "username": "organiser",
            "password": STAFF_PASSWORD,
            "csrf_token": token,
            "next": "/workspace/replies/review",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/workspace/replies/review"
    assert client.get("/workspace/replies/review").status_code == 200
    with client.session_transaction() as session:
        assert session["staff"] is True


def test_wrong_password_or_user_gives_no_access(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    assert log_in(client, password="guess") == 401
    assert log_in(client, user="admin") == 401
    assert client.get("/dashboard/").status_code == 302
    with client.session_transaction() as session:
        assert "staff" not in session
    assert log_in(client) == 302  # the right one still works after a couple of mistakes
    assert client.get("/dashboard/").status_code == 200


def test_repeated_failures_are_slowed_then_refused(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    codes = [log_in(client, password=f"guess-{i}") for i in range(7)]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    # Even the right password waits out the brake: a guesser cannot tell they found it.
    assert log_in(client) == 429
    assert client.get("/dashboard/").status_code == 302


def test_failures_elsewhere_never_block_the_right_password_from_another_address(
    sqlite_engine: Engine,
) -> None:
    """Attack: lock staff out of the pause and kill switches by failing from many addresses."""
    client = make_app(sqlite_engine).test_client()
    for address in range(6):  # 36 failures: every attacking address gets locked out
        client.environ_base["REMOTE_ADDR"] = f"203.0.113.{address}"
        codes = [log_in(client, password=f"guess-{address}-{i}") for i in range(6)]
        assert codes == [401] * 5 + [429]
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"  # the organiser's office
    assert log_in(client) == 302
    assert client.get("/dashboard/").status_code == 200


def test_one_address_trying_many_user_names_is_braked_too(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    codes = [log_in(client, user=f"user-{i}", password="guess") for i in range(21)]
    assert codes == [401] * 20 + [429]
    other = make_app(sqlite_engine).test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert log_in(other) == 302


def test_a_lockout_is_logged_without_the_user_name_and_counted(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    def throttled() -> float:
        value = REGISTRY.get_sample_value("login_throttled_total", {"scope": "user_address"})
        return value or 0.0

    before = throttled()
    client = make_app(sqlite_engine).test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    with caplog.at_level(logging.INFO):
        codes = [log_in(client, user="organiser", password=f"guess-{i}") for i in range(7)]
    assert codes[5:] == [429, 429]
    assert throttled() == before + 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "203.0.113.9" in warnings[0].getMessage()
    for record in caplog.records:  # at every level the limiter and the app log at
        assert "organiser" not in record.getMessage()


def test_forwarded_addresses_are_ignored_unless_proxies_are_trusted(sqlite_engine: Engine) -> None:
    """Attack: dodge the brake by sending a new X-Forwarded-For with every guess."""
    direct = make_app(sqlite_engine).test_client()
    codes = [log_in_from(direct, f"192.0.2.{i}", password=f"guess-{i}") for i in range(6)]
    assert codes == [401] * 5 + [429]  # the header is not the client's address: still braked


def test_behind_a_trusted_proxy_each_client_has_its_own_brake(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, trusted_proxies=1).test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # the proxy, for every request
    codes = [log_in_from(client, "203.0.113.5", password=f"guess-{i}") for i in range(6)]
    assert codes == [401] * 5 + [429]
    # Without ProxyFix every client would share the proxy's address and be locked out.
    assert log_in_from(client, "198.51.100.7") == 302


def log_in_from(client: FlaskClient, forwarded: str, password: str = STAFF_PASSWORD) -> int:
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
    try:
        return log_in(client, password=password)
    finally:
        del client.environ_base["HTTP_X_FORWARDED_FOR"]


def test_successful_logins_are_not_counted(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    for _ in range(8):
        assert log_in(client) == 302


def test_post_without_csrf_token_is_refused(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    response = client.post("/login", data={"username": "organiser", "password": STAFF_PASSWORD})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "staff" not in session
    assert log_in(client) == 302
    assert client.post("/logout").status_code == 400  # logout is a form too
    assert client.get("/dashboard/").status_code == 200


def test_logout_ends_the_session(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine).test_client()
    log_in(client)
    token = csrf_token(client, "/dashboard/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_werkzeug_password_hash_in_settings(sqlite_engine: Engine) -> None:
    hashed = generate_password_hash("s3cret-phrase")
    client = make_app(sqlite_engine, staff_password=hashed).test_client()
    assert log_in(client, password=hashed) == 401  # the hash itself is not the password
    assert log_in(client, password="s3cret-phrase") == 302


def test_session_cookie_is_httponly_and_secure_on_https(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine, public_base_url="https://act.example.org")
    client = app.test_client()
    https = "https://localhost"
    page = client.get("/login", base_url=https).get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"username": STAFF_USER, "password": STAFF_PASSWORD, "csrf_token": token}
    # Flask-WTF checks the Referer of a form posted over https.
    sent = client.post("/login", data=form, base_url=https, headers={"Referer": f"{https}/login"})
    assert sent.status_code == 302
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.secure
    assert cookie.same_site == "Lax"


def test_dev_mode_signs_in_over_plain_http(sqlite_engine: Engine) -> None:
    """`campaign serve` on a laptop: a Secure cookie over http would be dropped by the browser."""
    app = make_app(sqlite_engine, public_base_url="https://act.example.org")
    client = app.test_client()
    assert log_in(client) == 302
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and not cookie.secure


def test_production_marks_the_cookie_secure_even_over_http(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine, public_base_url="https://act.example.org")
    assert app.session_interface.plain_http_ok  # type: ignore[attr-defined]
    production = StaffSessionInterface(plain_http_ok=False)
    with app.test_request_context("/login", base_url="http://act.example.org"):
        assert production.get_cookie_secure(app)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "dashboard"]
)
def test_next_never_leaves_the_site(sqlite_engine: Engine, target: str) -> None:
    app = make_app(sqlite_engine)
    with app.test_request_context():
        assert safe_next(target) == "/dashboard/"
        assert safe_next("/dashboard/replies?x=1") == "/dashboard/replies?x=1"


def test_webhook_blueprints_are_exempt_from_csrf(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine)
    client = app.test_client()
    # No CSRF token and no session: refused for its own reasons (signature), never a CSRF 400.
    response = client.post("/webhooks/sendgrid/events", json=[])
    assert b"CSRF" not in response.get_data()
    response = client.post("/unsubscribe/not-a-token", data={"List-Unsubscribe": "One-Click"})
    assert b"CSRF" not in response.get_data()


def test_failure_count_is_shared_through_redis(sqlite_engine: Engine, ops_redis_url: str) -> None:
    """Two app instances (two gunicorn processes, or two machines) share the brake."""
    import redis

    first = make_app(sqlite_engine, redis_url=ops_redis_url).test_client()
    second = make_app(sqlite_engine, redis_url=ops_redis_url).test_client()
    for i in range(3):
        assert log_in(first, password=f"guess-{i}") == 401
    for i in range(2):
        assert log_in(second, password=f"again-{i}") == 401
    assert log_in(second, password="one-more") == 429
    assert log_in(first) == 429
    client = redis.Redis.from_url(ops_redis_url, decode_responses=True)
    keys = [str(k) for k in client.keys("*")]
    assert keys and all(k.startswith("LIMITS:LIMITER/campaign:login/") for k in keys), keys


def test_unreachable_redis_neither_locks_out_nor_lifts_the_brake(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, redis_url="redis://127.0.0.1:1/0").test_client()
    codes = [log_in(client, password=f"guess-{i}") for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429


def test_right_password_works_while_redis_is_down(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, redis_url="redis://127.0.0.1:1/0").test_client()
    assert log_in(client) == 302
    assert client.get("/dashboard/").status_code == 200


def test_a_published_password_means_no_production_app_to_log_in_to(
    sqlite_engine: Engine,
) -> None:
    from sender.core.config import DEV_STAFF_PASSWORD
    from sender.core.runmode import UnsafeSettings

    strong = {
        "campaign_mode": "production",
        "secret_key": secrets.token_urlsafe(32),
        "inbound_secret": secrets.token_urlsafe(32),
        "public_base_url": "https://act.amnesty-demo.org",
    }
    with pytest.raises(UnsafeSettings, match="STAFF_PASSWORD") as refused:
        make_app(sqlite_engine, staff_password=DEV_STAFF_PASSWORD, **strong)
    assert [p.setting for p in refused.value.problems] == ["STAFF_PASSWORD"]
    chosen = secrets.token_urlsafe(32)
    client = make_app(sqlite_engine, staff_password=chosen, **strong).test_client()
    assert client.get("/login").status_code == 200
    assert log_in(client, password=chosen) == 302
