"""/metrics, /healthz and /readyz: open to machines, closed to supporter data."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ops_fixtures import (
    EMAILS,
    ops_redis_fixture,  # noqa: F401 - provides ops_redis_url
    seed,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from web_fixtures import make_app

from sender.core.config import Settings

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def test_metrics_without_login_show_wave_counts_and_no_addresses(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    client = make_app(pg_engine).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    wave = str(seeded.wave_id)
    assert values[("wave_messages", (("status", "sent"), ("wave", wave)))] == 4
    assert values[("wave_messages", (("status", "failed"), ("wave", wave)))] == 1
    assert "messages_sent_total" in body or "# TYPE messages_sent_total" in body
    assert not ADDRESS.search(body)
    assert not any(e in body for e in EMAILS)


def test_metrics_report_queue_depth_from_redis(sqlite_engine: Engine, ops_redis_url: str) -> None:
    import redis

    redis.Redis.from_url(ops_redis_url).rpush("celery", "t1", "t2")
    client = make_app(sqlite_engine, redis_url=ops_redis_url).test_client()
    body = client.get("/metrics").get_data(as_text=True)
    assert 'queue_depth{queue="celery"} 2.0' in body


def test_metrics_still_answer_when_redis_is_down(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, redis_url="redis://127.0.0.1:1/0").test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "queue_depth{" not in response.get_data(as_text=True)


def test_healthz_answers_without_login(sqlite_engine: Engine) -> None:
    response = make_app(sqlite_engine).test_client().get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_ok_with_database_and_redis(pg_engine: Engine, ops_redis_url: str) -> None:
    seed(pg_engine)
    response = make_app(pg_engine, redis_url=ops_redis_url).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"ready": True, "database": "ok", "redis": "ok"}
    assert not ADDRESS.search(response.get_data(as_text=True))


def test_readyz_without_redis_says_in_process(sqlite_engine: Engine) -> None:
    response = make_app(sqlite_engine).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json is not None and "in-process" in response.json["redis"]


def test_readyz_503_when_redis_unreachable(sqlite_engine: Engine) -> None:
    app = make_app(sqlite_engine, redis_url="redis://127.0.0.1:1/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None and response.json["ready"] is False
    assert response.json["database"] == "ok" and response.json["redis"] != "ok"
    assert app.test_client().get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_503_when_database_unreachable(sqlite_engine: Engine) -> None:
    app = make_app(
        sqlite_engine, database_url="postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2"
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json is not None and response.json["database"] != "ok"
    assert "pw" not in response.get_data(as_text=True)  # no credentials in the answer


ROOT = Path(__file__).resolve().parents[2]


def test_env_example_loads_into_settings() -> None:
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.brand_primary == "#ffff00"
    assert settings.org_name == "Amnesty International (demo section)"
    assert settings.sendgrid_api_key is None  # commented out: mail goes to the outbox


def test_compose_file_keeps_the_scaling_rules() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker", "beat", "flower"}
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    for name in ("web", "worker", "beat"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["env_file"] == [{"path": ".env", "required": False}]
    assert services["migrate"]["command"] == ["campaign", "db", "upgrade"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in ("postgres", "redis", "web", "worker", "flower"):
        assert "healthcheck" in services[name], name


def test_compose_carries_no_working_default_password() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text
    assert "POSTGRES_PASSWORD:-" not in text and "FLOWER_BASIC_AUTH:-" not in text
    services = yaml.safe_load(text)["services"]
    required = "${POSTGRES_PASSWORD:?"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(required)
    assert required in services["web"]["environment"]["DATABASE_URL"]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith(
        "${FLOWER_BASIC_AUTH:?"
    )
    # Every role runs production mode: none sets CAMPAIGN_MODE.
    assert "CAMPAIGN_MODE" not in text


def test_metrics_can_require_a_bearer_token(sqlite_engine: Engine) -> None:
    token = "m" + "7Qx2Lp9Rt4vWn8bYc3dFg6hJk1sA5zEu"
    client = make_app(sqlite_engine, metrics_token=token).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert "wave_messages" not in response.get_data(as_text=True)
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200 and "wave_messages" in allowed.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # orchestrators need no token


def test_metrics_can_be_limited_to_networks(sqlite_engine: Engine) -> None:
    client = make_app(sqlite_engine, metrics_allow="10.0.0.0/8, 2001:db8::/32").test_client()
    for address, code in (("10.1.2.3", 200), ("2001:db8::5", 200), ("203.0.113.9", 401)):
        client.environ_base["REMOTE_ADDR"] = address
        assert client.get("/metrics").status_code == code, address
    # A forged X-Forwarded-For is no way in while no proxy is trusted.
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 401


def test_a_scrape_does_not_count_messages_each_time(pg_engine: Engine) -> None:
    """Attack: scrape /metrics in a loop to run a GROUP BY over every message each time."""
    from sqlalchemy import event

    seed(pg_engine)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    client = make_app(pg_engine).test_client()
    event.listen(pg_engine, "before_cursor_execute", record)
    try:
        bodies = [client.get("/metrics").get_data(as_text=True) for _ in range(25)]
    finally:
        event.remove(pg_engine, "before_cursor_execute", record)
    counting = [s for s in statements if "messages" in s and "GROUP BY" in s.upper()]
    assert len(counting) == 1, counting
    assert all("wave_messages{" in body for body in bodies)


def test_the_cached_counts_are_refreshed_after_the_interval(pg_engine: Engine) -> None:
    from sender.web import ops

    seeded = seed(pg_engine)
    app = make_app(pg_engine, metrics_refresh_seconds=0)
    client = app.test_client()
    for _ in range(3):
        client.get("/metrics")
    with app.app_context():
        assert ops.wave_counts().loads == 3
    assert f'wave="{seeded.wave_id}"' in client.get("/metrics").get_data(as_text=True)
