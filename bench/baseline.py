"""The skilled baseline for bench.wave: a bare batch sender, as one would write it in an afternoon.

    celery -A bench.baseline worker      (bench.wave starts and drives these itself)

One Celery task per 1,000 recipients: it reads their rows (id range) from
PostgreSQL, fills one SendGrid substitution set per recipient (first name and
a signed unsubscribe link), and makes one mail/send request with the body
rendered once per worker process. No bookkeeping: nothing is written back,
no eligibility, windows, rate limit, retries or exactly-once. What the
project does beyond this is what its margin pays for (docs/PERFORMANCE.md).

Settings from the environment: BASELINE_DATABASE_URL, REDIS_URL,
SENDGRID_API_HOST, SENDGRID_API_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
import requests
from celery import Celery

from bench.processes import CpuMeter, redis_pid, start_workers, stop
from bench.render import cases
from sender.core.config import Settings
from sender.core.vocabulary import WaveKind
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.render.renderer import Renderer

SEND_TASK = "baseline.send"
BATCH = 1000
SECRET = b"baseline-secret"
app = Celery("baseline", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)


@lru_cache(maxsize=1)
def _body() -> dict[str, Any]:
    """The email rendered once (the project's template, so both send the same bytes)."""
    variant = Renderer(Settings(secret_key="baseline")).variant(
        WaveKind.CASE_EMAIL, cases()[0], "en"
    )
    return {
        "from": {"email": "campaigns@example.org", "name": "Write for Rights"},
        "subject": "-first_name-, one letter can change a life",
        "content": [
            {"type": "text/plain", "value": variant.text},
            {"type": "text/html", "value": variant.html},
        ],
        "categories": ["baseline"],
    }


@lru_cache(maxsize=1)
def _http() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {os.environ['SENDGRID_API_KEY']}"
    return session


@lru_cache(maxsize=1)
def _database() -> psycopg.Connection[Any]:
    url = os.environ["BASELINE_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, autocommit=True)


def _unsubscribe_link(supporter_id: int) -> str:
    signature = hmac.new(SECRET, str(supporter_id).encode(), hashlib.sha256).hexdigest()[:24]
    return f"https://act.example.org/u/{supporter_id}.{signature}"


def personalizations(rows: list[tuple[int, str, str | None]]) -> list[dict[str, Any]]:
    return [
        {
            "to": [{"email": email}],
            "substitutions": {
                "-first_name-": first_name or "friend",
                "-unsubscribe-": _unsubscribe_link(supporter_id),
            },
        }
        for supporter_id, email, first_name in rows
    ]


@app.task(name=SEND_TASK)  # type: ignore[untyped-decorator]
def send(first_id: int, last_id: int) -> int:
    """Recipients with ids in [first_id, last_id]: one request."""
    rows = _database().execute(
        "SELECT id, email, first_name FROM supporters WHERE id BETWEEN %s AND %s ORDER BY id",
        (first_id, last_id),
    )
    body = {**_body(), "personalizations": personalizations(list(rows))}
    answer = _http().post(f"{os.environ['SENDGRID_API_HOST']}/v3/mail/send", json=body, timeout=60)
    answer.raise_for_status()
    return len(body["personalizations"])


def id_ranges(first: int, last: int, size: int = BATCH) -> list[tuple[int, int]]:
    """[first, last] cut into ranges of `size` ids: one task each."""
    return [(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]


# --- driven by bench.wave ----------------------------------------------------------


@dataclass(frozen=True)
class BaselineRun:
    recipients: int
    seconds: float
    cpu: dict[str, float]  # seconds per process group, the local server apart

    @property
    def per_second(self) -> float:
        return self.recipients / self.seconds

    @property
    def cpu_per_recipient(self) -> float:
        return sum(self.cpu.values()) / self.recipients


def run_baseline(
    env: dict[str, str],
    workers: int,
    ids: tuple[int, int],
    server: LocalSendGrid,
    postgres_pid: int,
    logs: Path,
) -> BaselineRun:
    """The same recipients through the bare sender: first task sent to last recipient accepted.

    `env` reaches the workers (BASELINE_DATABASE_URL, REDIS_URL, SENDGRID_*);
    `ids` is the first and last supporter id.
    """
    server.admin.reset()
    client = Celery("baseline-client", broker=env["REDIS_URL"])
    procs = start_workers(env, workers, logs, app="bench.baseline", queue=QUEUE)
    try:
        _wait_ready(client, workers)
        meter = CpuMeter(
            {
                "workers": [p.pid for p in procs],
                "PostgreSQL": [postgres_pid],
                "Redis": [redis_pid(env["REDIS_URL"])],
            }
        )
        ranges = id_ranges(*ids)
        recipients = ids[1] - ids[0] + 1
        before = meter.read()
        started = time.perf_counter()
        for first, last in ranges:
            client.send_task(SEND_TASK, args=[first, last], queue=QUEUE)
        _wait_count(server, recipients, timeout=1800)
        seconds = time.perf_counter() - started
        after = meter.read()
    finally:
        stop(procs)
    return BaselineRun(recipients, seconds, {k: after[k] - before[k] for k in after})


QUEUE = "baseline"


def _wait_ready(client: Celery, count: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(client.control.ping(timeout=1.0) or []) >= count:
            return
    raise RuntimeError(f"{count} baseline workers did not answer within {timeout:.0f}s")


def _wait_count(server: LocalSendGrid, recipients: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while server.admin.count() < recipients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"baseline: {server.admin.count():,} of {recipients:,} accepted")
        time.sleep(0.1)
