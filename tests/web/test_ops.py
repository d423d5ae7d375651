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
