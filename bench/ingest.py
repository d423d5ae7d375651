"""Event webhook ingest over HTTP: gunicorn + throwaway PostgreSQL, signed ~768 KB batches.

    .venv/bin/python -m bench.ingest [--events N] [--workers 3] [--clients 4]

Measures sustained events/s and per-batch answer times (p50/p99), re-posting
some batches to exercise dedupe, then compares the bulk store with the naive
path (ORM insert per event with SELECT-before-insert) on a sample, same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from sender import db
from sender.event_store import IncomingEvent, parse_batch, store_events
from sender.events import translate
from sender.models import Event
from sender.testing.services import free_port, postgres_server, redis_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webhook_fixtures import Signer

EVENTS_PER_BATCH = 1500  # about 768 KB, SendGrid's batch size
KINDS = ["processed", "delivered", "open", "open", "click", "bounce", "deferred"]


def make_events(start: int, count: int) -> list[dict[str, Any]]:
    events = []
    for n in range(start, start + count):
        kind = KINDS[n % len(KINDS)]
        event: dict[str, Any] = {
            "email": f"supporter{n // 5}@example.org",
            "timestamp": 1_606_000_000 + n // 100,
            "event": kind,
            "sg_event_id": f"ZXZ0LTEwOTk0OTE5LU{n:012d}",
            "sg_message_id": f"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-{n // 5}-5F5FC76C-9.0",
            "smtp-id": f"<LRzXl_NHStOGhQ4kofSm_A.{n // 5}@ismtpd0039p1iad1.sendgrid.net>",
            "category": ["w4r-2020", "case_email"],
            "message_id": str(n // 5 + 1),
            "wave_id": "1",
            "case_id": str(n % 10 + 1),
            "supporter_id": str(n // 5 + 1),
            "send_key": f"w1-c{n % 10 + 1}-en-{n // 5000}",
            "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            "ip": "203.0.113.7",
        }
        if kind == "open":
            event["sg_machine_open"] = n % 3 == 0
        if kind == "click":
            event["url"] = f"https://act.example.org/a/token{n}"
        if kind == "bounce":
            event.update(type="blocked" if n % 2 else "bounce", reason="550 5.1.1 unknown user")
        events.append(event)
    return events


def batches(
    total: int, signer: Signer, repost_every: int
) -> Iterator[tuple[bytes, dict[str, str], int]]:
    previous: tuple[bytes, int] | None = None
    for index, start in enumerate(range(0, total, EVENTS_PER_BATCH)):
        events = make_events(start, min(EVENTS_PER_BATCH, total - start))
        body = json.dumps(events, separators=(",", ":")).encode() + b"\r\n"
        yield body, signer.headers(body), len(events)
        if previous is not None and repost_every and index % repost_every == 0:
            # SendGrid delivers at least once: the same batch again, signed anew.
            yield previous[0], signer.headers(previous[0]), previous[1]
        previous = (body, len(events))


def start_gunicorn(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "60",
            "sender.web:create_app()",
        ],
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.post(f"http://127.0.0.1:{port}/webhooks/sendgrid/events", timeout=10)
            return process
        except requests.RequestException:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def post_all(
    url: str, total: int, signer: Signer, clients: int, repost_every: int
) -> dict[str, Any]:
    work: queue.Queue[tuple[bytes, dict[str, str], int] | None] = queue.Queue(maxsize=clients * 2)
    latencies: list[float] = []
    posted = [0, 0]  # events, batches
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while (item := work.get()) is not None:
            body, headers, count = item
            began = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=60)
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                posted[0] += count
                posted[1] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    for item in batches(total, signer, repost_every):
        work.put(item)
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    latencies.sort()
    return {
        "seconds": seconds,
        "events_posted": posted[0],
        "batches": posted[1],
        "events_per_s": posted[0] / seconds,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "failures": failures[:3],
        "failed": len(failures),
    }


def naive_store(engine: Engine, batch: list[IncomingEvent], received_at: datetime) -> int:
    """ORM object per event, SELECT before INSERT: the obvious way."""
    stored = 0
    with Session(engine) as session, session.begin():
        for item in batch:
            e = translate(item.raw)
            if session.scalar(
                select(Event.id).where(Event.provider_event_id == e.provider_event_id)
            ):
                continue
            session.add(
                Event(
                    provider_event_id=e.provider_event_id,
                    event_type=e.event_type.value,
                    raw_type=e.raw_type,
                    email_hash=e.email_hash,
                    message_id=e.message_id,
                    supporter_id=e.supporter_id,
                    case_id=e.case_id,
                    wave_id=e.wave_id,
                    batch_key=e.batch_key,
                    occurred_at=e.occurred_at,
                    received_at=received_at,
                    raw=dict(e.raw),
                )
            )
            session.flush()
            stored += 1
    return stored


def compare_with_naive(engine: Engine, sample: int) -> dict[str, float]:
    signer = Signer.generate()
    bodies = [body for body, _, _ in batches(sample, signer, 0)]
    timings = {}
    for name, store in (("naive", naive_store), ("bulk", store_events)):
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE events"))
        began = time.perf_counter()
        for body in bodies:
            for _ in range(2):  # each batch twice: dedupe is part of the job
                store(engine, parse_batch(body), datetime.now(UTC))
        timings[name] = time.perf_counter() - began
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(Event)) == sample
    return {
        "sample_events": sample,
        "naive_events_per_s": 2 * sample / timings["naive"],
        "bulk_events_per_s": 2 * sample / timings["bulk"],
        "ratio": timings["naive"] / timings["bulk"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repost-every", type=int, default=20, help="re-post 1 batch in N")
    parser.add_argument("--naive-sample", type=int, default=20_000)
    args = parser.parse_args()
    signer = Signer.generate()
    with postgres_server() as pg, redis_server() as redis:
        engine = db.get_engine(pg.url)
        db.upgrade(engine)
        port = free_port()
        env = {
            "DATABASE_URL": pg.url,
            # A broker, so the webhook only enqueues; no worker drains it during the run.
            "REDIS_URL": redis.url,
            "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_b64,
            "SECRET_KEY": "bench-secret",
            "LOG_JSON": "false",
        }
        server = start_gunicorn(env, port, args.workers)
        try:
            result = post_all(
                f"http://127.0.0.1:{port}/webhooks/sendgrid/events",
                args.events,
                signer,
                args.clients,
                args.repost_every,
            )
        finally:
            server.terminate()
            server.wait()
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Event))
        naive = compare_with_naive(engine, args.naive_sample)
        engine.dispose()
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"gunicorn workers={args.workers}, clients={args.clients}, {EVENTS_PER_BATCH} events/batch "
        f"(~{len(json.dumps(make_events(0, EVENTS_PER_BATCH))) // 1024} KB)"
    )
    print(
        f"posted {result['events_posted']:,} events in {result['batches']:,} batches "
        f"({result['events_posted'] - args.events:,} re-posted) in {result['seconds']:.1f} s"
    )
    print(
        f"ingest: {result['events_per_s']:,.0f} events/s; batch answer p50 "
        f"{result['p50_s'] * 1000:.0f} ms, p99 {result['p99_s'] * 1000:.0f} ms; "
        f"non-200: {result['failed']} {result['failures']}"
    )
    print(f"stored {stored:,} distinct events (expected {args.events:,})")
    print(
        f"in-process store, {naive['sample_events']:,} events each posted twice: naive "
        f"{naive['naive_events_per_s']:,.0f} ev/s, bulk {naive['bulk_events_per_s']:,.0f} ev/s, "
        f"ratio {naive['ratio']:.1f}x"
    )


if __name__ == "__main__":
    main()
