"""A subject test's results per variant: mail sent, people's and machines' signals, rates.

The one place a test's figures are read. Two forms that agree: `variant_rows`
counts the wave's messages and actions (the plain count; the decision rule in
sender.send.subject_tests reads the test share's rows from it, so it decides
on every action recorded), and `test_report` reads the running totals that
sender.report.variant_counts keeps (`rolled_rows`), for `campaign report --by
variant`, `campaign status`, the dashboard and a wave's page, which say as of
when the totals were counted. Each signal counts people (distinct supporters),
and machine opens and link scanners' fetches are counted apart: they never add
to a rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from sqlalchemy import Engine, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from sender.core.db import session_scope
from sender.core.models import Action, Batch, Campaign, Message, SubjectTest, Wave
from sender.core.proportions import Interval, wilson_interval
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import ActionKind, MessageStatus, SubjectMetric
from sender.report.variant_counts import TEST, counted_as_of, part_of, rolled_figures

_ACTED = "acted"  # a letter sent or a reply: one person counts once, whichever they did


@dataclass(frozen=True)
class VariantRow:
    variant: str
    part: str  # TEST or REMAINDER
    sends: int = 0
    human_opens: int = 0
    machine_opens: int = 0
    human_clicks: int = 0
    machine_clicks: int = 0
    actions: int = 0

    def hits(self, metric: SubjectMetric) -> int:
        if metric is SubjectMetric.HUMAN_CLICKS:
            return self.human_clicks
        if metric is SubjectMetric.ACTIONS:
            return self.actions
        return self.human_opens

    def rate(self, metric: SubjectMetric) -> float:
        return self.hits(metric) / self.sends if self.sends else 0.0

    def interval(self, metric: SubjectMetric, confidence: float) -> Interval:
        return wilson_interval(self.hits(metric), self.sends, confidence)


@dataclass(frozen=True)
class TestReport:
    wave: str
    test: SubjectTestSpec
    state: str | None  # None: the test share is not planned yet
    winner: str | None
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    rows: tuple[VariantRow, ...] = field(default_factory=tuple)
    # Messages sent are exact (the batches' tallies); the people are the running totals
    # as of this instant (the tick whose roll-up last left nothing waiting; None: not yet).
    as_of: datetime | None = None

    def test_rows(self) -> dict[str, VariantRow]:
        """The test share's figures per variant, every variant present."""
        found = {r.variant: r for r in self.rows if r.part == TEST}
        return {name: found.get(name, VariantRow(name, TEST)) for name in self.test.names}


def variant_rows(session: Session, wave_id: int) -> tuple[VariantRow, ...]:
    """Per (variant, part): messages sent and the distinct people behind each signal."""
    started = select(SubjectTest.started_at).where(SubjectTest.wave_id == wave_id)
    part = part_of(started.scalar_subquery()).label("part")
    sends = session.execute(
        select(Batch.variant, part, func.count())
        .select_from(Message)
        .join(Batch, Batch.id == Message.batch_id)
        .where(Message.wave_id == wave_id, Message.status == MessageStatus.SENT)
        .group_by(Batch.variant, part)
    ).all()
    kind = case(
        (Action.kind.in_([ActionKind.LETTER_SENT, ActionKind.REPLIED]), literal(_ACTED)),
        else_=Action.kind,
    ).label("kind")
    signals = session.execute(
        select(Batch.variant, part, kind, func.count(func.distinct(Action.supporter_id)))
        .select_from(Action)
        .join(
            Message,
            and_(Message.wave_id == Action.wave_id, Message.supporter_id == Action.supporter_id),
        )
        .join(Batch, Batch.id == Message.batch_id)
        .where(
            Action.wave_id == wave_id,
            or_(Action.kind != ActionKind.CLICKED, Action.acting.is_(True)),
        )
        .group_by(Batch.variant, part, kind)
    ).all()
    figures: dict[tuple[str, str], dict[str, int]] = {}
    for variant, where, count in sends:
        figures.setdefault((variant, where), {})["sends"] = int(count)
    for variant, where, what, count in signals:
        people = figures.setdefault((variant, where), {})
        column = _COLUMN.get(str(what))
        if column is not None:
            people[column] = int(count)
    return tuple(
        VariantRow(variant, where, **values) for (variant, where), values in sorted(figures.items())
    )


_COLUMN = {
    ActionKind.OPENED.value: "human_opens",
    ActionKind.OPENED_MACHINE.value: "machine_opens",
    ActionKind.CLICKED.value: "human_clicks",
    ActionKind.CLICKED_MACHINE.value: "machine_clicks",
    _ACTED: "actions",
}


def rolled_rows(session: Session, wave_id: int) -> tuple[VariantRow, ...]:
    """`variant_rows` read from the running totals: the same rows once they are counted."""
    figures = rolled_figures(session, wave_id)
    return tuple(
        VariantRow(variant, where, **values) for (variant, where), values in sorted(figures.items())
    )


def test_report(session: Session, wave: Wave) -> TestReport | None:
    """The wave's subject test with its figures; None for a wave without a test."""
    declared = SubjectTestSpec.from_json(wave.subject_test)
    if declared is None:
        return None
    state = session.get(SubjectTest, wave.id)
    return TestReport(
        wave=wave.name,
        test=declared,
        state=state.state if state else None,
        winner=state.winner if state else None,
        reason=state.reason if state else None,
        decided_by=state.decided_by if state else None,
        decided_at=state.decided_at if state else None,
        rows=rolled_rows(session, wave.id) if state else (),
        as_of=counted_as_of(session) if state else None,
    )


def test_reports(session: Session, waves: Sequence[Wave]) -> list[TestReport]:
    return [r for wave in waves if (r := test_report(session, wave)) is not None]


@dataclass(frozen=True)
class Figure:
    """One variant's row as shown: counts, the metric's rate and its interval (fractions)."""

    variant: str
    part: str
    sent: int
    human_opens: int
    machine_opens: int
    human_clicks: int
    machine_clicks: int
    actions: int
    metric: str
    rate: float
    low: float
    high: float
    winner: bool


def figures(report: TestReport) -> list[Figure]:
    """One row per variant and part, the test share first: what the CLI, the status
    command and the dashboard show."""
    metric, confidence, names = report.test.metric, report.test.confidence, report.test.names
    ordered = sorted(
        report.rows,
        key=lambda r: (
            r.part != TEST,
            names.index(r.variant) if r.variant in names else len(names),
        ),
    )
    return [
        Figure(
            variant=row.variant,
            part=row.part,
            sent=row.sends,
            human_opens=row.human_opens,
            machine_opens=row.machine_opens,
            human_clicks=row.human_clicks,
            machine_clicks=row.machine_clicks,
            actions=row.actions,
            metric=metric.value,
            rate=row.rate(metric),
            low=(interval := row.interval(metric, confidence)).low,
            high=interval.high,
            winner=row.variant == report.winner,
        )
        for row in ordered
    ]


def summary(report: TestReport) -> str:
    """One line: what the test measures and where it stands."""
    test = report.test
    head = (
        f"subject test of {', '.join(test.names)} on {test.metric.value}, "
        f"{test.share:.0%} test share, {test.confidence:.0%} confidence"
    )
    if report.state is None:
        return f"{head}: the test share is not planned yet"
    if report.winner is None:
        return f"{head}: testing. {counted_note(report)}"
    when = f"{report.decided_at:%Y-%m-%d %H:%M} UTC" if report.decided_at else "?"
    return (
        f"{head}: {report.winner} chosen by {report.decided_by} at {when} ({report.reason})."
        f" {counted_note(report)}"
    )


def counted_note(report: TestReport) -> str:
    """What the figures are as of: people's signals lag the roll-up by up to a tick."""
    if report.state is None:
        return ""
    if report.as_of is None:
        return "Figures: not counted yet (the scheduler's tick counts them)."
    return f"Figures as of {report.as_of:%Y-%m-%d %H:%M} UTC."


FIGURE_KEYS = tuple(f.name for f in fields(Figure))


def as_json(report: TestReport) -> dict[str, object]:
    return {
        "wave": report.wave,
        "state": report.state,
        "winner": report.winner,
        "reason": report.reason,
        "decided_by": report.decided_by,
        "decided_at": report.decided_at.isoformat() if report.decided_at else None,
        "summary": summary(report),
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "rows": [asdict(f) for f in figures(report)],
    }


def wave_tests(engine: Engine, campaign: str | None) -> list[TestReport]:
    """Every subject test of the campaign (of every campaign for None), in wave order."""
    with session_scope(engine) as session:
        query = select(Wave).order_by(Wave.id)
        if campaign is not None:
            query = query.join(Campaign, Campaign.id == Wave.campaign_id).where(
                Campaign.slug == campaign
            )
        return test_reports(session, list(session.scalars(query)))
