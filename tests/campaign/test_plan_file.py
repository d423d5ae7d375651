from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine, select

from sender.campaign.plan_file import load_plan, parse_plan, parse_window, wave_spec
from sender.campaign.waves import apply_plan
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Wave
from sender.core.vocabulary import AudienceRule, WaveKind, WaveStatus


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    """Both databases, holding the 2020 campaign as `campaigns create` makes it."""
    add_2020_campaign(any_engine)
    return any_engine


ROOT = Path(__file__).resolve().parents[2]


def _wave(name: str = "case-email", **changes: Any) -> dict[str, object]:
    wave: dict[str, object] = {
        "name": name,
        "kind": "case_email",
        "start": "2020-12-01T00:00:00Z",
        "end": "2020-12-03T00:00:00Z",
        "subjects": {"en": "Write a letter, {{ first_name }}"},
    }
    wave.update(changes)
    return wave


def _names(engine: Engine) -> dict[str, str]:
    with session_scope(engine) as session:
        return {w.name: w.status for w in session.scalars(select(Wave))}


def test_example_plan_declares_three_waves_in_the_local_morning() -> None:
    plan = load_plan(ROOT / "audiences" / "w4r-2020" / "plan.yaml")
    assert [w.kind for w in plan.waves] == [
        WaveKind.CASE_EMAIL,
        WaveKind.ACTION_REMINDER,
        WaveKind.LAST_CHANCE,
    ]
    assert plan.waves[1].starts_at == datetime(2020, 12, 10, tzinfo=UTC)
    assert plan.waves[2].starts_at == datetime(2021, 1, 20, tzinfo=UTC)
    assert all((w.window_start, w.window_end) == (time(9), time(11)) for w in plan.waves)
    assert plan.waves[1].audience is AudienceRule.NOT_ACTED


def test_windows_parse_and_the_whole_day_is_one_window() -> None:
    assert parse_window("09:00-11:00") == (time(9), time(11))
    assert parse_window("00:00-24:00") == (time(0), time(0))
    for bad in ("11:00-09:00", "9am-11am", "10:00-10:00", "09:00"):
        with pytest.raises(InvalidInput, match="window"):
            parse_window(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "newsletter"}, "kind"),
        ({"start": "2020-12-01T00:00:00"}, "needs a timezone"),
        ({"end": "2020-11-30T00:00:00Z"}, "ends before it starts"),
        ({"subjects": {}}, "subjects"),
        ({"rate_per_hour": 0}, "rate_per_hour"),
        ({"audience": "everyone"}, "audience"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_wave_entries_are_refused_with_the_field_named(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_plan({"waves": [_wave(**change)]})


def test_duplicate_wave_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unique"):
        parse_plan({"waves": [_wave(), _wave()]})


def test_unreadable_and_invalid_yaml_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_plan(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("waves: [\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_plan(broken)


def test_apply_is_idempotent(engine: Engine) -> None:
    plan = load_plan(ROOT / "audiences" / "w4r-2020" / "plan.yaml")
    first = apply_plan(engine, plan)
    second = apply_plan(engine, plan)
    assert len(first.created) == 3
    assert second.created == () and second.updated == ()
    assert len(second.unchanged) == 3
    assert set(_names(engine).values()) == {WaveStatus.DRAFT}
    assert len(_names(engine)) == 3


def test_apply_updates_a_draft_but_keeps_a_launched_wave(engine: Engine) -> None:
    apply_plan(engine, parse_plan({"waves": [_wave("a"), _wave("b")]}))
    with session_scope(engine) as session:
        wave = session.scalar(select(Wave).where(Wave.name == "b"))
        assert wave is not None
        wave.status = WaveStatus.SCHEDULED
    changed = {"subjects": {"en": "New words, {{ first_name }}"}}
    result = apply_plan(
        engine, parse_plan({"waves": [_wave("a", **changed), _wave("b", **changed)]})
    )
    assert result.updated == ("a",) and result.kept == ("b",)
    with session_scope(engine) as session:
        subjects = {w.name: w.subjects["en"] for w in session.scalars(select(Wave))}
    assert subjects == {"a": "New words, {{ first_name }}", "b": "Write a letter, {{ first_name }}"}


def test_a_wave_outside_the_campaign_window_is_refused_and_nothing_is_stored(
    engine: Engine,
) -> None:
    apply_plan(engine, parse_plan({"waves": [_wave("kept")]}))
    late = _wave("late", start="2021-01-31T00:00:00Z", end="2021-02-03T00:00:00Z")
    with pytest.raises(InvalidInput, match="outside the campaign window 2020-10-01"):
        apply_plan(engine, parse_plan({"waves": [_wave("fine"), late]}))
    assert _names(engine) == {"kept": WaveStatus.DRAFT}


def test_wave_spec_from_loose_values_is_checked_like_a_plan_entry() -> None:
    spec = wave_spec(
        name="hrd",
        kind="action_reminder",
        start=datetime(2020, 12, 10, tzinfo=UTC),
        end=datetime(2020, 12, 11, tzinfo=UTC),
        subjects={"en": "Reminder"},
    )
    assert spec.audience is AudienceRule.NOT_ACTED
    with pytest.raises(InvalidInput, match="wave 'bad name!'"):
        wave_spec(
            name="bad name!",
            kind="case_email",
            start=datetime(2020, 12, 10, tzinfo=UTC),
            end=datetime(2020, 12, 11, tzinfo=UTC),
            subjects={"en": "x"},
        )
