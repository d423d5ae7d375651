"""`campaign status`, once and watching, with and without Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from ops_fixtures import (
    ops_redis_fixture,  # noqa: F401 - provides ops_redis_url
    seed,
)
from typer.testing import CliRunner

from sender.cli import app
from sender.cli.common import console
from sender.core.config import reset_settings
from sender.core.db import get_engine, upgrade
from sender.track.event_store import parse_batch, store_events
from sender.track.providers.sendgrid import PROVIDER


@pytest.fixture
def seeded_db(env: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'status.db'}"
    env.setenv("DATABASE_URL", url)
    # The shared console measured the terminal at import; give the table room.
    env.setattr(console, "width", 160)
    reset_settings()
    engine = get_engine(url)
    upgrade(engine)
    seed(engine)
    return url


def test_status_shows_waves_failures_and_in_process(runner: CliRunner, seeded_db: str) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "w4r-2020/case-email" in result.output
    assert "sending" in result.output
    assert "failed batch" in result.output and "400 Bad Request" in result.output
    assert "in-process" in result.output
    assert "reminder" not in result.output  # a draft wave is not in flight


def test_status_with_redis_reads_queues_and_rate_buckets(
    runner: CliRunner, seeded_db: str, ops_redis_url: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("REDIS_URL", ops_redis_url)
    reset_settings()
    client = redis.Redis.from_url(ops_redis_url)
    client.rpush("celery", "a", "b", "c")
    client.hset("campaign:rate:campaign:1", mapping={"tokens": 750, "ts": 1.0})
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "Queues: celery 3" in result.output
    assert "Workers: none answering" in result.output
    assert "campaign:1 750" in result.output


def test_status_with_unreachable_redis_says_so(
    runner: CliRunner, seeded_db: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings()
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0
    assert "Redis unreachable" in result.output
    assert "w4r-2020/case-email" in result.output  # the database view still shows


def test_watch_refreshes_then_stops(runner: CliRunner, seeded_db: str) -> None:
    result = runner.invoke(app, ["status", "--watch", "--interval", "0.2", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "w4r-2020/case-email" in result.output


def test_empty_database_says_nothing_in_flight(runner: CliRunner, env: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "No wave is scheduled, sending or paused." in result.output


def test_bad_interval_is_refused(runner: CliRunner, seeded_db: str) -> None:
    result = runner.invoke(app, ["status", "--watch", "--interval", "0"])
    assert result.exit_code == 2


def test_status_shows_webhook_events_kept_raw(runner: CliRunner, seeded_db: str) -> None:
    from events_fixtures import keep_odd_events

    keep_odd_events(get_engine(seeded_db))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "2 webhook events could not be stored" in result.output
    assert "event 2: missing or invalid timestamp" in result.output


def test_status_shows_refused_webhook_events_apart(
    runner: CliRunner, seeded_db: str, env: pytest.MonkeyPatch
) -> None:
    from events_fixtures import keep_odd_events, refuse_forged_events

    keep_odd_events(get_engine(seeded_db))
    reasons = refuse_forged_events(get_engine(seeded_db))
    env.setattr(console, "width", 250)  # the console measured the terminal at import
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "2 webhook events refused: not bound to a message we sent" in result.output
    assert "2 webhook events could not be stored" in result.output
    assert all(reason in result.output for reason in reasons)


def test_status_counts_webhook_events_still_waiting(runner: CliRunner, seeded_db: str) -> None:
    engine = get_engine(seeded_db)
    assert "waiting to be processed" not in runner.invoke(app, ["status"]).output
    body = b'[{"event":"delivered","sg_event_id":"w1","timestamp":1700000000},'
    body += b'{"event":"open","sg_event_id":"w2","timestamp":1700000001}]'
    received = datetime.now(UTC) - timedelta(minutes=5)  # stored, its task lost
    store_events(engine, PROVIDER, parse_batch(PROVIDER, body), received)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "2 webhook events waiting to be processed (oldest received 3" in result.output
