"""Benchmark: every staff page at 1,000,000 supporters, 5,000,000 events and three waves.

    .venv/bin/python -m bench.workspace_pages [--supporters N] [--events N] [--requests N]
                                              [--skip-import] [--before TREE]

A throwaway PostgreSQL and Redis, filled by bench.workspace_seed (a wave sent,
one half sent, one draft; events, replies, an import run); the web app under
gunicorn (2 sync workers) and one Celery worker; the bootstrap staff login.
The pages are found by walking the app's url_map: every GET rule under
/dashboard and /workspace, its ids filled from the seeded data (a rule with a
wave id once per wave), so a page another area adds is measured as soon as
it is merged; a rule whose arguments are unknown is listed as skipped.
Each page is asked `--requests` times, one request at a time (the first
includes compiling its templates in that worker); printed: status, p50, p95
and the maximum, against 300 ms (the launch confirmation page: 2 s).

Then the browser import (bench.browser_import): a `--import-rows` CRM export
uploaded through the real route and polled to the end, against the CLI's
import of the same file right after, into a copy of the same database made
before the pages ran; printed: both times and browser / CLI (target <= 1).

`--before TREE` serves a second copy of the app (gunicorn and Celery worker)
from another source tree, e.g. a `git worktree` of the commit before a
change, on the same database: each page is asked of both in turn, and the
browser import runs on both (each into its own copy). The host's speed (a
fixed CPU loop, bench.processes.host_gauge) and the load average are
printed at the start and the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select, text

from bench import browser_import
from bench.bulk import start_gunicorn
from bench.probe import _percentile
from bench.processes import host_gauge
from bench.staff_client import signed_in
from bench.workspace_seed import Seeded, seed
from sender.core import db
from sender.core.config import Settings
from sender.core.models import Supporter
from sender.devtools.crm_export import write_crm_export
from sender.devtools.services import free_port, postgres_server, redis_server

ROOT = Path(__file__).resolve().parent.parent
STAFF_PREFIXES = ("/dashboard", "/workspace")
TARGET = 0.3
SEEDED = "seeded.json"  # in a --keep folder: what its database holds
LAUNCH_PAGE = "waves.confirm_launch"
LAUNCH_TARGET = 2.0
PAGE_BUDGET = 30.0  # seconds per page and server: a page this slow has missed whatever follows
# Pages whose interesting work needs a query: each string is asked as well as the bare page.
QUERIES = {
    "supporters.search": ("email={email}",),
    "dashboard.report_page": ("by=day",),
}


@dataclass(frozen=True)
class Page:
    endpoint: str
    path: str
    label: str


@dataclass(frozen=True)
class Timed:
    page: Page
    server: str
    statuses: tuple[int, ...]
    seconds: tuple[float, ...]


@dataclass(frozen=True)
class Server:
    name: str
    tree: Path
    base_url: str
    processes: tuple[subprocess.Popen[bytes], ...]


def staff_pages(seeded: Seeded, database_url: str) -> tuple[list[Page], list[str]]:
    """Every staff GET rule of the app with its arguments filled; and the rules skipped."""
    from sender.web import create_app

    app = create_app(Settings(database_url=database_url, secret_key="bench"))
    values = {
        "slug": seeded.campaign,
        "campaign": seeded.campaign,
        "case": seeded.case,
        "language": "en",
        "action": "pause",
        "run_id": str(seeded.import_run),
    }
    pages: list[Page] = []
    skipped: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or ()) or not rule.rule.startswith(STAFF_PREFIXES):
            continue
        unknown = sorted(set(rule.arguments) - set(values) - {"wave_id"})
        if unknown:
            skipped.append(f"{rule.rule} (no value for {', '.join(unknown)})")
            continue
        for state, filled in _fillings(rule.arguments, seeded):
            path = rule.rule
            for name, value in {**values, **filled}.items():
                path = path.replace(f"<{name}>", value).replace(f"<int:{name}>", value)
            label = rule.endpoint + (f" [{state}]" if state else "")
            pages.append(Page(rule.endpoint, path, label))
            for query in QUERIES.get(rule.endpoint, ()):
                asked = query.format(email=seeded.supporter_email)
                pages.append(Page(rule.endpoint, f"{path}?{asked}", f"{label} ?{asked}"))
    return pages, skipped


def _fillings(arguments: set[str], seeded: Seeded) -> Iterator[tuple[str, dict[str, str]]]:
    if "wave_id" not in arguments:
        yield "", {}
        return
    for state, wave_id in seeded.waves.items():
        yield f"wave {state}", {"wave_id": str(wave_id)}


def time_page(http: requests.Session, base_url: str, page: Page, count: int) -> Timed:
    """`count` requests, or fewer once a page has taken PAGE_BUDGET seconds (it missed anyway)."""
    statuses: list[int] = []
    seconds: list[float] = []
    for _ in range(count):
        if sum(seconds) > PAGE_BUDGET:
            break
        began = time.perf_counter()
        answer = http.get(base_url + page.path, timeout=120, allow_redirects=False)
        seconds.append(time.perf_counter() - began)
        statuses.append(answer.status_code)
    return Timed(page, "", tuple(statuses), tuple(seconds))


def target_of(page: Page) -> float:
    return LAUNCH_TARGET if page.endpoint == LAUNCH_PAGE else TARGET


HEADER = f"  {'page':<62} {'server':<7} {'n':>3} status   p50 ms  p95 ms  max ms  target"


def row(t: Timed) -> str:
    ordered = sorted(t.seconds)
    p95, target = _percentile(ordered, 0.95), target_of(t.page)
    codes = ",".join(str(c) for c in sorted(set(t.statuses)))
    verdict = "ok" if p95 < target else "MISSED"
    return (
        f"  {t.page.label[:62]:<62} {t.server:<7} {len(t.seconds):>3} {codes:<7}"
        f" {_percentile(ordered, 0.5) * 1e3:>7.0f} {p95 * 1e3:>7.0f}"
        f" {ordered[-1] * 1e3:>7.0f}  p95 < {target * 1e3:.0f} ms {verdict}"
    )


def clone(server_url: str, name: str) -> str:
    """A copy of the benchmark's database (PostgreSQL copies the files: seconds, not a reseed)."""
    admin = create_engine(server_url.rsplit("/", 1)[0] + "/template1", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # A kept database still holds the copies an earlier run imported into.
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE postgres'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def app_env(
    tree: Path, database_url: str, redis_url: str, upload_dir: Path, port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDGRID_", "TEST_"))}
    env.update(
        PYTHONPATH=str(tree),
        CAMPAIGN_MODE="dev",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="bench",
        UPLOAD_DIR=str(upload_dir),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        LOG_JSON="0",
    )
    return env


def start_server(name: str, tree: Path, env: dict[str, str], port: int, logs: Path) -> Server:
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "worker", "worker", "--concurrency", "1",
            "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING", "-n", f"{name}@%h",
        ],
        cwd=tree,  # `-A worker` and `sender` are imported from the tree served
        env=env,
        stdout=(logs / f"worker-{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    web = start_gunicorn(env, port, workers=2, threads=1, cwd=tree)
    return Server(name, tree, f"http://127.0.0.1:{port}", (web, worker))


def stop_server(server: Server) -> None:
    for process in server.processes:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


def supporters_in(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.scalar(select(func.count()).select_from(Supporter)) or 0)
    engine.dispose()
    return count


def host_line(when: str) -> str:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"host {when}: gauge {host_gauge():.0f} ms (fixed CPU loop), load average {' '.join(load)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=20, help="per page and server")
    parser.add_argument(
        "--import-rows", type=int, help="rows in the uploaded CSV (default: --supporters)"
    )
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--before", type=Path, help="a source tree to serve beside this one")
    parser.add_argument(
        "--keep",
        type=Path,
        help="a folder for the seeded database: filled on first use, reused as it is afterwards",
    )
    args = parser.parse_args(argv)
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    print(f"machine: {machine}", flush=True)
    print(host_line("at the start"), flush=True)
    trees = [("this", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    with (
        tempfile.TemporaryDirectory(prefix="bench-pages-") as folder,
        postgres_server(args.keep) as pg,
        redis_server() as broker,
    ):
        directory = Path(folder)
        # The seeded run's rejected rows live beside its database, so a kept one has them.
        uploads = pg.directory / "uploads-this"
        seeded = seeded_database(pg.url, pg.directory / SEEDED, args, uploads)
        print(
            f"{args.supporters:,} supporters, {args.events:,} events, waves {seeded.waves};"
            f" seeded in {seeded.seconds:.0f} s",
            flush=True,
        )
        copies = {}
        if not args.skip_import:
            copies = {name: clone(pg.url, f"import_{name}") for name, _ in trees}
            copies["cli"] = clone(pg.url, "import_cli")
        servers = []
        for n, (name, tree) in enumerate(trees):
            port = free_port()
            redis_url = f"{broker.url.rsplit('/', 1)[0]}/{n}"
            env = app_env(tree, pg.url, redis_url, uploads, port)
            servers.append((start_server(name, tree, env, port, directory), env))
        try:
            pages, skipped = staff_pages(seeded, pg.url)
            print(f"staff pages: {len(pages)}, {args.requests} requests each, one at a time")
            print(HEADER, flush=True)
            found = measure(pages, [s for s, _ in servers], args.requests)
            for rule in skipped:
                print(f"  skipped: {rule}")
            missed = [t for t in found if _percentile(sorted(t.seconds), 0.95) >= target_of(t.page)]
            print(f"  over target: {len(missed)} of {len(found)}")
            broken = sorted({t.page.label for t in found if max(t.statuses) >= 500})
            print(host_line("after the pages"), flush=True)
        finally:
            for server, _ in servers:
                stop_server(server)
        if not args.skip_import:
            imports(args, pg.url, trees, copies, directory, broker.url)
    print(host_line("at the end"), flush=True)
    if broken:
        raise SystemExit(f"server errors on: {', '.join(broken)}")


def seeded_database(url: str, record: Path, args: argparse.Namespace, uploads: Path) -> Seeded:
    """Seed the database, or read what an earlier run seeded into the kept one."""
    engine = db.get_engine(url)
    try:
        db.upgrade(engine)  # a kept database seeded by older code gets the newer migrations
        if record.exists():
            found = Seeded(**json.loads(record.read_text()))
            if (found.supporters, found.events) != (args.supporters, args.events):
                raise SystemExit(
                    f"{record.parent} holds {found.supporters:,} supporters and"
                    f" {found.events:,} events: pass those sizes, or another --keep folder"
                )
            return found
        settings = Settings(database_url=url, secret_key="bench")
        seeded = seed(engine, settings, args.supporters, args.events, uploads)
        record.write_text(json.dumps(dataclasses.asdict(seeded)))
        return seeded
    finally:
        engine.dispose()


def measure(pages: list[Page], servers: list[Server], count: int) -> list[Timed]:
    """Each page of each server in turn, so a slow minute of the host hits both alike."""
    sessions = {s.name: signed_in(s.base_url) for s in servers}
    found = []
    for page in pages:
        for server in servers:
            timed = time_page(sessions[server.name], server.base_url, page, count)
            found.append(Timed(page, server.name, timed.statuses, timed.seconds))
            print(row(found[-1]), flush=True)  # as it comes: a long run shows its progress
    return found


def imports(
    args: argparse.Namespace,
    pg_url: str,
    trees: list[tuple[str, Path]],
    copies: dict[str, str],
    directory: Path,
    redis_base: str,
) -> None:
    rows = args.import_rows or args.supporters
    began = time.perf_counter()
    export = write_crm_export(directory / "crm-export.csv", rows, seed=2026)
    size = export.path.stat().st_size / 1e6
    print(
        f"CRM export: {rows:,} rows, {size:.0f} MB, {export.valid_unique:,} valid and unique"
        f" (written in {time.perf_counter() - began:.0f} s)",
        flush=True,
    )
    timeout = 60.0 + rows / 1000
    results: dict[str, browser_import.Imported] = {}
    for n, (name, tree) in enumerate(trees):
        port = free_port()
        env = app_env(
            tree,
            copies[name],
            f"{redis_base.rsplit('/', 1)[0]}/{n}",
            directory / f"up-{name}",
            port,
        )
        server = start_server(f"import-{name}", tree, env, port, directory)
        try:
            http = signed_in(server.base_url)
            results[f"browser, {name}"] = browser_import.through_browser(
                http, server.base_url, export.path, timeout
            )
        finally:
            stop_server(server)
        print(f"  browser import ({name}): {results[f'browser, {name}'].seconds:.1f} s", flush=True)
    cli_env = app_env(ROOT, copies["cli"], "", directory / "up-cli", 0)
    cli_env.pop("REDIS_URL")
    results["CLI, this"] = browser_import.through_cli(
        cli_env, export.path, directory / "cli-rejected.csv", timeout
    )
    cli = results["CLI, this"]
    print(f"import of {rows:,} rows into {args.supporters:,} supporters:")
    for label, result in results.items():
        counted = supporters_in(copies["cli" if label.startswith("CLI") else label.split(", ")[1]])
        print(
            f"  {label:<16} {result.seconds:7.1f} s  {result.state:<6}"
            f"  supporters after {counted:,}  ratio to the CLI {result.seconds / cli.seconds:.2f}"
        )


if __name__ == "__main__":
    main()
