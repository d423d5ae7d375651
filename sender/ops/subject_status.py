"""One line per running subject test for `campaign status`: its state and time to decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sender.core.db import session_scope
from sender.core.models import Wave
from sender.core.vocabulary import SubjectState, WaveStatus
from sender.report.variants import TestReport, test_report
from sender.send.subject_tests import decide_at


def subject_lines(engine: Engine, now: datetime, states: Sequence[WaveStatus]) -> list[str]:
    """For each wave in `states` that runs a subject test."""
    lines: list[str] = []
    with session_scope(engine) as session:
        for wave in session.scalars(select(Wave).where(Wave.status.in_(states)).order_by(Wave.id)):
            report = test_report(session, wave)
            if report is not None:
                lines.append(f"wave {wave.name}: {state_line(session, wave, report, now)}")
    return lines


def state_line(session: Session, wave: Wave, report: TestReport, now: datetime) -> str:
    """One wave's test: where it stands and, while it tests, when it decides."""
    due = decide_at(session, wave, report.test) if report.state else None
    return _state(report, wave.status, due, now)


def _state(report: TestReport, status: str, due: datetime | None, now: datetime) -> str:
    names = "/".join(report.test.names)
    if report.state is None:
        return f"subject test {names}: the test share goes out from the wave's start"
    if report.state != SubjectState.TESTING:
        done = "sent to the rest" if report.state == SubjectState.FINISHED else "rest planned next"
        return f"subject test {names}: {report.winner} won, {done} ({report.reason})"
    rates = ", ".join(
        f"{name} {row.hits(report.test.metric)}/{row.sends}"
        for name, row in report.test_rows().items()
    )
    if status == WaveStatus.PAUSED:
        return f"subject test {names} on {report.test.metric.value} ({rates}): paused, no decision"
    if due is None:
        return f"subject test {names} on {report.test.metric.value} ({rates}): test share sending"
    head = f"subject test {names} on {report.test.metric.value} ({rates}): decides at"
    left = int((due - now).total_seconds() // 60)
    if left <= 0:
        return f"{head} {due:%Y-%m-%d %H:%M} UTC, due now (the next tick)"
    return f"{head} {due:%Y-%m-%d %H:%M} UTC, in {left // 60} h {left % 60:02d} min"
