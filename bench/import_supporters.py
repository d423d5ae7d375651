"""Supporter import speed and memory, on PostgreSQL and SQLite, against a naive importer.

    .venv/bin/python -m bench.import_supporters [--rows 1000000] [--sample 20000]

Generates a messy CRM export, imports it into a fresh, migrated database of
each kind, each import in its own subprocess so that its peak RSS is its own,
then imports a smaller sample both ways (chunked importer and row-by-row ORM
with a commit per row) and prints the ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, select, text

from sender.audience.importer import import_supporters
from sender.core import db
from sender.core.addresses import email_hash, normalise_email
from sender.core.errors import InvalidInput
from sender.core.models import Supporter
from sender.core.speedups import prompt_switches
from sender.devtools.crm_export import write_crm_export
from sender.devtools.services import postgres_server


def naive_import(url: str, path: Path) -> int:
    """What a first attempt looks like: look each row up, add it, commit it."""
    engine = db.get_engine(url)
    imported = 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                email = normalise_email(row["Email Address"])
            except InvalidInput:
                continue
            with db.session_scope(engine) as session:
                digest = email_hash(email)
                if session.scalar(select(Supporter.id).where(Supporter.email_hash == digest)):
                    continue
                session.add(
                    Supporter(
                        email=email,
                        email_hash=digest,
                        first_name=row["First Name"] or None,
                        last_name=row["Last Name"] or None,
                        consent=row["Consent"].lower() in ("yes", "y", "true", "1"),
                    )
                )
                imported += 1
    return imported


def backend_cpu(engine: Engine) -> float:
    """CPU seconds of the PostgreSQL backend that served the import (0 for SQLite).

    The pool hands the import's connection back out, so its backend is the one
    asked here; the server runs on this machine, so /proc can be read.
    """
    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(mode: str, url: str, path: Path) -> None:
    """Runs in a subprocess: one import, then its figures as JSON on stdout."""
    engine = db.get_engine(url)
    start = time.perf_counter()
    if mode == "naive":
        imported = naive_import(url, path)
    else:
        with prompt_switches():  # as `campaign supporters import` runs it
            imported = import_supporters(engine, path).imported
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,  # this process only, not the database
        "server_cpu": backend_cpu(engine),
        "peak_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "imported": imported,
    }
    print(json.dumps(figures))


def run_worker(mode: str, url: str, path: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.import_supporters", "--worker", mode, url, str(path)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fresh_postgres(server_url: str, name: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    db.upgrade(db.get_engine(url))
    return url


def fresh_sqlite(directory: Path, name: str) -> str:
    url = f"sqlite:///{directory / name}.db"
    db.upgrade(db.get_engine(url))
    return url


def report(label: str, rows: int, figures: dict[str, float]) -> None:
    rate = rows / figures["seconds"]
    server = f" + server {figures['server_cpu']:5.1f} s" if figures.get("server_cpu") else ""
    print(
        f"{label:<28} {figures['seconds']:7.1f} s (cpu {figures['cpu']:5.1f} s{server}) "
        f"{rate:8,.0f} rows/s  "
        f"peak RSS {figures['peak_mb']:6.0f} MB  imported {int(figures['imported']):,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "URL", "PATH"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]))
        return

    print(
        f"machine: {os.cpu_count()} cpu, {platform.machine()}, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp, postgres_server() as pg:
        directory = Path(tmp)
        start = time.perf_counter()
        big = write_crm_export(directory / "big.csv", args.rows, seed=2020)
        size_mb = big.path.stat().st_size / 1e6
        print(
            f"generated {args.rows:,} rows ({size_mb:.0f} MB) "
            f"in {time.perf_counter() - start:.1f} s:"
            f" {big.valid_unique:,} valid, {big.invalid_emails:,} invalid, "
            f"{big.duplicates:,} duplicates, {big.missing_emails:,} without address"
        )
        full = {
            "postgresql": run_worker("chunked", fresh_postgres(pg.url, "full"), big.path),
            "sqlite": run_worker("chunked", fresh_sqlite(directory, "full"), big.path),
        }
        for name, figures in full.items():
            assert int(figures["imported"]) == big.valid_unique, (name, figures)
            report(f"chunked import, {name}", args.rows, figures)

        sample = write_crm_export(directory / "sample.csv", args.sample, seed=2021)
        print(
            f"\nsample of {args.sample:,} rows, chunked vs naive (lookup + add + commit per row):"
        )
        for name in ("postgresql", "sqlite"):

            def make(label: str, name: str = name) -> str:
                if name == "postgresql":
                    return fresh_postgres(pg.url, label)
                return fresh_sqlite(directory, label)

            fast = run_worker("chunked", make(f"{name}_fast"), sample.path)
            slow = run_worker("naive", make(f"{name}_naive"), sample.path)
            report(f"chunked, {name}", args.sample, fast)
            report(f"naive, {name}", args.sample, slow)
            print(f"{'':<28} chunked is {slow['seconds'] / fast['seconds']:.1f}x faster")


if __name__ == "__main__":
    main()
