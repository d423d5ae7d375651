from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from campaign_fixtures import add_2020_campaign, add_campaign_now
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from sender.audience.assignment import (
    BulkThresholds,
    Strategy,
    Target,
    assign,
    plan_assignments,
)
from sender.campaign.cases import load_cases, set_case_status
from sender.core.db import alembic_config, session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Assignment, Case, Supporter

OURS = "w4r-2020"
CASES_FILE = Path(__file__).parents[2] / "audiences" / "w4r-2020" / "cases.yaml"
COUNTRIES = ["US", "GB", "FR", "ES", "MX", "SA", "PK", "TR", "BI", "CO", None]


def add_supporters(
    engine: Engine,
    count: int,
    start: int = 0,
    countries: Sequence[str | None] = COUNTRIES,
    preferences: Sequence[str | None] = (None,),
    **fields: object,
) -> None:
    rng = random.Random(start)
    rows = []
    for n in range(start, start + count):
        email = f"s{n}@example.org"
        rows.append(
            {
                "email": email,
                "email_hash": hashlib.sha256(email.encode()).hexdigest(),
                "country": rng.choice(countries),
                "case_preference": rng.choice(preferences),
                "language": "en",
                "consent": True,
                **fields,
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(Supporter), rows)


def assignments(engine: Engine) -> list[tuple[int, str, str | None, str, str]]:
    query = (
        select(
            Supporter.id,
            Case.slug,
            Supporter.country,
            Supporter.case_preference,
            Assignment.strategy,
        )
        .join_from(Assignment, Supporter)
        .join(Case)
    )
    with session_scope(engine) as session:
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def excluded_by_slug(engine: Engine) -> dict[str, list[str]]:
    with session_scope(engine) as session:
        return {c.slug: c.excluded_countries for c in session.scalars(select(Case))}


@pytest.fixture
def cases(any_engine: Engine, env: pytest.MonkeyPatch) -> Engine:
    add_2020_campaign(any_engine)
    load_cases(any_engine, CASES_FILE)
    return any_engine


def test_balanced_spreads_10000_supporters_within_one_percent(cases: Engine) -> None:
    add_supporters(cases, 10_000)
    report = assign(cases, Strategy.BALANCED)
    assert report.assignments_created == 10_000 and report.unassignable == 0
    counts = Counter(slug for _, slug, *_ in assignments(cases))
    assert len(counts) == 7
    for share in (count / 10_000 for count in counts.values()):
        assert abs(share - 1 / 7) <= 0.01
    assert {case.slug: case.assignments for case in report.cases} == dict(counts)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_safety_exclusions_hold_in_every_strategy(cases: Engine, strategy: Strategy) -> None:
    # Everyone asks for the Saudi case: SA supporters must still never get it.
    add_supporters(cases, 3_000, preferences=["nassima-al-sada", "idris-khattak", None])
    assign(cases, strategy, cases_per_supporter=2)
    excluded = excluded_by_slug(cases)
    rows = assignments(cases)
    assert len(rows) == 6_000
    assert not [row for row in rows if row[2] in excluded[row[1]]]
    sa_cases = Counter(slug for _, slug, country, *_ in rows if country == "SA")
    assert sa_cases and "nassima-al-sada" not in sa_cases


def test_supporter_with_no_allowed_case_is_unassignable(cases: Engine) -> None:
    for slug in ("idris-khattak", "metu-pride", "jani-silva", "teyonna-lofton"):
        set_case_status(cases, slug, "paused")
    for slug in ("germain-rukuki", "family-detention-us"):
        set_case_status(cases, slug, "resolved")
    add_supporters(cases, 10, countries=["SA"])
    add_supporters(cases, 5, start=10, countries=["US"])
    report = assign(cases, Strategy.BALANCED)
    assert report.unassignable == 10
    assert {(slug, country) for _, slug, country, *_ in assignments(cases)} == {
        ("nassima-al-sada", "US")
    }


def test_preference_is_honoured_when_active_and_allowed(cases: Engine) -> None:
    set_case_status(cases, "jani-silva", "paused")
    add_supporters(
        cases, 2_000, countries=["US", "SA"], preferences=["nassima-al-sada", "jani-silva", None]
    )
    report = assign(cases, Strategy.PREFERENCE)
    rows = assignments(cases)
    for _, slug, country, preference, strategy in rows:
        assert strategy == "preference"
        if preference == "nassima-al-sada" and country == "US":
            assert slug == "nassima-al-sada"
        assert slug != "jani-silva"  # paused: the preference cannot be honoured
        if country == "SA":
            assert slug != "nassima-al-sada"
    honoured = sum(1 for _, s, c, p, _ in rows if p == s)
    assert report.preferences_honoured == honoured > 0
    # Those without a usable preference are spread over the other cases.
    others = Counter(s for _, s, c, p, _ in rows if p != "nassima-al-sada" or c != "US")
    assert len(others) == 5 and max(others.values()) - min(others.values()) <= 1 + 0.01 * len(rows)


def test_country_strategy_balances_inside_each_country(cases: Engine) -> None:
    add_supporters(cases, 5_000)
    assign(cases, Strategy.COUNTRY)
    per_country: dict[str | None, Counter[str]] = {}
    for _, slug, country, *_ in assignments(cases):
        per_country.setdefault(country, Counter())[slug] += 1
    excluded = excluded_by_slug(cases)
    for country, counts in per_country.items():
        allowed = [slug for slug, out in excluded.items() if country not in out]
        assert set(counts) == set(allowed)
        assert max(counts.values()) - min(counts.values()) <= 1
    totals = Counter(slug for _, slug, *_ in assignments(cases))
    assert max(totals.values()) / 5_000 - min(totals.values()) / 5_000 <= 0.02


def test_same_seed_same_assignment_other_seed_differs(cases: Engine) -> None:
    add_supporters(cases, 2_000)
    assign(cases, Strategy.BALANCED, seed=7)
    first = sorted(assignments(cases))
    again = assign(cases, Strategy.BALANCED, seed=7, reassign=True)
    assert again.assignments_replaced == 2_000
    assert sorted(assignments(cases)) == first
    assign(cases, Strategy.BALANCED, seed=8, reassign=True)
    assert sorted(assignments(cases)) != first


@pytest.mark.parametrize("other_campaign", [False, True])
def test_large_reassign_empties_only_its_own_campaign(cases: Engine, other_campaign: bool) -> None:
    # Thresholds lowered: the TRUNCATE and foreign-key recheck paths at test size.
    small = BulkThresholds(recheck_foreign_keys_from=10, truncate_from=10)
    add_supporters(cases, 1_000, preferences=("jani-silva", None))
    if other_campaign:
        add_campaign_now(cases, "other", datetime(2026, 12, 3, tzinfo=UTC))
        load_cases(cases, CASES_FILE, campaign_slug="other")
        assign(cases, Strategy.BALANCED, campaign_slug="other", bulk=small)
    first = assign(cases, Strategy.BALANCED, seed=5, bulk=small, campaign_slug=OURS)
    fresh = sorted(assignments(cases))
    assign(cases, Strategy.PREFERENCE, seed=6, reassign=True, bulk=small, campaign_slug=OURS)
    again = assign(cases, Strategy.BALANCED, seed=5, reassign=True, bulk=small, campaign_slug=OURS)
    assert again.assignments_replaced == 1_000
    assert sorted(assignments(cases)) == fresh  # the other campaign's rows included
    assert again.cases == first.cases
    with session_scope(cases) as session:
        stored = Counter(session.scalars(select(Assignment.case_id)))
    assert sum(stored.values()) == (2_000 if other_campaign else 1_000)


def test_rerun_assigns_only_new_supporters(cases: Engine) -> None:
    add_supporters(cases, 700)
    assign(cases, Strategy.BALANCED)
    before = set(assignments(cases))
    assert assign(cases, Strategy.BALANCED).assignments_created == 0
    add_supporters(cases, 70, start=700)
    report = assign(cases, Strategy.BALANCED, seed=3)
    after = set(assignments(cases))
    assert report.assignments_created == 70 and report.supporters_considered == 70
    assert before <= after and len(after) == 770
    # The newcomers continued the balance instead of starting from zero.
    assert {case.assignments for case in report.cases} == {110}


def test_reassign_replaces_existing_assignments(cases: Engine) -> None:
    add_supporters(cases, 1_400)
    assign(cases, Strategy.BALANCED)
    set_case_status(cases, "teyonna-lofton", "paused")
    report = assign(cases, Strategy.COUNTRY, reassign=True)
    rows = assignments(cases)
    assert report.assignments_replaced == 1_400 and len(rows) == 1_400
    assert {strategy for *_, strategy in rows} == {"country"}
    assert "teyonna-lofton" not in {slug for _, slug, *_ in rows}


def test_forgotten_supporters_are_skipped_unsubscribed_are_assigned(cases: Engine) -> None:
    add_supporters(cases, 5, status="unsubscribed")
    add_supporters(
        cases,
        5,
        start=5,
        status="forgotten",
        email=None,
        forgotten_at=datetime(2020, 11, 1, tzinfo=UTC),
    )
    report = assign(cases, Strategy.BALANCED)
    assert report.supporters_considered == 5 and len(assignments(cases)) == 5


def test_several_cases_per_supporter_are_distinct(cases: Engine) -> None:
    add_supporters(cases, 1_000)
    assign(cases, Strategy.BALANCED, cases_per_supporter=3)
    per_supporter = Counter(supporter for supporter, *_ in assignments(cases))
    assert set(per_supporter.values()) == {3}


def test_no_active_case_or_campaign_is_a_clear_error(
    any_engine: Engine, env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInput, match="campaign init DIR"):
        assign(any_engine, Strategy.BALANCED)
    add_2020_campaign(any_engine)
    with pytest.raises(InvalidInput, match="campaign cases load FILE"):
        assign(any_engine, Strategy.BALANCED)
    load_cases(any_engine, CASES_FILE)
    with pytest.raises(InvalidInput, match="unknown strategy 'random'"):
        assign(any_engine, "random")
    add_supporters(any_engine, 3)
    for case in excluded_by_slug(any_engine):
        set_case_status(any_engine, case, "paused")
    with pytest.raises(InvalidInput, match="no active case"):
        assign(any_engine, Strategy.BALANCED)
    assert assignments(any_engine) == []


def test_plan_is_pure_and_respects_existing_load() -> None:
    targets = [Target(1, "a", frozenset()), Target(2, "b", frozenset({"SA"}))]
    people = [(n, "SA" if n % 2 else "US", None) for n in range(10)]
    plan = plan_assignments(people, targets, Strategy.BALANCED, initial_load={1: 4})
    assert plan == plan_assignments(people, targets, Strategy.BALANCED, initial_load={1: 4})
    chosen = dict(plan.rows)
    assert all(chosen[n] == 1 for n in range(1, 10, 2))  # SA only allowed case a
    assert Counter(chosen.values()) == {1: 5, 2: 5}
    with pytest.raises(InvalidInput):
        plan_assignments(people, targets, Strategy.BALANCED, cases_per_supporter=0)


def test_big_postgresql_batch_keeps_its_foreign_keys(
    pg_engine: Engine, env: pytest.MonkeyPatch
) -> None:
    # Force the drop-and-recheck path that batches of 100,000+ rows take.
    add_2020_campaign(pg_engine)
    load_cases(pg_engine, CASES_FILE)
    add_supporters(pg_engine, 500)
    report = assign(pg_engine, Strategy.BALANCED, bulk=BulkThresholds(recheck_foreign_keys_from=1))
    assert report.assignments_created == 500
    keys = {key["referred_table"] for key in inspect(pg_engine).get_foreign_keys("assignments")}
    assert keys == {"supporters", "cases"}
    command.check(alembic_config(pg_engine))  # schema still matches the models
    with pytest.raises(IntegrityError), pg_engine.begin() as connection:
        connection.execute(insert(Assignment).values(supporter_id=10**9, case_id=1, strategy="x"))
