"""The fault tests' world: PostgreSQL, Redis, the local SendGrid, the web app, real workers.

Everything here runs for real: Celery workers are `celery -A worker worker`
subprocesses (killed with SIGKILL, whole process group, children included),
the local SendGrid is its own process, and its signed events reach the real
web app over HTTP. Only the tick runs in the test process, so each test can
give it a short reconciliation grace period and stuck-queue timeout.

The verdict is always the local server's: which addresses it recorded for a
wave, how often, against the supporters who should have been mailed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from campaign_fixtures import campaign_yaml
from celery import Celery
from sqlalchemy import Engine, func, select, text

from sender.campaign.folder import read_folder
from sender.campaign.plan_file import wave_spec
from sender.campaign.registry import create_from_folder
from sender.campaign.waves import create_wave, launch
from sender.celery_app import SEND_BATCH_TASK, create_celery
from sender.core.config import Settings, reset_settings
from sender.core.db import session_scope
from sender.core.models import Batch, Case, Message, Wave
from sender.core.vocabulary import BatchStatus, WaveStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.services import free_port, start_redis
from sender.devtools.waiting import wait_until
from sender.devtools.webapp import serving
from sender.ops import counts
from sender.send.pipeline import SendPolicy
from sender.send.scheduler import TickReport, tick
from sender.web import create_app

ROOT = Path(__file__).resolve().parents[2]
CASES_FILE = ROOT / "audiences" / "w4r-2020" / "cases.yaml"
API_KEY = "SG.fault-tests"
SECRET = "fault-test-secret"
WAVE = "faults-wave"
SUBJECTS = {
    "en": "{{ first_name }}, one letter can change a life",
    "fr": "{{ first_name }}, une lettre peut changer une vie",
    "es": "{{ first_name }}, una carta puede cambiar una vida",
    "ar": "{{ first_name }}، رسالة واحدة قد تغيّر حياة",
}
# Long enough that a request a live worker has in flight (retry back-off
# included) is never reconciled under it; short enough for a test.
LIVE_GRACE = timedelta(seconds=15)


# --- workers ------------------------------------------------------------------


@dataclass
class Worker:
    """One `celery -A worker worker` process group (the main process and its pool child)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL to the whole group: the pool child dies with its parent, mid-task."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(env: dict[str, str], name: str, directory: Path) -> Worker:
    log = directory / f"{name}.log"
    command = [
        sys.executable, "-m", "celery", "-A", "worker", "worker",
        "--concurrency", "1", "--pool", "prefork", "-Q", "celery",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{name}@%h", "--loglevel", "INFO",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so SIGKILL reaches the pool child
    )
    return Worker(name, process, log)


def wait_ready(worker: Worker, timeout: float = 40.0) -> None:
    """Celery logs `ready.` once it consumes from the queue."""

    def ready() -> bool:
        if not worker.alive():
            raise AssertionError(f"worker {worker.name} exited:\n{worker.output()[-3000:]}")
        return " ready." in worker.output()

    wait_until(ready, timeout, f"worker {worker.name} to be ready")


# --- the world ------------------------------------------------------------------


@dataclass
class World:
    engine: Engine
    database_url: str
    redis_url: str
    sg: LocalSendGrid
    web_url: str
    directory: Path
    settings: Settings
    workers: list[Worker] = field(default_factory=list)
    _simulated: int = 0  # recipients the server already posted events for

    def worker_env(self, **overrides: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SENDGRID_", "DATABASE_", "REDIS_", "TEST_"))
        }
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SECRET_KEY=SECRET,
            SENDGRID_API_KEY=API_KEY,
            SENDGRID_API_HOST=self.sg.base_url,
            SENDGRID_TIMEOUT_SECONDS="4",
            BATCH_SIZE=str(self.settings.batch_size),
            PUBLIC_BASE_URL=self.web_url,
            LOG_JSON="0",
        )
        env.update(overrides)
        return env

    def start_worker(self, ready: bool = True, **overrides: str) -> Worker:
        worker = start_worker(self.worker_env(**overrides), f"w{len(self.workers)}", self.directory)
        self.workers.append(worker)
        if ready:
            wait_ready(worker)
        return worker

    def start_workers(self, count: int) -> list[Worker]:
        """Start several at once: their start-up overlaps."""
        started = [self.start_worker(ready=False) for _ in range(count)]
        for worker in started:
            wait_ready(worker)
        return started

    def celery(self) -> Celery:
        return create_celery(self.settings)

    def tick(
        self,
        now: datetime | None = None,
        grace: timedelta = LIVE_GRACE,
        queued_timeout: timedelta = timedelta(seconds=15),
    ) -> TickReport:
        """One scheduler tick here, its batches enqueued to the real workers."""
        policy = SendPolicy(reconcile_grace=grace, queued_timeout=queued_timeout)
        dispatcher = QueueDispatcher(self.celery())
        return tick(self.engine, self.settings, now or datetime.now(UTC), dispatcher, policy)

    def post_events(self) -> int:
        """`processed` (and `delivered`) events for mail recorded since the last call."""
        recorded = int(self.sg.admin.stats().get("recipients", 0))
        if recorded <= self._simulated:
            return 0
        answer = self.sg.admin.simulate(
            after_id=self._simulated,
            events_url=f"{self.web_url}/webhooks/sendgrid/events",
            seed=1,
        )
        assert all(status == 200 for status in answer["statuses"]), answer
        self._simulated = recorded
        return int(answer["events"])

    def drive(
        self,
        wave_id: int,
        timeout: float = 45.0,
        grace: timedelta = LIVE_GRACE,
        ahead: timedelta = timedelta(0),
    ) -> None:
        """Tick (events first) until the wave is done.

        `ahead` ticks that far in the future so a batch's `retry_at` passes
        sooner; the grace period grows with it, so it still protects requests
        a live worker has in flight.
        """

        def done() -> bool:
            self.post_events()
            self.tick(datetime.now(UTC) + ahead, grace=grace + ahead)
            return wave_of(self.engine, wave_id).status == WaveStatus.DONE

        wait_until(done, timeout, "the wave to finish", step=1.0)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.kill()


@dataclass(frozen=True)
class QueueDispatcher:
    """What CeleryDispatcher does, on an app built for this world's Redis."""

    app: Celery

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        for batch_id in batch_ids:
            self.app.send_task(SEND_BATCH_TASK, args=[batch_id])


def web_app(settings: Settings) -> AbstractContextManager[str]:
    """The real Flask app on localhost, in a thread: the server posts its events here."""
    return serving(create_app(settings))


# --- audience and wave ----------------------------------------------------------


def open_campaign(engine: Engine, settings: Settings) -> list[int]:
    """A campaign running today with the seven 2020 cases, made from a campaign folder."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "campaign.yaml").write_text(
            campaign_yaml("w4r-faults", now, days_after=3, languages="[en, es, fr, ar]")
        )
        shutil.copy(CASES_FILE, Path(folder) / "cases.yaml")
        create_from_folder(engine, read_folder(Path(folder)))
    with session_scope(engine) as session:
        return list(session.scalars(select(Case.id).order_by(Case.id)))


_SUPPORTERS_SQL = """
INSERT INTO supporters (email, email_hash, first_name, language, timezone, consent, status,
                        created_at, updated_at)
SELECT e, encode(sha256(convert_to(e, 'UTF8')), 'hex'), 'Fan' || n,
       langs[1 + n % cardinality(langs)], 'UTC', true, 'subscribed', now(), now()
FROM generate_series(1, :count) AS n,
     LATERAL (SELECT 'fan' || n || '@example.net') AS x(e),
     LATERAL (SELECT CAST(:langs AS text[])) AS l(langs)
"""
_ASSIGNMENTS_SQL = """
INSERT INTO assignments (supporter_id, case_id, strategy, created_at)
SELECT id, cases[1 + id % cardinality(cases)], 'test', now()
FROM supporters, LATERAL (SELECT CAST(:cases AS integer[])) AS c(cases)
"""


def add_audience(
    engine: Engine, case_ids: Sequence[int], count: int, languages: Sequence[str] = ("en", "fr")
) -> list[str]:
    """`count` consenting supporters, spread over the cases and languages (bulk SQL)."""
    with engine.begin() as connection:
        connection.execute(text(_SUPPORTERS_SQL), {"count": count, "langs": list(languages)})
        connection.execute(text(_ASSIGNMENTS_SQL), {"cases": list(case_ids)})
    return [f"fan{n}@example.net" for n in range(1, count + 1)]


def declare_wave(
    engine: Engine, settings: Settings, languages: Sequence[str] = ("en", "fr"), name: str = WAVE
) -> int:
    """A case email starting a few minutes ago, the whole day as its local window."""
    now = datetime.now(UTC)
    spec = wave_spec(
        name=name,
        kind="case_email",
        start=now - timedelta(minutes=5),
        end=now + timedelta(days=1),
        subjects={lang: SUBJECTS[lang] for lang in languages},
        window="00:00-24:00",
    )
    create_wave(engine, spec)
    with session_scope(engine) as session:
        return int(session.scalars(select(Wave.id).where(Wave.name == name)).one())


def launch_wave(engine: Engine, settings: Settings, name: str = WAVE) -> str:
    return launch(engine, settings, name, datetime.now(UTC))


def wave_of(engine: Engine, wave_id: int) -> Wave:
    with session_scope(engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        session.expunge(wave)
        return wave


def batch_counts(engine: Engine, wave_id: int) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Batch.status, func.count())
            .where(Batch.wave_id == wave_id)
            .group_by(Batch.status)
        )
        return {str(status): int(n) for status, n in rows}


def message_counts(engine: Engine, wave_id: int) -> dict[str, int]:
    """The wave's messages by status; the batches' tallies must say the same after a fault."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Message.status, func.count())
            .where(Message.wave_id == wave_id)
            .group_by(Message.status)
        )
        found = {str(status): int(n) for status, n in rows}
        tallied = counts.message_counts(session, [wave_id]).get(wave_id)
    assert (dict(tallied.by_status) if tallied else {}) == found
    return found


def batch_errors(engine: Engine, wave_id: int, status: BatchStatus) -> list[str]:
    with session_scope(engine) as session:
        return [
            str(e)
            for e in session.scalars(
                select(Batch.error).where(Batch.wave_id == wave_id, Batch.status == status)
            )
        ]


# --- the verdict ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What the local server recorded for one wave, against who should have had it."""

    counts: Counter[str]
    expected: frozenset[str]

    @property
    def duplicates(self) -> dict[str, int]:
        return {email: n for email, n in self.counts.items() if n > 1}

    @property
    def missing(self) -> set[str]:
        return set(self.expected - self.counts.keys())

    @property
    def unexpected(self) -> set[str]:
        return set(self.counts.keys() - self.expected)

    def assert_exactly_once(self) -> None:
        assert self.duplicates == {}, f"{len(self.duplicates)} duplicates"
        assert self.missing == set(), f"{len(self.missing)} missing"
        assert self.unexpected == set(), f"{len(self.unexpected)} not eligible yet mailed"


def recorded(sg: LocalSendGrid) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while page := sg.admin.recipients(limit=1000, after_id=rows[-1]["id"] if rows else 0):
        rows.extend(page)
    return rows


def delivery(sg: LocalSendGrid, wave_id: int, expected: Sequence[str]) -> Delivery:
    counts = Counter(
        str(row["email"]).lower()
        for row in recorded(sg)
        if str((row.get("custom_args") or {}).get("wave_id")) == str(wave_id)
    )
    return Delivery(counts, frozenset(expected))


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_sendgrid() -> Iterator[LocalSendGrid]:
    with local_sendgrid(api_key=API_KEY) as sg:
        yield sg


def build_world(
    engine: Engine, database_url: str, redis_url: str, sg: LocalSendGrid, directory: Path
) -> Iterator[World]:
    sg.admin.reset()
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        secret_key=SECRET,
        batch_size=100,
        sendgrid_webhook_public_key=sg.public_key,
        public_base_url="http://127.0.0.1",
    )
    with web_app(settings) as web_url:
        world = World(engine, database_url, redis_url, sg, web_url, directory, settings)
        try:
            yield world
        finally:
            world.stop_workers()


@dataclass
class RestartableRedis:
    """A throwaway Redis without persistence that a test may kill and start again."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: everything queued in it is gone
        self.process.wait(timeout=10)

    def start(self) -> None:
        self.process = start_redis(self.port, self.directory)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    port = free_port()
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RestartableRedis(port, directory, start_redis(port, directory))
    yield server
    server.kill()


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("DATABASE_URL", "REDIS_URL", "SENDGRID_")):
            monkeypatch.delenv(key, raising=False)
    reset_settings()


@pytest.fixture
def world_own_redis(
    pg_url: str,
    pg_engine: Engine,
    own_redis: RestartableRedis,
    fault_sendgrid: LocalSendGrid,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    """The world on a Redis of its own, for the test that restarts it."""
    _clean_env(monkeypatch)
    yield from build_world(pg_engine, pg_url, own_redis.url, fault_sendgrid, tmp_path)
    reset_settings()


@pytest.fixture
def world(
    pg_url: str,
    pg_engine: Engine,
    redis_url: str,
    fault_sendgrid: LocalSendGrid,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    _clean_env(monkeypatch)
    yield from build_world(pg_engine, pg_url, redis_url, fault_sendgrid, tmp_path)
    reset_settings()
