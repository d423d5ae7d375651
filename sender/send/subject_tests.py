"""A subject test's decision and its remainder, driven by the tick.

testing ─(test share sent, wait over, wave sending)─▶ decided ─(wave sending)─▶ finished
testing ─staff pick─▶ decided

Each step is a conditional UPDATE on the `subject_tests` row, so any number of
tickers, or one killed half-way, still decide once and plan the remainder
once: the decision commits alone, and the remainder's claim commits with the
remainder's messages or not at all. A paused wave is neither decided nor
planned until it resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, exists, func, select, update
from sqlalchemy.orm import Session

from sender.core.config import Settings
from sender.core.db import rowcount, session_scope
from sender.core.models import Batch, SubjectTest, Wave
from sender.core.proportions import one_sided_p
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import SubjectState, WaveStatus
from sender.report.variant_counts import TEST
from sender.report.variants import VariantRow, variant_rows
from sender.send.planner import PlanResult, plan_wave
from sender.send.split import Remainder
from sender.send.store import OPEN_BATCH
from sender.staff import audit
from sender.staff.actions import What

log = logging.getLogger(__name__)

RULE = "rule"  # decided_by for the automatic decision


@dataclass(frozen=True)
class Verdict:
    winner: str
    won: bool  # False: no variant won, the default goes out
    reason: str


def choose(test: SubjectTestSpec, rows: Mapping[str, VariantRow]) -> Verdict:
    """The stated rule (docs/SENDING.md, "Subject tests").

    Every variant needs `min_sends` messages sent. The variant with the highest
    rate of people doing the metric wins if a one-sided pooled two-proportion
    z-test puts it above each other variant at the test's confidence,
    Bonferroni-corrected for the number of comparisons. Otherwise, ties
    included, the default variant goes out, and the reason says why.
    """
    metric, default = test.metric, test.default
    short = [n for n in test.names if rows[n].sends < test.min_sends]
    if short:
        listed = ", ".join(f"{n} {rows[n].sends}" for n in short)
        return Verdict(
            default,
            False,
            f"too few sent to compare (at least {test.min_sends} a variant: {listed});"
            f" the default {default} goes out",
        )
    ranked = sorted(test.names, key=lambda n: (-rows[n].rate(metric), n != default))
    leader, others = ranked[0], ranked[1:]
    figures = ", ".join(f"{n} {_share(rows[n], test)}" for n in ranked)
    tied = [n for n in others if rows[n].rate(metric) == rows[leader].rate(metric)]
    if tied:
        return Verdict(
            default,
            False,
            f"a tie on {metric.value} ({figures}); the default {default} goes out",
        )
    alpha = (1 - test.confidence) / len(others)
    worst = max(
        one_sided_p(
            rows[leader].hits(metric), rows[leader].sends, rows[n].hits(metric), rows[n].sends
        )
        for n in others
    )
    level = f"{test.confidence:.0%} confidence"
    if worst < alpha:
        return Verdict(
            leader,
            True,
            f"{leader} beat every other variant on {metric.value} at {level}"
            f" ({figures}; largest p = {worst:.4f} < {alpha:.4f})",
        )
    return Verdict(
        default,
        False,
        f"no variant beat every other on {metric.value} at {level}"
        f" ({figures}; largest p = {worst:.4f} ≥ {alpha:.4f}); the default {default} goes out",
    )


def _share(row: VariantRow, test: SubjectTestSpec) -> str:
    return f"{row.hits(test.metric)}/{row.sends} = {row.rate(test.metric):.1%}"


def decide_at(session: Session, wave: Wave, test: SubjectTestSpec) -> datetime | None:
    """When the rule decides: `wait` after the last test batch was sent, at the latest at
    the wave's end; None while a test batch is still to go."""
    if session.scalar(
        select(exists().where(Batch.wave_id == wave.id, Batch.status.in_(OPEN_BATCH)))
    ):
        return None
    last_sent = session.scalar(select(func.max(Batch.sent_at)).where(Batch.wave_id == wave.id))
    return wave.ends_at if last_sent is None else min(last_sent + test.wait, wave.ends_at)


def record_decision(
    session: Session, wave_id: int, verdict: Verdict, by: str, now: datetime
) -> bool:
    """testing → decided, once: False when another ticker (or staff) decided first."""
    result = session.execute(
        update(SubjectTest)
        .where(SubjectTest.wave_id == wave_id, SubjectTest.state == SubjectState.TESTING)
        .values(
            state=SubjectState.DECIDED,
            winner=verdict.winner,
            reason=verdict.reason,
            decided_by=by,
            decided_at=now,
        )
    )
    return rowcount(result) > 0


def decide(engine: Engine, wave_id: int, now: datetime) -> Verdict | None:
    """Apply the rule to a due test and record it; None when not due or decided already."""
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        test = SubjectTestSpec.from_json(wave.subject_test)
        if test is None or wave.status != WaveStatus.SENDING:
            return None
        due = decide_at(session, wave, test)
        if due is None or now < due:
            return None
        found = {r.variant: r for r in variant_rows(session, wave_id) if r.part == TEST}
        rows = {n: found.get(n, VariantRow(n, TEST)) for n in test.names}
        verdict = choose(test, rows)
        if not record_decision(session, wave_id, verdict, RULE, now):
            return None
        audit.record(
            session,
            audit.system_actor(),
            What.WAVE_DECIDED,
            f"wave {wave.name}",
            before="subject test=testing",
            after=f"subject test=decided winner={verdict.winner}",
            detail=verdict.reason,
            campaign_id=wave.campaign_id,
        )
        return verdict


def plan_remainder(
    engine: Engine, settings: Settings, wave_id: int, now: datetime
) -> PlanResult | None:
    """The rest of the wave's audience with the winner, once; from `now`, in local windows."""

    def claim(session: Session) -> Remainder | None:
        result = session.execute(
            update(SubjectTest)
            .where(
                SubjectTest.wave_id == wave_id,
                SubjectTest.state == SubjectState.DECIDED,
                # A pick and a tick at the same instant as the test share's planning would
                # make the two indistinguishable by time (sender.report.variants).
                SubjectTest.started_at < now,
                exists().where(Wave.id == wave_id, Wave.status == WaveStatus.SENDING),
            )
            .values(state=SubjectState.FINISHED, finished_at=now)
        )
        if rowcount(result) == 0:
            return None
        state = session.get_one(SubjectTest, wave_id)
        last = session.scalar(select(func.max(Batch.seq)).where(Batch.wave_id == wave_id))
        assert state.winner is not None
        return Remainder(state.winner, (last if last is not None else -1) + 1)

    return plan_wave(engine, settings, wave_id, now, follow_up=claim)


@dataclass(frozen=True)
class Progress:
    decided: tuple[tuple[str, Verdict], ...] = ()
    remainders: tuple[PlanResult, ...] = ()


def advance(engine: Engine, settings: Settings, now: datetime) -> Progress:
    """The tick's step: decide the due tests, then plan the remainder of the decided ones."""
    with session_scope(engine) as session:
        running = session.execute(
            select(Wave.id, Wave.name, SubjectTest.state)
            .join(SubjectTest, SubjectTest.wave_id == Wave.id)
            .where(
                Wave.status == WaveStatus.SENDING,
                # A test share still being planned has batches yet to come.
                Wave.planning_until.is_(None),
                SubjectTest.state.in_([SubjectState.TESTING, SubjectState.DECIDED]),
            )
        ).all()
    decided: list[tuple[str, Verdict]] = []
    for wave_id, name, state in running:
        if state == SubjectState.TESTING and (verdict := decide(engine, wave_id, now)) is not None:
            log.info("wave %s subject test decided: %s", name, verdict.reason)
            decided.append((name, verdict))
    remainders = tuple(
        result
        for wave_id, _, _ in running
        if (result := plan_remainder(engine, settings, wave_id, now)) is not None
    )
    return Progress(tuple(decided), remainders)
