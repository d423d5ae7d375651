"""Subject tests as declared: the plan file, `wave create`, and the launch check."""

from __future__ import annotations

from typing import Any

import pytest
from campaign_fixtures import add_2020_campaign
from sending_fixtures import DEC1, add_case, wave_status
from sqlalchemy import Engine, select
from subject_test_fixtures import BILINGUAL

from sender.campaign.plan_file import parse_plan, wave_spec
from sender.campaign.waves import LaunchRefused, apply_plan, create_wave, launch
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Wave
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import SubjectMetric, WaveStatus

SETTINGS = Settings(secret_key="test")


def _variant(name: str, **parts: Any) -> dict[str, Any]:
    return {"name": name, "subjects": {"en": f"{name}: write today"}, **parts}


def _wave(test: dict[str, Any] | None, name: str = "case-email") -> dict[str, Any]:
    wave: dict[str, Any] = {
        "name": name,
        "kind": "case_email",
        "start": "2020-12-01T00:00:00Z",
        "end": "2020-12-03T00:00:00Z",
        "subjects": {"en": "Write a letter, {{ first_name }}"},
    }
    if test is not None:
        wave["subject_test"] = test
    return wave


def _stored(engine: Engine) -> dict[str, dict[str, Any]]:
    with session_scope(engine) as session:
        return {w.name: dict(w.subject_test or {}) for w in session.scalars(select(Wave))}


def test_a_declared_test_is_stored_with_its_defaults_and_applying_again_changes_nothing(
    any_engine: Engine,
) -> None:
    add_2020_campaign(any_engine)
    plan = parse_plan(
        {"waves": [_wave({"variants": [_variant("A"), _variant("B", preheaders={"en": "Now"})]})]}
    )
    assert apply_plan(any_engine, plan).created == ("case-email",)
    assert apply_plan(any_engine, plan).unchanged == ("case-email",)
    test = SubjectTestSpec.from_json(_stored(any_engine)["case-email"])
    assert test is not None
    assert (test.names, test.default, test.share, test.metric) == (
        ("A", "B"),
        "A",
        0.2,
        SubjectMetric.HUMAN_CLICKS,
    )
    assert dict(test.variant("B").preheaders) == {"en": "Now"}


@pytest.mark.parametrize(
    ("test", "problem"),
    [
        ({"variants": [_variant("A")]}, "2 to 4 variants, not 1"),
        ({"variants": [_variant(n) for n in "ABCDE"]}, "2 to 4 variants, not 5"),
        ({"variants": [_variant("A"), _variant("A")]}, "variant names must be unique"),
        ({"variants": [_variant("A"), _variant("B")], "default": "C"}, "default 'C' is not"),
        ({"variants": [{"name": "A"}, {"name": "B"}]}, "only one may be the wave's own"),
        ({"variants": [_variant("A"), _variant("B")], "share": 0.9}, "share"),
        ({"variants": [_variant("A"), _variant("B")], "metric": "opens"}, "metric"),
        (
            {"variants": [_variant("A"), _variant("B", subjects={"xx": "?"})]},
            "unknown language 'xx'",
        ),
        (
            {"variants": [_variant("A"), _variant("B", subjects={"en": "b", "fr": "c"})]},
            "variant 'B' subjects in fr, which the wave has no subject in",
        ),
    ],
)
def test_a_bad_test_is_refused_and_nothing_is_stored(
    any_engine: Engine, test: dict[str, Any], problem: str
) -> None:
    add_2020_campaign(any_engine)
    apply_plan(any_engine, parse_plan({"waves": [_wave(None, "kept")]}))
    with pytest.raises(InvalidInput, match=problem):
        apply_plan(any_engine, parse_plan({"waves": [_wave(None, "fine"), _wave(test)]}))
    assert _stored(any_engine) == {"kept": {}}


def test_wave_create_takes_variants_like_the_plan(any_engine: Engine) -> None:
    add_2020_campaign(any_engine)
    test = {"variants": [_variant("A"), _variant("B")], "metric": "actions", "wait_hours": 2}
    spec = wave_spec(
        name="cli",
        kind="case_email",
        start=DEC1,
        end=DEC1.replace(day=3),
        subjects={"en": "Write"},
        subject_test=test,
    )
    create_wave(any_engine, spec)
    stored = SubjectTestSpec.from_json(_stored(any_engine)["cli"])
    assert stored is not None and stored.metric is SubjectMetric.ACTIONS
    assert stored.wait.total_seconds() == 7200
    with pytest.raises(InvalidInput, match="2 to 4 variants, not 1"):
        wave_spec(
            name="one",
            kind="case_email",
            start=DEC1,
            end=DEC1.replace(day=3),
            subjects={"en": "Write"},
            subject_test={"variants": [_variant("A")]},
        )


def test_a_variant_missing_a_language_is_refused_at_launch_by_the_preview_check(
    pg_engine: Engine,
) -> None:
    add_2020_campaign(pg_engine)
    add_case(pg_engine, SETTINGS, content=BILINGUAL)
    wave = _wave({"variants": [_variant("A", subjects={"en": "a", "es": "a"}), _variant("B")]})
    wave["subjects"] = {"en": "Write", "es": "Escribe"}
    apply_plan(pg_engine, parse_plan({"waves": [wave]}))
    with pytest.raises(LaunchRefused, match=r"variant B.*`subjects\.es` is missing"):
        launch(pg_engine, SETTINGS, "case-email", DEC1.replace(month=11))
    with session_scope(pg_engine) as session:
        (row,) = session.scalars(select(Wave))
    assert wave_status(pg_engine, row.id)[0] == WaveStatus.DRAFT
