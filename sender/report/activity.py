"""Actions per case and day: the dashboard's chart.

Read from the running totals (`report_counts`, sender.report.totals): a few
hundred rows, where counting the actions themselves scanned millions.
`actions_per_case_day` is that plain count, kept as the twin a test holds equal
once the roll-up has caught up (the totals lag the actions by up to a tick).

The chart counts what people did: opens, clicks, letters and replies. The
machines' opens and clicks (scanners, privacy proxies: docs/TRACKING.md) are
left out, as the report leaves them out of opens and clicks; a click later
found to be a machine's leaves the chart as it leaves the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from sender.core.db import session_scope
from sender.core.models import Action, Case, ReportCount
from sender.core.vocabulary import ActionKind
from sender.report.totals import metric_of

PEOPLES_KINDS: tuple[str, ...] = (
    ActionKind.OPENED,
    ActionKind.CLICKED,
    ActionKind.LETTER_SENT,
    ActionKind.REPLIED,
)
CHARTED_METRICS: tuple[str, ...] = tuple(metric_of(kind) for kind in PEOPLES_KINDS)

Series = dict[str, dict[date, int]]


def rolled_up_actions_per_case_day(engine: Engine, since: datetime) -> Series:
    """People's actions per case slug and UTC day from ``since``'s day on, from the totals
    (``since`` is a day's start: the totals keep days, not times)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Case.slug, ReportCount.day, func.sum(ReportCount.count))
            .join(Case, Case.id == ReportCount.case_id)
            .where(ReportCount.metric.in_(CHARTED_METRICS), ReportCount.day >= since.date())
            .group_by(Case.slug, ReportCount.day)
        ).all()
    return _series(rows)


def actions_per_case_day(engine: Engine, since: datetime) -> Series:
    """The plain twin: the same figures counted from the actions themselves."""
    day = func.date(Action.occurred_at)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Case.slug, day, func.count())
            .join(Case, Case.id == Action.case_id)
            .where(Action.occurred_at >= since, Action.kind.in_(PEOPLES_KINDS))
            .group_by(Case.slug, day)
        ).all()
    return _series(rows)


def _series(rows: Iterable[Any]) -> Series:
    series: Series = {}
    for slug, when, count in rows:
        when = date.fromisoformat(when) if isinstance(when, str) else when  # SQLite: text
        if count:
            series.setdefault(slug, {})[when] = int(count)
    return series
