"""Actions per case and UTC day, counted from the actions table."""

from __future__ import annotations

from datetime import timedelta

from ops_fixtures import NOW, seed
from sqlalchemy import Engine

from sender.report.activity import actions_per_case_day


def test_actions_are_counted_per_case_and_day_since_the_start(any_engine: Engine) -> None:
    seed(any_engine)  # four actions, one a day back from NOW, alternating bird and popi
    series = actions_per_case_day(any_engine, NOW - timedelta(days=2))
    day = NOW.date()
    assert series == {
        "bird": {day: 1, day - timedelta(days=2): 1},
        "popi": {day - timedelta(days=1): 1},
    }
    assert actions_per_case_day(any_engine, NOW + timedelta(days=1)) == {}
