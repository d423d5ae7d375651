"""The report reads one campaign's totals through the primary key, and reading never writes.

The campaign's grouped query tests case_id first so PostgreSQL can use the key,
and a comparison reads only the figures it shows; these tests hold both to the
results of the queries they replaced, on rows of every attribution.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from reports_fixtures import NEW, OLD, two_campaigns
from sqlalchemy import Engine, and_, func, or_, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Case, ReportCount, Wave
from sender.report.campaigns import COMPARED, _compare_key, compare_campaigns
from sender.report.totals import (
    DIMENSION_COLUMNS,
    CountKey,
    Dimension,
    Metric,
    _rolled_totals,
    _scope,
    add_counts,
    build_report,
)
from sender.send.scheduler import tick

DAY = date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)


@dataclass
class NoBroker:
    seen: list[int] = field(default_factory=list)

    def dispatch(self, batch_ids: Any) -> None:
        self.seen.extend(batch_ids)


def _ids(engine: Engine, slug: str) -> tuple[list[int], list[int]]:
    with session_scope(engine) as session:
        scope = _scope(session, slug)
        assert scope is not None
        return list(scope.case_ids), list(scope.wave_ids)


def _edge_rows(engine: Engine) -> None:
    """Counts of every attribution: case without wave, wave without case, neither."""
    cases, waves = _ids(engine, NEW)
    old_cases, _ = _ids(engine, OLD)
    add_counts_in(
        engine,
        Counter(
            {
                CountKey(cases[0], 0, "en", DAY, Metric.CLICKS): 5,  # the page after the wave
                CountKey(0, waves[1], "ar", DAY, Metric.BOUNCES): 3,  # a bounce without a case
                CountKey(0, 0, "", DAY, Metric.BOUNCES): 7,  # belongs to no campaign
                CountKey(old_cases[1], 0, "en", DAY, Metric.LETTERS): 2,  # the other campaign's
            }
        ),
    )


def add_counts_in(engine: Engine, counts: Counter[CountKey]) -> None:
    with session_scope(engine) as session:
        add_counts(session, counts)


def _as_before(engine: Engine, by: Dimension, slug: str) -> set[tuple[Any, ...]]:
    """The filter this query had before the case_id test was added."""
    cases, waves = _ids(engine, slug)
    column = DIMENSION_COLUMNS[by]
    query = (
        select(column, ReportCount.metric, func.sum(ReportCount.count))
        .where(
            or_(
                ReportCount.wave_id.in_(waves),
                and_(ReportCount.wave_id == 0, ReportCount.case_id.in_(cases)),
            )
        )
        .group_by(column, ReportCount.metric)
    )
    with session_scope(engine) as session:
        return {tuple(row) for row in session.execute(query)}


@pytest.mark.parametrize("by", list(Dimension))
def test_the_scoped_query_agrees_with_the_filter_it_replaced(
    any_engine: Engine, by: Dimension
) -> None:
    two_campaigns(any_engine)
    _edge_rows(any_engine)
    for slug in (OLD, NEW):
        with session_scope(any_engine) as session:
            now = {tuple(row) for row in _rolled_totals(session, by, _scope(session, slug))}
        assert now == _as_before(any_engine, by, slug) and now


def test_the_campaigns_report_keeps_its_edge_rows_and_no_one_elses(any_engine: Engine) -> None:
    two_campaigns(any_engine)
    _edge_rows(any_engine)
    report = build_report(any_engine, Dimension.CASE, NEW)
    assert report["totals"]["clicks"] == 5 and report["totals"]["bounces"] == 3
    assert report["totals"]["letters"] == 0  # the old campaign's case
    assert report["unattributed"]["counts"]["bounces"] == 7


def _pending_reply(engine: Engine) -> int:
    with session_scope(engine) as session:
        case_id = session.scalar(select(Case.id).order_by(Case.id.desc()).limit(1))
        wave_id = session.scalar(select(Wave.id).order_by(Wave.id.desc()).limit(1))
        action = Action(
            case_id=case_id,
            wave_id=wave_id,
            kind="replied",
            source="inbound",
            dedupe_key="reply:9",
            occurred_at=NOW,
        )
        session.add(action)
        session.flush()
        return action.id


def _rolled_up_at(engine: Engine, action_id: int) -> datetime | None:
    with session_scope(engine) as session:
        action = session.get(Action, action_id)
        assert action is not None
        return action.rolled_up_at


def test_reading_a_report_writes_nothing_and_the_tick_counts_what_waited(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    reply = _pending_reply(pg_engine)
    assert build_report(pg_engine, Dimension.CASE, NEW)["totals"]["replies"] == 0
    assert build_report(pg_engine)["totals"]["replies"] == 0
    assert _rolled_up_at(pg_engine, reply) is None  # the read left it for the tick

    tick(pg_engine, Settings(secret_key="test"), NOW, NoBroker())
    assert _rolled_up_at(pg_engine, reply) is not None
    assert build_report(pg_engine, Dimension.CASE, NEW)["totals"]["replies"] == 1


@pytest.mark.parametrize("by", [Dimension.CASE, Dimension.WAVE, Dimension.LANGUAGE])
def test_a_comparison_reading_its_six_figures_agrees_with_the_full_reports(
    any_engine: Engine, by: Dimension
) -> None:
    two_campaigns(any_engine)
    _edge_rows(any_engine)
    compared = compare_campaigns(any_engine, [OLD, NEW], by)
    for slug in (OLD, NEW):
        full = build_report(any_engine, by, slug)
        shown = {
            row["key"]: row["campaigns"][slug]
            for row in compared["rows"]
            if row["campaigns"][slug] is not None
        }
        expected = {
            _compare_key(by, row): {m: row["counts"][m] for m in COMPARED}
            for row in full["rows"]
            if any(row["counts"][m] for m in COMPARED if m != "action_rate")
        }
        assert shown == expected and shown
        assert compared["totals"][slug] == {m: full["totals"][m] for m in COMPARED}
