"""Benchmark: one case-email wave to 1,000,000 supporters, launch to last batch accepted.

    .venv/bin/python -m bench.wave [--supporters N] [--naive-sample N] [--workers N]
                                   [--skip-sqlite] [--skip-workers] [--skip-baseline]
                                   [--probe-interval S] [--idle-seconds S]

Everything runs on this machine for real: a throwaway PostgreSQL and Redis,
two `celery -A worker worker` processes (prefork, concurrency 1) and the
local SendGrid server (`--schema-sample 16`). Supporters are spread over the
seven 2020 cases and four languages (28 variants); the wave's local window is
the whole day, so each variant is one slot and the wave needs
ceil(supporters / 28 / 1000) requests per variant (1,008 for a million).

Printed: launch to last batch accepted, the CPU seconds each process group
used meanwhile (workers, server, PostgreSQL with all its backends, Redis,
this process; read from /proc, so other jobs on the machine do not inflate
them the way they inflate wall time), mail/send requests, peak RSS of each
worker process group (VmHWM, pool children included), then the same wave on
the embedded default (SQLite, everything in this process), and the naive
path (Jinja2 render + premailer + one request per recipient) on a sample,
with the ratio per recipient: the host's speed.

Beside the PostgreSQL wave, the web app runs under gunicorn (4 workers) and
the latency probe (bench.probe, its own process) sends it a steady stream of
link clicks, one-click unsubscribes, signed event batches, inbound replies
and dashboard pages; its percentiles are printed per period: idle (before
launch), planning (launch until the first tick returns) and sending (until
the last batch is accepted). Then the same recipients go through the
skilled baseline (bench.baseline, as many workers), and the project's
messages/s and CPU per recipient are printed beside the baseline's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from celery import Celery
from sqlalchemy import Engine, func, select, text

from bench import probe
from bench.baseline import BaselineRun, run_baseline
from bench.bulk import bench_campaign, start_gunicorn, write_rows
from bench.processes import (
    CpuMeter,
    cpu_seconds,
    cpu_summary,
    group_pids,
    postmaster_pid,
    pss_group,
    redis_pid,
    start_workers,
    stop,
    used,
    vm_hwm_mb,
    wait_ready,
)
from sender.campaign.cases import load_cases
from sender.campaign.plan_file import wave_spec
from sender.campaign.waves import create_wave, launch
from sender.celery_app import SEND_BATCH_TASK, create_celery
from sender.core import db
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Batch, Case, Supporter, Wave
from sender.core.speedups import collector_paused
from sender.core.vocabulary import BatchStatus, WaveKind
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.services import free_port, postgres_server, redis_server
from sender.devtools.waiting import wait_until
from sender.render.renderer import CaseContent, RecipientData, Renderer, batch_args
from sender.send.scheduler import InlineDispatcher, tick
from sender.send.transport.sendgrid import SendGridTransport
from sender.send.wiring import default_sender

ROOT = Path(__file__).resolve().parent.parent
CASES_FILE = ROOT / "audiences" / "w4r-2020" / "cases.yaml"
API_KEY = "SG.bench-wave"
LANGUAGES = ("en", "es", "fr", "ar")
ZONES = ("Europe/London", "America/Mexico_City", "Europe/Paris", "Asia/Karachi", "UTC")
SUBJECTS = {
    "en": "{{ first_name }}, one letter can change a life",
    "es": "{{ first_name }}, una carta puede cambiar una vida",
    "fr": "{{ first_name }}, une lettre peut changer une vie",
    "ar": "{{ first_name }}، رسالة واحدة قد تغيّر حياة",
}
WAVE = "bench-wave"
# The wave's own rate: far above the send rate, so the bench measures the
# pipeline, not the token bucket (a real campaign sets what SendGrid allows).
RATE_PER_HOUR = 200_000_000
PROBE_SUPPORTERS = 2000
COLUMNS = (
    "email, email_hash, first_name, language, timezone, consent, status, created_at, updated_at"
)


@dataclass(frozen=True)
class WaveRun:
    label: str
    supporters: int
    seconds: float
    planning_seconds: float
    requests: int
    accepted_requests: int
    recipients: int


def supporter_rows(count: int) -> Iterator[tuple[object, ...]]:
    stamp = datetime(2020, 9, 1, tzinfo=UTC)
    for n in range(count):
        email = f"supporter{n}@example.org"
        yield (
            email,
            hashlib.sha256(email.encode()).hexdigest(),
            f"Name{n}",
            LANGUAGES[n % len(LANGUAGES)],
            ZONES[n % len(ZONES)],
            True,
            "subscribed",
            stamp,
            stamp,
        )


def fill(engine: Engine, count: int) -> float:
    """Cases, supporters (COPY or executemany) and one assignment each; seconds taken."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    bench_campaign(engine, now)
    load_cases(engine, CASES_FILE)
    with session_scope(engine) as session:
        cases = list(session.scalars(select(Case.id).order_by(Case.id)))
    with engine.begin() as connection:
        write_rows(connection, "supporters", COLUMNS, supporter_rows(count))
        # Case by id modulo 7 (7 and 4 are coprime: every case meets every language).
        choice = " ".join(f"WHEN {i} THEN {case}" for i, case in enumerate(cases))
        connection.execute(
            text(
                "INSERT INTO assignments (supporter_id, case_id, strategy, created_at)"
                f" SELECT id, CASE id % {len(cases)} {choice} END, 'bench', :now FROM supporters"
            ),
            {"now": now},
        )
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return time.perf_counter() - started


def declare(engine: Engine, settings: Settings) -> int:
    now = datetime.now(UTC)
    spec = wave_spec(
        name=WAVE,
        kind="case_email",
        start=now - timedelta(minutes=5),
        end=now + timedelta(days=1),
        subjects=SUBJECTS,
        window="00:00-24:00",
        rate_per_hour=RATE_PER_HOUR,
    )
    create_wave(engine, spec)
    with session_scope(engine) as session:
        return int(session.scalars(select(Wave.id).where(Wave.name == WAVE)).one())


# --- runs ---------------------------------------------------------------------------


class QueueDispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        for batch_id in batch_ids:
            self.app.send_task(SEND_BATCH_TASK, args=[batch_id])


def wait_accepted(server: LocalSendGrid, recipients: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while server.admin.count() < recipients:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {server.admin.count():,} of {recipients:,} recipients accepted "
                f"after {timeout:.0f}s"
            )
        time.sleep(0.2)


def server_figures(server: LocalSendGrid) -> tuple[int, int, int]:
    stats = server.admin.stats()
    return (
        int(stats["counters"].get("requests", 0)),
        int(stats.get("accepted_requests", 0)),
        int(stats.get("recipients", 0)),
    )


@dataclass(frozen=True)
class Probed:
    """The latency probe's figures and the baseline's run beside the project's wave."""

    latencies: list[probe.Figures]
    web_cpu: float
    baseline: BaselineRun | None
    project_cpu: dict[str, float]


def run_workers(
    args: argparse.Namespace, server: LocalSendGrid, logs: Path
) -> tuple[WaveRun, list[tuple[int, list[float], float]], Probed]:
    supporters, workers = args.supporters, args.workers
    with postgres_server() as pg, redis_server() as broker:
        engine = db.get_engine(pg.url)
        db.upgrade(engine)
        settings = Settings(database_url=pg.url, redis_url=broker.url, secret_key="bench")
        print(f"  filled PostgreSQL in {fill(engine, supporters):.1f} s", flush=True)
        wave_id = declare(engine, settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDGRID_", "TEST_"))}
        env.update(
            DATABASE_URL=pg.url,
            REDIS_URL=broker.url,
            SECRET_KEY="bench",
            SENDGRID_API_KEY=API_KEY,
            SENDGRID_API_HOST=server.base_url,
            LOG_JSON="0",
        )
        web, setup = _web_and_probe(engine, env, wave_id, args.probe_interval)
        procs = start_workers(env, workers, logs)
        try:
            celery = create_celery(settings)
            wait_ready(celery, workers)
            meter = CpuMeter(
                {
                    "workers": [p.pid for p in procs],
                    "SendGrid server": [server.process.pid],
                    "PostgreSQL": [postmaster_pid(pg.directory)],
                    "Redis": [redis_pid(broker.url)],
                }
            )
            prober, samples = probe.start(setup, logs)
            wait_until(lambda: samples.exists() and samples.stat().st_size > 0, 60, "the probe")
            idle_from = time.time()
            time.sleep(args.idle_seconds)  # the idle period: the probe alone, for a fixed span
            web_before = cpu_seconds(web.pid)
            before = meter.read()
            launched = time.time()
            started = time.perf_counter()
            launch(engine, settings, WAVE, datetime.now(UTC))
            report = tick(engine, settings, datetime.now(UTC), QueueDispatcher(celery))
            planned = time.perf_counter() - started
            planned_at = time.time()
            wait_accepted(server, supporters, timeout=1800)
            seconds = time.perf_counter() - started
            ended = time.time()
            spent = used(before, meter.read())
            web_cpu = cpu_seconds(web.pid) - web_before
            probe.stop(prober)
            print("  " + cpu_summary(spent), flush=True)
            memory = [
                (p.pid, [vm_hwm_mb(pid) for pid in group_pids(p.pid)], pss_group(p.pid))
                for p in procs
            ]
            _wait_recorded(engine, timeout=120)
        finally:
            stop(procs)
            web.terminate()
            web.wait(timeout=30)
        assert report.planned and report.planned[0].messages == supporters, report
        requests, accepted, recipients = server_figures(server)
        periods = {
            "idle": (idle_from, launched),
            "planning": (launched, planned_at),
            "sending": (planned_at, ended),
        }
        latencies = probe.figures(probe.read_samples(samples), periods)
        baseline = None
        if not args.skip_baseline:
            env["BASELINE_DATABASE_URL"] = pg.url
            ids = _bench_ids(engine)
            baseline = run_baseline(env, workers, ids, server, postmaster_pid(pg.directory), logs)
        engine.dispose()
    run = WaveRun(
        f"PostgreSQL + Redis, {workers} Celery workers",
        supporters,
        seconds,
        planned,
        requests,
        accepted,
        recipients,
    )
    project = {k: v for k, v in spent.items() if k != "SendGrid server"}
    return run, memory, Probed(latencies, web_cpu, baseline, project)


def _web_and_probe(
    engine: Engine, env: dict[str, str], wave_id: int, interval: float
) -> tuple[subprocess.Popen[bytes], probe.ProbeSetup]:
    """The web app under gunicorn (4 workers, as the issue measured), and the probe's setup."""
    private_pem, public_b64 = probe.webhook_key()
    inbound_secret = "bench-inbound-secret"
    port = free_port()
    web_env = {
        **env,
        "CAMPAIGN_MODE": "dev",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public_b64,
        "INBOUND_SECRET": inbound_secret,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with session_scope(engine) as session:
        case = session.scalars(select(Case).order_by(Case.id)).first()
        assert case is not None
        campaign_id, case_id = case.campaign_id, case.id
    people = probe.add_probe_supporters(engine, PROBE_SUPPORTERS, campaign_id, case_id)
    web = start_gunicorn(web_env, port, workers=4, threads=1)
    setup = probe.setup_for(
        f"http://127.0.0.1:{port}",
        "bench",
        people,
        case_id,
        (wave_id, "en", Settings(secret_key="bench").inbound_domain),
        (private_pem, inbound_secret),
        interval,
    )
    return web, setup


def _bench_ids(engine: Engine) -> tuple[int, int]:
    """The wave's supporters' first and last id (the probe's come after them)."""
    with session_scope(engine) as session:
        low, high = session.execute(
            select(func.min(Supporter.id), func.max(Supporter.id)).where(
                Supporter.email.like("supporter%@example.org")
            )
        ).one()
        return int(low), int(high)


def _wait_recorded(engine: Engine, timeout: float) -> None:
    """Every batch committed as sent (the server's count comes a moment earlier)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            left = session.scalar(select(func.count()).where(Batch.status != BatchStatus.SENT))
        if not left:
            return
        time.sleep(0.5)
    raise RuntimeError("batches still unsent in the database")


def run_embedded(supporters: int, server: LocalSendGrid, directory: Path) -> WaveRun:
    engine = db.get_engine(f"sqlite:///{directory / 'campaign.db'}")
    db.upgrade(engine)
    settings = Settings(
        database_url=f"sqlite:///{directory / 'campaign.db'}",
        secret_key="bench",
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=server.base_url,
    )
    print(f"  filled SQLite in {fill(engine, supporters):.1f} s", flush=True)
    declare(engine, settings)
    sender = default_sender(settings, batch_scope=collector_paused)  # as campaign run does
    meter = CpuMeter({"SendGrid server": [server.process.pid]})
    before = meter.read()
    started = time.perf_counter()
    launch(engine, settings, WAVE, datetime.now(UTC))
    # Planning and sending both happen in this tick, as `campaign tick` does.
    report = tick(engine, settings, datetime.now(UTC), InlineDispatcher(sender))
    seconds = time.perf_counter() - started
    print("  " + cpu_summary(used(before, meter.read())), flush=True)
    assert report.planned and report.planned[0].messages == supporters, report
    requests, accepted, recipients = server_figures(server)
    return WaveRun("SQLite, in-process", supporters, seconds, 0.0, requests, accepted, recipients)


def naive_per_recipient(server: LocalSendGrid, sample: int) -> tuple[float, float, float]:
    """Seconds per recipient: render + premailer each, then one request each."""
    from bench.render import cases as bench_cases
    from bench.render import naive as naive_render

    settings = Settings(secret_key="bench")
    renderer = Renderer(settings)
    case: CaseContent = bench_cases()[0]
    render_each, _cpu = naive_render(renderer, case, sample)  # (wall, CPU) per recipient
    transport = SendGridTransport(API_KEY, host=server.base_url, timeout_seconds=30)
    variant = renderer.variant(WaveKind.CASE_EMAIL, case, "en")
    started = time.perf_counter()
    for n in range(sample):
        who = RecipientData(n, f"naive{n}@example.org", f"Name{n}", None, n, case.id, 1)
        one = renderer.recipient(variant, who)
        shared = batch_args(case.id, 1, send_key=f"naive-{n}")
        transport.send(renderer.batch(variant, [one], f"naive-{n}", ("bench",), shared))
    request_each = (time.perf_counter() - started) / sample
    return render_each, request_each, render_each + request_each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--probe-interval", type=float, default=0.1, help="seconds between probes")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="probe before launch")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    variants = 7 * len(LANGUAGES)
    expected = variants * -(-args.supporters // variants // 1000)
    print(f"supporters {args.supporters:,}; 28 variants; expected requests ~{expected:,}")
    runs: list[WaveRun] = []
    probed: Probed | None = None
    with tempfile.TemporaryDirectory(prefix="bench-wave-") as folder:
        directory = Path(folder)
        with local_sendgrid(api_key=API_KEY, extra_args=["--schema-sample", "16"]) as server:
            if not args.skip_workers:
                run, memory, probed = run_workers(args, server, directory)
                runs.append(run)
                report(run)
                planning = run.planning_seconds
                print(f"  planning (launch + first tick, in this process): {planning:.1f} s")
                for pid, peaks, pss in memory:
                    print(
                        f"  worker {pid}: peak RSS (VmHWM) main + pool child "
                        + " + ".join(f"{mb:.0f}" for mb in peaks)
                        + f" MB (largest process {max(peaks):.0f} MB, sum {sum(peaks):.0f} MB;"
                        f" PSS of the group at the end {pss:.0f} MB)"
                    )
            if not args.skip_sqlite:
                server.admin.reset()
                run = run_embedded(args.supporters, server, directory)
                runs.append(run)
                report(run)
            server.admin.reset()
            render_each, request_each, naive_each = naive_per_recipient(server, args.naive_sample)
    print(
        f"naive path, sample {args.naive_sample}: render + premailer {render_each * 1e3:.1f} ms"
        f" + one request {request_each * 1e3:.1f} ms = {naive_each * 1e3:.1f} ms per recipient"
        f" ({naive_each * args.supporters / 3600:.1f} h for {args.supporters:,})"
    )
    for run in runs:
        each = run.seconds / run.supporters
        print(
            f"ratio naive / {run.label}: {naive_each / each:.0f}x per recipient "
            f"({each * 1e6:.0f} µs per recipient)"
        )
    if probed is not None and not args.skip_workers:
        print_probe(probed, runs[0])


def print_probe(probed: Probed, run: WaveRun) -> None:
    """The probe's table, then the project beside the skilled baseline (same recipients)."""
    print(f"latency probe (gunicorn 4 workers, CPU {probed.web_cpu:.1f} s during the wave):")
    for line in probe.table(probed.latencies):
        print(line)
    rate = run.supporters / run.seconds
    cpu_each = sum(probed.project_cpu.values()) / run.supporters
    print(
        f"project: {rate:,.0f} msg/s, CPU {cpu_each * 1e6:.1f} µs per recipient "
        f"(workers, PostgreSQL, Redis, planner; the local server apart)"
    )
    base = probed.baseline
    if base is None:
        return
    print(
        f"baseline (bench.baseline, {base.recipients:,} recipients): {base.per_second:,.0f}"
        f" msg/s in {base.seconds:.1f} s, CPU {base.cpu_per_recipient * 1e6:.1f} µs per"
        f" recipient ({cpu_summary(base.cpu, 'first task to last accepted')})"
    )
    print(
        f"ratios: project / baseline msg/s {rate / base.per_second:.2f}x (goal >= 2);"
        f" CPU per recipient {cpu_each / base.cpu_per_recipient:.2f}x (goal <= 1.2)"
    )


def report(run: WaveRun) -> None:
    print(
        f"{run.label}: {run.supporters:,} supporters, launch to last batch accepted "
        f"{run.seconds:.1f} s; {run.requests:,} mail/send requests "
        f"({run.accepted_requests:,} accepted), {run.recipients:,} recipients recorded",
        flush=True,
    )


if __name__ == "__main__":
    main()
