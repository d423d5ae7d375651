"""Benchmark: deciding a subject test and planning its remainder, against a plain wave.

    .venv/bin/python -m bench.subject_test [--supporters N] [--share F]

On a throwaway PostgreSQL filled as `bench.plan_wave` fills it (40 time zones,
six languages, two cases), a wave with variants A and B plans its test share
(`--share`, 10 % by default), which is then marked sent, with more people's
clicks on B than on A. Timed: the decision (`sender.send.subject_tests.decide`)
and the remainder's planning (`plan_remainder`), together. Then the schema is
rebuilt, filled again, and a plain wave of the same audience is planned
(`plan_wave`). Printed: each time and the ratio (decide + remainder) / plain,
which issue 17 wants at most 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, select, text

from bench.plan_wave import SETTINGS, START, fill, timed_plan
from sender.core import db
from sender.core.models import Campaign, Wave
from sender.core.subject_test import SubjectTestSpec, SubjectVariant
from sender.core.vocabulary import SubjectMetric, WaveStatus
from sender.devtools.services import postgres_server
from sender.report import variant_counts
from sender.report.totals import catch_up
from sender.report.variants import variant_rows, wave_tests
from sender.send.planner import plan_wave
from sender.send.subject_tests import decide, plan_remainder
from sender.web.workspace.subject_form import test_view

SUBJECTS = {"en": "x", "es": "x", "fr": "x", "ar": "x"}


def test_wave(engine: Engine, share: float) -> int:
    declared = SubjectTestSpec(
        variants=(
            SubjectVariant("A", {}, {}),
            SubjectVariant("B", dict.fromkeys(SUBJECTS, "y"), {}),
        ),
        default="A",
        share=share,
        seed=17,
        metric=SubjectMetric.HUMAN_CLICKS,
        wait=timedelta(hours=4),
        confidence=0.95,
        min_sends=100,
    )
    with db.session_scope(engine) as session:
        wave = Wave(
            campaign_id=session.scalars(select(Campaign.id)).one(),
            name="subject-test",
            kind="case_email",
            audience="all_assigned",
            status=WaveStatus.SCHEDULED,
            starts_at=START,
            ends_at=START + timedelta(days=2),
            subjects=SUBJECTS,
            subject_test=declared.to_json(),
        )
        session.add(wave)
        session.flush()
        return wave.id


# Every message of the batch marked sent below: its tallies moved as sender.core.tallies would.
_ALL_SENT = (
    "sent_count = planned_count + sent_count + skipped_count + failed_count + cancelled_count,"
    " planned_count = 0, skipped_count = 0, failed_count = 0, cancelled_count = 0"
)


def send_test_share(engine: Engine, wave_id: int) -> None:
    """The test share as accepted, and people's clicks: every 8th on B, every 12th on A."""
    sent_at = START + timedelta(hours=12)
    with engine.begin() as connection:
        params = {"wave": wave_id, "at": sent_at}
        connection.execute(
            text(
                f"UPDATE batches SET status = 'sent', sent_at = :at, {_ALL_SENT}"
                " WHERE wave_id = :wave"
            ),
            params,
        )
        connection.execute(
            text("UPDATE messages SET status = 'sent', sent_at = :at WHERE wave_id = :wave"), params
        )
        connection.execute(
            text(
                "INSERT INTO actions (supporter_id, case_id, wave_id, message_id, kind, source,"
                " dedupe_key, occurred_at, acting)"
                " SELECT m.supporter_id, m.case_id, m.wave_id, m.id, 'clicked', 'bench',"
                " 'bench:' || m.id, :at, true"
                " FROM messages m JOIN batches b ON b.id = m.batch_id"
                " WHERE m.wave_id = :wave"
                " AND m.supporter_id % (CASE WHEN b.variant = 'B' THEN 8 ELSE 12 END) = 0"
            ),
            params,
        )
        connection.execute(text("ANALYZE"))


@dataclass(frozen=True)
class ReportTimes:
    roll_up_s: float  # the tick's roll-up of the whole wave's actions at once
    rolled: tuple[float, float]  # wave_tests from the running totals: p50, p95 ms
    page: tuple[float, float]  # the wave page's test view (subject_form.test_view)
    plain: tuple[float, float]  # the plain count (variant_rows), its twin


def time_variant_report(engine: Engine, wave_id: int, runs: int) -> ReportTimes:
    """The per-variant report (dashboard, wave page, `--by variant`) once the remainder went
    too, read from the running totals the tick keeps, beside the plain count it replaces."""
    with engine.begin() as connection:
        connection.execute(
            text(f"UPDATE batches SET status = 'sent', sent_at = now(), {_ALL_SENT}")
        )
        connection.execute(text("UPDATE messages SET status = 'sent', sent_at = now()"))
        connection.execute(text("ANALYZE"))
    now = START + timedelta(days=1)
    began = time.perf_counter()
    rolled = catch_up(engine, now)  # what the ticks do, 100,000 actions each
    variant_counts.mark_counted(engine, now)
    roll_up_s = time.perf_counter() - began
    assert rolled > 0
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    with db.session_scope(engine) as session:
        plain = variant_rows(session, wave_id)
    [report] = wave_tests(engine, None)
    assert report.rows == plain, (report.rows, plain)

    def rolled_read() -> None:
        wave_tests(engine, None)

    def page_read() -> None:
        test_view(engine, wave_id, now)

    def plain_read() -> None:
        with db.session_scope(engine) as session:
            variant_rows(session, wave_id)

    return ReportTimes(
        roll_up_s,
        _percentiles(rolled_read, runs),
        _percentiles(page_read, runs),
        _percentiles(plain_read, 3),
    )


def _percentiles(read: Callable[[], None], runs: int) -> tuple[float, float]:
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        read()
        timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    return timings[len(timings) // 2], timings[min(len(timings) - 1, int(len(timings) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=30, help="reads of the report timed")
    parser.add_argument(
        "--report-only", action="store_true", help="time the variant report, skip the plain wave"
    )
    args = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} python {sys.version.split()[0]}")
    with postgres_server() as server:
        engine = db.get_engine(db.normalise_url(server.url))
        db.upgrade(engine)
        fill(engine, args.supporters)
        wave = test_wave(engine, args.share)
        started = time.perf_counter()
        tested = plan_wave(engine, SETTINGS, wave, START)
        share_seconds = time.perf_counter() - started
        assert tested is not None
        send_test_share(engine, wave)
        now = START + timedelta(hours=17)
        started = time.perf_counter()
        verdict = decide(engine, wave, now)
        decided = time.perf_counter()
        rest = plan_remainder(engine, SETTINGS, wave, now)
        done = time.perf_counter()
        assert verdict is not None and rest is not None
        print(f"test share: {tested.messages:,} messages planned in {share_seconds:.2f}s")
        print(f"decision: {verdict.winner} in {decided - started:.2f}s ({verdict.reason})")
        print(f"remainder: {rest.messages:,} messages planned in {done - decided:.2f}s")
        times = time_variant_report(engine, wave, args.runs)
        print(f"roll-up of the whole wave at once (its actions): {times.roll_up_s:.2f}s")
        for name, (p50, p95) in (
            (f"variant report (wave_tests), {args.runs} runs", times.rolled),
            (f"wave page's test view (test_view), {args.runs} runs", times.page),
            ("plain count (variant_rows), 3 runs", times.plain),
        ):
            print(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.report_only:
            return
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.upgrade(engine)
        fill(engine, args.supporters)
        plain, planned = timed_plan(engine, "plain")
        print(f"plain wave: {planned:,} messages planned in {plain:.2f}s")
        ratio = (done - started) / plain
        print(f"(decide + remainder) / plain = {ratio:.2f}")


if __name__ == "__main__":
    main()
