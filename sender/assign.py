"""Assignment: which case(s) each supporter is asked to write for.

Who is assigned: every supporter who has not been forgotten, whatever their
subscription status or consent. Assignment only records which case a person
would get; the send pipeline checks subscription, consent and suppressions at
send time, so a supporter who re-subscribes later already has a case and the
per-case shares stay stable when people unsubscribe mid-campaign.

Only active cases are handed out. Safety exclusions hold for every strategy:
a case is never given to a supporter whose country is in its
`excluded_countries`; a supporter with no allowed case is reported as
unassignable. A supporter with no country set gets any case.

Strategies (all deterministic for a given seed):

* balanced   - spread supporters over the active cases as evenly as the
               exclusions allow: each pick goes to the least-loaded allowed case.
* preference - honour `Supporter.case_preference` (a case slug) when that case
               is active and allowed for the supporter; fill the rest balanced.
* country    - balance within each country: every country's supporters are
               spread evenly over the cases allowed to them (counts per case
               differ by at most one inside a country), ties going to the case
               least loaded overall, so the global spread stays balanced too.
               Useful when national sections report and follow up per country.

A re-run assigns only supporters who have no assignment in the campaign yet,
continuing the existing balance; `reassign=True` deletes the campaign's
assignments and starts over, in the same transaction.

The balancing runs in Python over (id, country, preference) tuples streamed
from the database, and rows are written in bulk (COPY on PostgreSQL).
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from sqlalchemy import Connection, Engine, delete, exists, func, insert, select

from sender.campaigns import DEFAULT_SLUG
from sender.errors import InvalidInput
from sender.models import Assignment, Campaign, Case, Supporter, utcnow
from sender.vocabulary import CaseStatus, SupporterStatus

SupporterRow = tuple[int, str | None, str | None]  # id, country, case_preference
_STREAM_CHUNK = 50_000
_INSERT_CHUNK = 20_000
_SCALE = 1 << 40  # country strategy: order by the country's count, then the global load


class Strategy(StrEnum):
    BALANCED = "balanced"
    PREFERENCE = "preference"
    COUNTRY = "country"


@dataclass(frozen=True)
class Target:
    """An active case as the balancer sees it."""

    case_id: int
    slug: str
    excluded: frozenset[str]


@dataclass(frozen=True)
class Plan:
    rows: tuple[tuple[int, int], ...]  # (supporter_id, case_id)
    supporters: int
    unassignable: int
    short: int  # fewer allowed cases than cases_per_supporter
    preferences_honoured: int


@dataclass(frozen=True)
class CaseLoad:
    slug: str
    person: str
    status: str
    assignments: int
    share: float


@dataclass(frozen=True)
class AssignReport:
    strategy: Strategy
    supporters_considered: int
    assignments_created: int
    assignments_replaced: int
    unassignable: int
    short: int
    preferences_honoured: int
    cases: tuple[CaseLoad, ...]


class _Balancer:
    """Least-loaded choice among the cases a supporter's country allows."""

    def __init__(self, targets: Sequence[Target], load: list[int], k: int) -> None:
        self.targets = targets
        self.load = load
        self.k = k
        self._allowed: dict[str | None, tuple[int, ...]] = {}

    def allowed(self, country: str | None) -> tuple[int, ...]:
        found = self._allowed.get(country)
        if found is None:
            found = tuple(
                i for i, target in enumerate(self.targets) if country not in target.excluded
            )
            self._allowed[country] = found
        return found

    def pick(
        self, choices: Sequence[int], count: int, key: Callable[[int], int] | None = None
    ) -> list[int]:
        key = key or self.load.__getitem__
        # min() and nsmallest() keep the first of equal keys: ties go by target order.
        chosen = [min(choices, key=key)] if count == 1 else heapq.nsmallest(count, choices, key)
        for index in chosen:
            self.load[index] += 1
        return chosen


def _shuffled_targets(targets: Sequence[Target], seed: int) -> list[Target]:
    # The seed also decides which case wins ties, so that no case is always first.
    ordered = sorted(targets, key=lambda target: target.case_id)
    random.Random(seed).shuffle(ordered)
    return ordered


def plan_assignments(
    supporters: Iterable[SupporterRow],
    targets: Sequence[Target],
    strategy: Strategy,
    cases_per_supporter: int = 1,
    seed: int = 0,
    initial_load: dict[int, int] | None = None,
) -> Plan:
    """Choose cases for `supporters` (pure: no database)."""
    if cases_per_supporter < 1:
        raise InvalidInput("cases per supporter must be at least 1")
    ordered = _shuffled_targets(targets, seed)
    load = [(initial_load or {}).get(target.case_id, 0) for target in ordered]
    balancer = _Balancer(ordered, load, cases_per_supporter)
    people = sorted(supporters)  # by id: the seed alone decides the order below
    random.Random(seed).shuffle(people)
    choose = {
        Strategy.BALANCED: _choose_balanced,
        Strategy.PREFERENCE: _choose_preferred,
        Strategy.COUNTRY: _choose_by_country,
    }[strategy]
    picks, honoured = choose(people, balancer)
    rows: list[tuple[int, int]] = []
    unassignable = short = 0
    for supporter_id, chosen in picks:
        if not chosen:
            unassignable += 1
            continue
        short += len(chosen) < cases_per_supporter
        rows.extend((supporter_id, ordered[index].case_id) for index in chosen)
    return Plan(tuple(rows), len(people), unassignable, short, honoured)


Picks = tuple[list[tuple[int, list[int]]], int]


def _choose_balanced(people: Sequence[SupporterRow], balancer: _Balancer) -> Picks:
    picks = []
    for supporter_id, country, _ in people:
        allowed = balancer.allowed(country)
        count = min(balancer.k, len(allowed))
        picks.append((supporter_id, balancer.pick(allowed, count) if count else []))
    return picks, 0


def _choose_preferred(people: Sequence[SupporterRow], balancer: _Balancer) -> Picks:
    index_of = {target.slug: i for i, target in enumerate(balancer.targets)}
    preferred: dict[int, int] = {}
    # Preferences first, so that the balanced fill sees their load.
    for supporter_id, country, preference in people:
        index = index_of.get(preference) if preference else None
        if index is not None and index in balancer.allowed(country):
            balancer.load[index] += 1
            preferred[supporter_id] = index
    picks = []
    for supporter_id, country, _ in people:
        first = preferred.get(supporter_id)
        allowed = balancer.allowed(country)
        if first is not None:
            allowed = tuple(i for i in allowed if i != first)
        count = min(balancer.k - (first is not None), len(allowed))
        rest = balancer.pick(allowed, count) if count else []
        picks.append((supporter_id, [first, *rest] if first is not None else rest))
    return picks, len(preferred)


def _choose_by_country(people: Sequence[SupporterRow], balancer: _Balancer) -> Picks:
    groups: dict[str | None, list[SupporterRow]] = defaultdict(list)
    for person in people:
        groups[person[1]].append(person)
    # Big countries first: the small ones then even out what the big ones left.
    order = sorted(groups, key=lambda country: (-len(groups[country]), country or ""))
    picks = []
    for country in order:
        in_country = [0] * len(balancer.targets)

        def key(index: int, in_country: list[int] = in_country) -> int:
            return in_country[index] * _SCALE + balancer.load[index]

        allowed = balancer.allowed(country)
        count = min(balancer.k, len(allowed))
        for supporter_id, _, _ in groups[country]:
            chosen = balancer.pick(allowed, count, key) if count else []
            for index in chosen:
                in_country[index] += 1
            picks.append((supporter_id, chosen))
    return picks, 0


# -- database side -------------------------------------------------------------------


def _campaign_cases(connection: Connection, campaign_slug: str) -> list[Case]:
    campaign_id = connection.scalar(select(Campaign.id).where(Campaign.slug == campaign_slug))
    if campaign_id is None:
        raise InvalidInput(f"no campaign {campaign_slug!r}: run `campaign cases load FILE` first")
    rows = connection.execute(select(Case).where(Case.campaign_id == campaign_id))
    return [Case(**row._mapping) for row in rows]


def _assigned_in_campaign(case_ids: Sequence[int]):  # type: ignore[no-untyped-def]
    return exists().where(Assignment.supporter_id == Supporter.id, Assignment.case_id.in_(case_ids))


def _stream_unassigned(connection: Connection, case_ids: Sequence[int]) -> Iterable[SupporterRow]:
    query = select(Supporter.id, Supporter.country, Supporter.case_preference).where(
        Supporter.forgotten_at.is_(None),
        Supporter.status != SupporterStatus.FORGOTTEN,
        ~_assigned_in_campaign(case_ids),
    )
    result = connection.execution_options(yield_per=_STREAM_CHUNK).execute(query)
    yield from cast(Iterator[SupporterRow], map(tuple, result))


def _counts(connection: Connection, case_ids: Sequence[int]) -> dict[int, int]:
    query = (
        select(Assignment.case_id, func.count())
        .where(Assignment.case_id.in_(case_ids))
        .group_by(Assignment.case_id)
    )
    return {int(case_id): int(count) for case_id, count in connection.execute(query)}


def write_assignments(
    connection: Connection, rows: Sequence[tuple[int, int]], strategy: Strategy
) -> None:
    """Insert (supporter_id, case_id) rows in bulk, inside the caller's transaction."""
    created = utcnow()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.cursor()
        copy_sql = "COPY assignments (supporter_id, case_id, strategy, created_at) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for supporter_id, case_id in rows:
                copy.write_row((supporter_id, case_id, str(strategy), created))
        return
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        connection.execute(
            insert(Assignment),
            [
                {"supporter_id": s, "case_id": c, "strategy": str(strategy), "created_at": created}
                for s, c in chunk
            ],
        )


def assign(
    engine: Engine,
    strategy: Strategy | str,
    cases_per_supporter: int = 1,
    seed: int = 0,
    reassign: bool = False,
    campaign_slug: str = DEFAULT_SLUG,
) -> AssignReport:
    """Assign cases to supporters who have none yet (all of them with `reassign`)."""
    try:
        strategy = Strategy(strategy)
    except ValueError as error:
        known = ", ".join(s.value for s in Strategy)
        raise InvalidInput(f"unknown strategy {strategy!r} (one of: {known})") from error
    with engine.begin() as connection:
        cases = _campaign_cases(connection, campaign_slug)
        all_ids = [case.id for case in cases]
        active = [case for case in cases if case.status == CaseStatus.ACTIVE]
        if not active:
            raise InvalidInput(f"campaign {campaign_slug!r} has no active case to assign")
        replaced = 0
        if reassign:
            replaced = connection.execute(
                delete(Assignment).where(Assignment.case_id.in_(all_ids))
            ).rowcount
        targets = [Target(c.id, c.slug, frozenset(c.excluded_countries or ())) for c in active]
        plan = plan_assignments(
            _stream_unassigned(connection, all_ids),
            targets,
            strategy,
            cases_per_supporter,
            seed,
            initial_load=_counts(connection, all_ids),
        )
        write_assignments(connection, plan.rows, strategy)
        counts = _counts(connection, all_ids)
    return AssignReport(
        strategy=strategy,
        supporters_considered=plan.supporters,
        assignments_created=len(plan.rows),
        assignments_replaced=replaced,
        unassignable=plan.unassignable,
        short=plan.short,
        preferences_honoured=plan.preferences_honoured,
        cases=_loads(cases, counts),
    )


def _loads(cases: Sequence[Case], counts: dict[int, int]) -> tuple[CaseLoad, ...]:
    total = sum(counts.values()) or 1
    return tuple(
        CaseLoad(
            case.slug,
            case.person,
            case.status,
            counts.get(case.id, 0),
            counts.get(case.id, 0) / total,
        )
        for case in sorted(cases, key=lambda case: case.id)
        if case.status == CaseStatus.ACTIVE or counts.get(case.id)
    )
