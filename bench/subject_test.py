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
from datetime import timedelta

from sqlalchemy import Engine, select, text

from bench.plan_wave import SETTINGS, START, fill, timed_plan
from sender.core import db
from sender.core.models import Campaign, Wave
from sender.core.subject_test import SubjectTestSpec, SubjectVariant
from sender.core.vocabulary import SubjectMetric, WaveStatus
from sender.devtools.services import postgres_server
from sender.report.variants import wave_tests
from sender.send.planner import plan_wave
from sender.send.subject_tests import decide, plan_remainder

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


def send_test_share(engine: Engine, wave_id: int) -> None:
    """The test share as accepted, and people's clicks: every 8th on B, every 12th on A."""
    sent_at = START + timedelta(hours=12)
    with engine.begin() as connection:
        params = {"wave": wave_id, "at": sent_at}
        connection.execute(
            text("UPDATE batches SET status = 'sent', sent_at = :at WHERE wave_id = :wave"), params
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


def time_variant_report(engine: Engine) -> float:
    """The per-variant report (dashboard, wave page, `--by variant`) once the remainder went
    too: it counts the wave's messages and actions per variant on every read."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE batches SET status = 'sent', sent_at = now()"))
        connection.execute(text("UPDATE messages SET status = 'sent', sent_at = now()"))
        connection.execute(text("ANALYZE"))
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        [report] = wave_tests(engine, None)
        timings.append((time.perf_counter() - began) * 1000)
    assert report.rows
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.1)
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
        report_ms = time_variant_report(engine)
        print(f"variant report (wave_tests), every message sent: {report_ms:.0f} ms (best of 3)")
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
