"""Actions per case and UTC day: read from the running totals, and the plain count beside it."""

from __future__ import annotations

from datetime import timedelta

from ops_fixtures import EMAILS, NOW, seed
from sqlalchemy import Engine, select

from sender.core.db import session_scope
from sender.core.models import Action, Supporter
from sender.core.vocabulary import ActionKind
from sender.report.activity import actions_per_case_day, rolled_up_actions_per_case_day
from sender.report.totals import catch_up

SINCE = (NOW - timedelta(days=2)).replace(hour=0, minute=0)


def _more_actions(engine: Engine, case_id: int) -> None:
    """Every kind once, a day back: the machines' opens and clicks are not charted."""
    with session_scope(engine) as session:
        supporter_id = session.scalars(
            select(Supporter.id).where(Supporter.email == EMAILS[0])
        ).one()
        for n, kind in enumerate(ActionKind):
            session.add(
                Action(
                    supporter_id=supporter_id,
                    case_id=case_id,
                    kind=kind,
                    source="link",
                    dedupe_key=f"more-{n}",
                    occurred_at=NOW - timedelta(days=1),
                )
            )


def test_actions_are_counted_per_case_and_day_since_the_start(any_engine: Engine) -> None:
    seed(any_engine)  # four actions, one a day back from NOW, alternating bird and popi
    series = actions_per_case_day(any_engine, SINCE)
    day = NOW.date()
    assert series == {
        "bird": {day: 1, day - timedelta(days=2): 1},
        "popi": {day - timedelta(days=1): 1},
    }
    assert actions_per_case_day(any_engine, NOW + timedelta(days=1)) == {}


def test_the_totals_agree_with_the_plain_count_once_rolled_up(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    _more_actions(any_engine, seeded.case_ids[0])
    assert rolled_up_actions_per_case_day(any_engine, SINCE) == {}  # the tick has not run yet
    catch_up(any_engine, NOW)
    plain = actions_per_case_day(any_engine, SINCE)
    assert rolled_up_actions_per_case_day(any_engine, SINCE) == plain
    day = NOW.date() - timedelta(days=1)
    assert plain["bird"][day] == 4  # opened, clicked, letter_sent, replied: no machine's
    assert rolled_up_actions_per_case_day(any_engine, NOW + timedelta(days=1)) == {}
