"""Event webhook ingest over HTTP: gunicorn + throwaway PostgreSQL, signed ~768 KB batches.

    .venv/bin/python -m bench.ingest [--events N] [--workers 3] [--clients 4] [--odd-share 0.01]

Measures sustained events/s and per-batch answer times (p50/p99), re-posting
some batches to exercise dedupe, then compares the bulk store with the naive
path (ORM insert per event with SELECT-before-insert) on a sample, same run.
`--odd-share` alters that share of the events the way older or broken senders post
them (sender.devtools.local_sendgrid.legacy_events: no id, long id, string, float and
millisecond timestamps, and the malformed kinds the webhook keeps raw instead).
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import requests
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bench.bulk import start_gunicorn
from sender.core import db
from sender.core.models import Event, RejectedEvent
from sender.devtools.local_sendgrid.legacy_events import LEGACY_KINDS, MALFORMED_KINDS, alter
from sender.devtools.services import free_port, postgres_server, redis_server
from sender.track.event_store import ParsedBatch, parse_batch, store_events
from sender.track.providers.base import Provider
from sender.track.providers.sendgrid import PROVIDER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webhook_fixtures import Signer

EVENTS_PER_BATCH = 1500  # about 768 KB, SendGrid's batch size
KINDS = ["processed", "delivered", "open", "open", "click", "bounce", "deferred"]
ODD_KINDS = (*LEGACY_KINDS, *MALFORMED_KINDS)


def odd_kind(n: int, odd_every: int) -> str | None:
    """Which alteration event `n` gets, if any: one event in `odd_every`, kinds in turn."""
    if not odd_every or n % odd_every:
        return None
    return ODD_KINDS[(n // odd_every) % len(ODD_KINDS)]


def make_events(start: int, count: int, odd_every: int = 0) -> list[Any]:
    events: list[Any] = []
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
        odd = odd_kind(n, odd_every)
        events.append(event if odd is None else alter(event, odd))
    return events


def malformed_count(total: int, odd_every: int) -> int:
    return sum(odd_kind(n, odd_every) in MALFORMED_KINDS for n in range(total))


def batches(total: int, repost_every: int, odd_every: int = 0) -> Iterator[tuple[bytes, int]]:
    previous: tuple[bytes, int] | None = None
    for index, start in enumerate(range(0, total, EVENTS_PER_BATCH)):
        events = make_events(start, min(EVENTS_PER_BATCH, total - start), odd_every)
        body = orjson.dumps(events) + b"\r\n"
        yield body, len(events)
        if previous is not None and repost_every and index % repost_every == 0:
            # SendGrid delivers at least once: the same batch again (signed anew when posted).
            yield previous
        previous = (body, len(events))


def post_all(
    url: str, bodies: list[tuple[bytes, int]], signer: Signer, clients: int
) -> dict[str, Any]:
    work: queue.Queue[tuple[bytes, int] | None] = queue.Queue()
    latencies: list[float] = []
    posted = [0, 0]  # events, batches
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while (item := work.get()) is not None:
            body, count = item
            began = time.perf_counter()
            # Signed when posted: the timestamp must be fresh (10-minute replay window).
            response = session.post(url, data=body, headers=signer.headers(body), timeout=60)
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                posted[0] += count
                posted[1] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    for item in bodies:
        work.put(item)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for _ in threads:
        work.put(None)
    machine_before = _machine_busy_seconds()
    cpu_before = time.process_time()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    latencies.sort()
    return {
        "seconds": seconds,
        "client_cpu_s": time.process_time() - cpu_before,
        "machine_busy_s": _machine_busy_seconds() - machine_before,
        "events_posted": posted[0],
        "batches": posted[1],
        "events_per_s": posted[0] / seconds,
        "p50_s": statistics.median(latencies),
        "p95_s": _percentile(latencies, 0.95),
        "p99_s": _percentile(latencies, 0.99),
        "failures": failures[:3],
        "failed": len(failures),
    }


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _machine_busy_seconds() -> float:
    """CPU seconds spent by the whole machine (all processes, all cores) since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(value) for value in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def naive_store(
    engine: Engine, provider: Provider, batch: ParsedBatch, received_at: datetime
) -> int:
    """ORM object per event, SELECT before INSERT: the obvious way."""
    stored = 0
    with Session(engine) as session, session.begin():
        for item in batch.events:
            e = provider.translate(item.raw)
            if session.scalar(
                select(Event.id).where(Event.provider_event_id == e.provider_event_id)
            ):
                continue
            session.add(
                Event(
                    provider=provider.name,
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
    bodies = [body for body, _ in batches(sample, 0)]
    timings = {}
    for name, store in (("naive", naive_store), ("bulk", store_events)):
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE events"))
        began = time.perf_counter()
        for body in bodies:
            for _ in range(2):  # each batch twice: dedupe is part of the job
                store(engine, PROVIDER, parse_batch(PROVIDER, body), datetime.now(UTC))
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
    parser.add_argument("--threads", type=int, default=1, help="gunicorn gthread threads")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repost-every", type=int, default=20, help="re-post 1 batch in N")
    parser.add_argument("--naive-sample", type=int, default=3_000)
    parser.add_argument(
        "--odd-share",
        type=float,
        default=0.0,
        help="share of events posted in a legacy or malformed shape (e.g. 0.01)",
    )
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="synchronous_commit=off on the throwaway server (default: PostgreSQL's defaults)",
    )
    args = parser.parse_args()
    signer = Signer.generate()
    began = time.perf_counter()
    odd_every = round(1 / args.odd_share) if args.odd_share else 0
    bodies = list(batches(args.events, args.repost_every, odd_every))
    malformed = malformed_count(args.events, odd_every)
    print(f"generated {len(bodies):,} bodies in {time.perf_counter() - began:.0f} s (not timed)")
    with postgres_server() as pg, redis_server() as redis:
        engine = db.get_engine(pg.url)
        db.upgrade(engine)
        if args.async_commit:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ALTER SYSTEM SET synchronous_commit = off"))
                connection.execute(text("SELECT pg_reload_conf()"))
        port = free_port()
        env = {
            "DATABASE_URL": pg.url,
            # A broker, so the webhook only enqueues; no worker drains it during the run.
            "REDIS_URL": redis.url,
            "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_b64,
            "SECRET_KEY": "bench-secret",
            "LOG_JSON": "false",
        }
        load_before = os.getloadavg()
        server = start_gunicorn(env, port, args.workers, args.threads)
        server_cpu_before = _children_cpu_seconds()
        database_cpu_before = _database_cpu_seconds(pg.directory)
        try:
            result = post_all(
                f"http://127.0.0.1:{port}/webhooks/sendgrid/events", bodies, signer, args.clients
            )
            database_cpu = _database_cpu_seconds(pg.directory) - database_cpu_before
        finally:
            server.terminate()
            server.wait()
        server_cpu = _children_cpu_seconds() - server_cpu_before
        load_after = os.getloadavg()
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Event))
            distinct = connection.scalar(select(func.count(func.distinct(Event.provider_event_id))))
            kept = connection.scalar(select(func.count()).select_from(RejectedEvent))
        naive = compare_with_naive(engine, args.naive_sample)
        engine.dispose()
    reposted = result["events_posted"] - args.events
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        f"; load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)"
    )
    print(
        f"gunicorn workers={args.workers} threads={args.threads}, clients={args.clients}, "
        f"{EVENTS_PER_BATCH} events/batch (~{len(bodies[0][0]) // 1024} KB), synchronous_commit="
        f"{'off' if args.async_commit else 'on (default)'}"
    )
    print(
        f"posted {result['events_posted']:,} events in {result['batches']:,} batches "
        f"({reposted:,} re-posted duplicates) in {result['seconds']:.1f} s"
    )
    print(
        f"ingest: {result['events_per_s']:,.0f} events/s sustained; batch answer p50 "
        f"{result['p50_s'] * 1000:.0f} ms, p95 {result['p95_s'] * 1000:.0f} ms, "
        f"p99 {result['p99_s'] * 1000:.0f} ms; non-200: {result['failed']} {result['failures']}"
    )
    print(
        f"CPU over {result['seconds']:.1f} s wall: machine busy {result['machine_busy_s']:.0f} s "
        f"of {2 * result['seconds']:.0f} s available; gunicorn {server_cpu:.0f} s, "
        f"PostgreSQL {database_cpu:.0f} s, bench client {result['client_cpu_s']:.0f} s, "
        f"other processes on the machine "
        f"{result['machine_busy_s'] - server_cpu - database_cpu - result['client_cpu_s']:.0f} s"
    )
    expected = args.events - malformed
    ok = stored == expected and kept == malformed
    print(
        f"odd share {args.odd_share:g} (one event in {odd_every or 'none'}): "
        f"{malformed:,} malformed, kept raw {kept:,}"
    )
    print(
        f"stored COUNT(*) {stored:,}, distinct sg_event_id {distinct:,}, "
        f"storable events posted {expected:,}: {'OK' if ok else 'MISMATCH'}"
    )
    print(
        f"in-process store, {naive['sample_events']:,} events each posted twice: naive "
        f"{naive['naive_events_per_s']:,.0f} ev/s, bulk {naive['bulk_events_per_s']:,.0f} ev/s, "
        f"ratio {naive['ratio']:.1f}x"
    )
    if not ok or result["failed"]:
        raise SystemExit(1)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_seconds(pid: int) -> float:
    """CPU of a process plus its reaped children (PostgreSQL's ended backends)."""
    try:
        # Fields after the parenthesised command name: utime is 14th, cstime 17th overall.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def _database_cpu_seconds(directory: Path) -> float:
    """CPU of the bench's own PostgreSQL: the postmaster (first line of postmaster.pid)
    and its backends (pg_ctl detaches it from this process)."""
    postmaster = int(next(directory.rglob("postmaster.pid")).read_text().split()[0])
    return sum(_process_cpu_seconds(pid) for pid in [postmaster, *_descendants(postmaster)])


if __name__ == "__main__":
    main()
