"""Bulk rows for the benchmarks' set-up: COPY on PostgreSQL, executemany on SQLite.

Set-up is not what the benchmarks time, but at a million rows the ORM would
take longer than the thing measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import Connection, Engine

from sender.campaign.folder import parse_campaign
from sender.campaign.registry import store_campaign
from sender.core.db import session_scope


def write_rows(
    connection: Connection, table: str, columns: str, rows: Iterable[tuple[object, ...]]
) -> None:
    """Insert `rows` (values in the order of `columns`) inside the caller's transaction."""
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.cursor()
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # sqlite3 stores datetimes as the ISO text the models read back.
    marks = ", ".join("?" * len(columns.split(",")))
    plain = [
        tuple(value.isoformat() if isinstance(value, datetime) else value for value in row)
        for row in rows
    ]
    connection.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", plain)


def bench_campaign(engine: Engine, start: datetime, days: int = 4, slug: str = "w4r-bench") -> int:
    """A campaign whose window opens a day before `start`, made as `campaigns create` makes it."""
    begin = (start - timedelta(days=1)).isoformat()
    end = (start + timedelta(days=days)).isoformat()
    text = (
        f"slug: {slug}\nname: {slug}\n"
        f"window: {{start: '{begin}', end: '{end}', timezone: UTC}}\n"
        "sender: {from_email: campaigns@example.org, from_name: Write for Rights}\n"
        "languages: [en, es, fr, ar]\n"
    )
    with session_scope(engine) as session:
        campaign, _ = store_campaign(session, parse_campaign(text, f"{slug}/campaign.yaml"))
        return campaign.id


def start_gunicorn(
    env: dict[str, str], port: int, workers: int, threads: int, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """The web app under gunicorn; `cwd` is where it imports `sender` from first (its chdir).

    With the project's gunicorn settings, as in production, where the tree has them
    (an older tree served beside this one may not).
    """
    tree = cwd or Path(__file__).resolve().parent.parent
    settings = ["-c", "python:sender.web.gunicorn_conf"]
    has_settings = (tree / "sender" / "web" / "gunicorn_conf.py").exists()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            *(settings if has_settings else []),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            # Import the app once before forking: workers serve at once, sharing memory.
            "--preload",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "60",
            "sender.web:create_app()",
        ],
        env={**os.environ, **env},
        cwd=cwd,
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
