"""Shared fixtures: real PostgreSQL and Redis, started here when none is configured.

Set TEST_DATABASE_URL / TEST_REDIS_URL to use existing servers; otherwise the
session starts throwaway ones (see sender.devtools.services).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from sender.core import db
from sender.core.config import reset_settings
from sender.core.models import Base
from sender.devtools.services import postgres_server, redis_server

# The suite runs in dev mode (sender.core.runmode): its settings use throwaway
# secrets and plain-http addresses. Before any Settings is read, and inherited
# by every worker, server and CLI process a test starts. Tests of production
# mode pass campaign_mode="production" themselves.
os.environ["CAMPAIGN_MODE"] = "dev"

# The machine is shared and its speed swings 2-3x for minutes: Hypothesis's
# per-example deadline (200 ms) would fail correct code on a slow minute.
settings.register_profile("shared-host", deadline=None)
settings.load_profile("shared-host")

_services = ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller started the servers and passed their URLs down
    if not os.environ.get("TEST_DATABASE_URL"):
        os.environ["TEST_DATABASE_URL"] = _services.enter_context(postgres_server()).url
    if not os.environ.get("TEST_REDIS_URL"):
        os.environ["TEST_REDIS_URL"] = _services.enter_context(redis_server()).url


def pytest_unconfigure(config: pytest.Config) -> None:
    _services.close()


def _worker_database(base_url: str) -> str:
    """One database per xdist worker, created on first use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"campaign_test_{worker}"
    admin = create_engine(db.normalise_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return db.normalise_url(base_url).rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = _worker_database(os.environ["TEST_DATABASE_URL"])
    engine = db.get_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(engine)
    return url


def _truncate(engine: Engine) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # The audit log refuses TRUNCATE by trigger; only a test's clean slate lifts it.
        connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL database, emptied before each test."""
    engine = db.get_engine(pg_url)
    _truncate(engine)
    yield engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = db.get_engine(f"sqlite:///{tmp_path / 'campaign.db'}")
    db.upgrade(engine)
    return engine


@pytest.fixture(params=["postgresql", "sqlite"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Runs a test on both databases the product supports."""
    name = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


def _worker_redis(base_url: str) -> str:
    """One Redis database per xdist worker (gw0 → 1, gw1 → 2, ...), so flushes don't collide."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw-1")
    index = int(worker.removeprefix("gw")) + 2 if worker.startswith("gw") else 0
    return base_url.rsplit("/", 1)[0] + f"/{index % 16}"


@pytest.fixture
def redis_url() -> str:
    url = _worker_redis(os.environ["TEST_REDIS_URL"])
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean configuration: embedded defaults in tmp_path, nothing from the caller."""
    for key in list(os.environ):
        if key.startswith(("DATABASE_URL", "REDIS_URL", "SENDGRID_", "SECRET_KEY")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    reset_settings()
    yield monkeypatch
    reset_settings()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
