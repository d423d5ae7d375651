"""Benchmark: assign 1,000,000 supporters on PostgreSQL and SQLite.

    .venv/bin/python -m bench.assign_supporters [--supporters N] [--sample N]

Fills a throwaway database with supporters written directly in bulk, loads the
2020 cases, then times `sender.audience.assignment.assign` (Python balancing over streamed
tuples, bulk write). For comparison it times a naive ORM approach (load
Supporter objects, check each one for an existing assignment, add one
Assignment object per row) on a sample, and the fast path on the same sample,
and prints the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bench.bulk import bench_campaign, write_rows
from sender.audience.assignment import Strategy, assign
from sender.campaign.cases import load_cases
from sender.core import db
from sender.core.models import Assignment, Case, Supporter
from sender.devtools.services import postgres_server

SERVER_PID: int | None = None  # the PostgreSQL postmaster, for CPU accounting
CASES_FILE = Path(__file__).parent.parent / "audiences" / "w4r-2020" / "cases.yaml"
COUNTRIES = ["US", "GB", "FR", "ES", "MX", "CA", "DE", "SA", "PK", "TR", "BI", "CO", "AR"]
SLUGS = ["nassima-al-sada", "jani-silva", "teyonna-lofton", None, None, None, None]
COLUMNS = (
    "email, email_hash, country, language, timezone, consent, status, case_preference, "
    "created_at, updated_at"
)


def supporter_rows(count: int, seed: int = 1) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)
    stamp = datetime(2020, 9, 1, tzinfo=UTC)
    for n in range(count):
        email = f"supporter{n}@example.org"
        yield (
            email,
            hashlib.sha256(email.encode()).hexdigest(),
            rng.choice(COUNTRIES),
            "en",
            "UTC",
            True,
            "subscribed",
            rng.choice(SLUGS),
            stamp,
            stamp,
        )


def fill(engine: Engine, count: int) -> float:
    """Insert `count` supporters in bulk (COPY / executemany); seconds taken."""
    started = time.perf_counter()
    with engine.begin() as connection:
        write_rows(connection, "supporters", COLUMNS, supporter_rows(count))
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("ANALYZE supporters"))
    return time.perf_counter() - started


def naive_assign(engine: Engine) -> int:
    """What one writes first with the ORM: one object and one query per supporter."""
    with Session(engine) as session:
        cases = list(session.scalars(select(Case).where(Case.status == "active")))
        load = {case.id: 0 for case in cases}
        made = 0
        for supporter in session.scalars(select(Supporter).order_by(Supporter.id)):
            existing = session.scalar(
                select(Assignment).where(Assignment.supporter_id == supporter.id)
            )
            if existing is not None:
                continue
            allowed = [c for c in cases if supporter.country not in c.excluded_countries]
            if not allowed:
                continue
            case = min(allowed, key=lambda c: load[c.id])
            load[case.id] += 1
            session.add(Assignment(supporter_id=supporter.id, case_id=case.id, strategy="naive"))
            made += 1
        session.commit()
    return made


def prepare(engine: Engine, supporters: int) -> float:
    db.upgrade(engine)
    bench_campaign(engine, datetime.now(UTC))
    load_cases(engine, CASES_FILE)
    return fill(engine, supporters)


def server_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server's processes (0 without one)."""
    if SERVER_PID is None:
        return 0.0
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == SERVER_PID or int(fields[1]) == SERVER_PID:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / tick


def timed(label: str, action: Callable[[], object]) -> float:
    """Wall seconds; also prints CPU seconds, which the shared machine's load does not inflate."""
    started, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
    result = action()
    seconds = time.perf_counter() - started
    cpu_used = time.process_time() - cpu + server_cpu() - server
    print(f"  {label:<44} {seconds:8.2f} s wall {cpu_used:8.2f} s CPU   {result}")
    return seconds


def bench_engine(
    name: str, make_engine: Callable[[str], Engine], supporters: int, sample: int
) -> None:
    print(f"\n== {name} ==")
    big = make_engine("big")
    db.upgrade(big)
    bench_campaign(big, datetime.now(UTC))
    load_cases(big, CASES_FILE)
    timed(f"fill {supporters:,} supporters (bulk)", lambda: fill(big, supporters))
    runs = [(Strategy.BALANCED, False), (Strategy.COUNTRY, True), (Strategy.PREFERENCE, True)]
    for strategy, reassign in runs:
        label = f"assign {supporters:,} ({strategy}{', reassign' if reassign else ''})"
        seconds = timed(
            label,
            lambda s=strategy, r=reassign: _summary(assign(big, s, seed=1, reassign=r)),
        )
        print(f"  {'':<44} {supporters / seconds:10,.0f} supporters/s wall")
    with big.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Assignment))
    print(f"  assignments in database: {total:,}")

    small = make_engine("sample")
    prepare(small, sample)
    naive = timed(f"naive ORM per row, {sample:,} supporters", lambda: naive_assign(small))
    with small.begin() as connection:
        connection.execute(Assignment.__table__.delete())
    fast = timed(
        f"assign(), same {sample:,} supporters",
        lambda: _summary(assign(small, Strategy.BALANCED)),
    )
    print(f"  ratio naive/fast on the sample: {naive / fast:.1f}x")
    print(f"  naive extrapolated to {supporters:,}: {naive * supporters / sample:,.0f} s")
    big.dispose()
    small.dispose()


def _summary(report: object) -> str:
    created = getattr(report, "assignments_created", report)
    unassignable = getattr(report, "unassignable", 0)
    return f"created={created} unassignable={unassignable}"


def main() -> None:
    global SERVER_PID
    # Exit through the context managers, so an interrupted run stops its server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    print(
        f"machine: nproc={os.cpu_count()} {platform.machine()} python {platform.python_version()}"
    )
    if args.only != "sqlite":
        with postgres_server() as server:
            pid_file = server.directory / "data" / "postmaster.pid"
            SERVER_PID = int(pid_file.read_text().split()[0])
            base = server.url.rsplit("/", 1)[0]
            admin = db.get_engine(server.url).execution_options(isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                for name in ("big", "sample"):
                    connection.execute(text(f'CREATE DATABASE "{name}"'))

            def pg_engine(name: str) -> Engine:
                return db.get_engine(f"{base}/{name}")

            bench_engine("PostgreSQL", pg_engine, args.supporters, args.sample)
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory(prefix="bench-assign-") as directory:

            def sqlite_engine(name: str) -> Engine:
                return db.get_engine(f"sqlite:///{Path(directory) / name}.db")

            SERVER_PID = None
            bench_engine("SQLite", sqlite_engine, args.supporters, args.sample)


if __name__ == "__main__":
    main()
