"""Actions per case and day, counted from the actions themselves (the dashboard's chart)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, func, select

from sender.core.db import session_scope
from sender.core.models import Action, Case


def actions_per_case_day(engine: Engine, since: datetime) -> dict[str, dict[date, int]]:
    """Actions per case slug and UTC day since ``since``, counted by the database."""
    day = func.date(Action.occurred_at)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Case.slug, day, func.count())
            .join(Case, Case.id == Action.case_id)
            .where(Action.occurred_at >= since)
            .group_by(Case.slug, day)
        ).all()
    series: dict[str, dict[date, int]] = {}
    for slug, when, count in rows:
        when = date.fromisoformat(when) if isinstance(when, str) else when  # SQLite: text
        series.setdefault(slug, {})[when] = int(count)
    return series
