"""With REDIS_URL, the same pipeline runs on real Celery workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from campaign_fixtures import add_campaign_now
from sendgrid_fixtures import API_KEY, sendgrid_process, sg  # noqa: F401 - fixtures
from sending_fixtures import add_case, add_supporters, add_wave, statuses
from sqlalchemy import Engine, func, select

from sender.core.config import Settings
from sender.core.models import Event, Message
from sender.core.vocabulary import MessageStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.waiting import wait_until
from sender.track.actions import has_pending_events
from sender.track.event_store import parse_batch, store_events
from sender.track.providers.sendgrid import PROVIDER

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def worker_env(
    pg_url: str,
    pg_engine: Engine,
    redis_url: str,
    sg: LocalSendGrid,  # noqa: F811
    tmp_path: Path,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDGRID_", "DATABASE_"))}
    env.update(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        SECRET_KEY="test-secret",
        SENDGRID_API_KEY=API_KEY,
        SENDGRID_API_HOST=sg.base_url,
        BATCH_SIZE="2",
    )
    return env


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    command = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool=solo"]
    command += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    procs = [
        subprocess.Popen(
            [*command, "-n", f"w{i}@%h", "--loglevel=WARNING"],
            cwd=ROOT,
            env=worker_env,
            stdout=(tmp_path / f"w{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def test_a_tick_enqueued_to_two_workers_sends_everyone_once(
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
    workers: list[subprocess.Popen[bytes]],
    worker_env: dict[str, str],
) -> None:
    now = datetime.now(UTC)
    settings = Settings(secret_key="test")
    campaign = add_campaign_now(pg_engine, "w4r-today", now)  # a campaign running today
    case = add_case(pg_engine, settings, campaign_id=campaign)
    add_supporters(pg_engine, [case], [f"w{i}@example.net" for i in range(7)])
    add_wave(
        pg_engine,
        settings,
        campaign_id=campaign,
        starts_at=now - timedelta(minutes=5),
        days=1,
        window=(datetime.min.time(), datetime.min.time()),
    )
    subprocess.run(
        [str(Path(sys.executable).with_name("campaign")), "tick"],
        cwd=ROOT,
        env=worker_env,
        check=True,
        timeout=60,
    )
    wait_until(lambda: sg.admin.count() >= 7, 60, "the workers' 7 emails", step=0.5)
    all_sent = {MessageStatus.SENT: 7}
    wait_until(lambda: statuses(pg_engine, Message) == all_sent, 60, "7 messages SENT", step=0.5)
    assert sg.admin.count() == 7
    assert all(p.poll() is None for p in workers)


def test_events_whose_processing_task_was_lost_are_swept_by_the_tick(
    pg_engine: Engine,
    workers: list[subprocess.Popen[bytes]],
    worker_env: dict[str, str],
) -> None:
    # Stored as the webhook stores them, but the processing task never reached Redis.
    body = json.dumps(
        [
            {"event": "delivered", "sg_event_id": f"lost-{n}", "timestamp": 1_700_000_000}
            for n in range(3)
        ]
    ).encode()
    store_events(pg_engine, PROVIDER, parse_batch(PROVIDER, body), datetime.now(UTC))
    assert has_pending_events(pg_engine)
    subprocess.run(
        [str(Path(sys.executable).with_name("campaign")), "tick"],
        cwd=ROOT,
        env=worker_env,
        check=True,
        timeout=60,
    )
    wait_until(lambda: not has_pending_events(pg_engine), 60, "the 3 events processed", step=0.5)
    with pg_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Event)) == 3
