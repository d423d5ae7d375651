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
               exclusions allow. Supporters who may get the same cases form a
               group; groups with the fewest allowed cases go first, and each
               group raises the least-loaded of its cases first (water-filling),
               so the unrestricted majority fills what exclusions leave.
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

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain, cycle, repeat
from operator import itemgetter

from sqlalchemy import Connection, Engine, Exists, delete, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from sender.campaign.campaigns import require_open, resolve_campaign
from sender.core.errors import InvalidInput
from sender.core.models import Assignment, Base, Campaign, Case, Supporter, utcnow
from sender.core.vocabulary import CaseStatus, SupporterStatus

SupporterRow = tuple[int, str | None, str | None]  # id, country, case_preference
_STREAM_CHUNK = 50_000
_INSERT_CHUNK = 50_000
_COLUMNS = "supporter_id, case_id, strategy, created_at"


@dataclass(frozen=True)
class BulkThresholds:
    """Row counts from which PostgreSQL takes the bulk paths; tests lower them."""

    recheck_foreign_keys_from: int = 100_000  # below this the per-row checks are cheaper
    truncate_from: int = 100_000  # below this a DELETE is cheap and locks no whole table


BULK = BulkThresholds()


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


@dataclass(frozen=True)
class _Group:
    """Supporters who may get the same cases: one country, or one preference."""

    allowed: tuple[int, ...]  # target indexes still to choose from, in tie order
    first: int | None  # a preferred case already given to each member
    members: tuple[int, ...]  # supporter ids, in the seeded order


def _water_fill(load: list[int], allowed: Sequence[int], units: int, cap: int) -> list[int]:
    """Share `units` over `allowed`, raising the lowest loads first, at most `cap` each.

    Returns the count per allowed case (same order) and adds it to `load`.
    Ties go to the earlier case in `allowed`.
    """

    def filled(level: int) -> int:
        return sum(min(cap, max(0, level - load[i])) for i in allowed)

    low, high = min(load[i] for i in allowed), max(load[i] for i in allowed) + units
    while low < high:  # the lowest level that takes every unit
        middle = (low + high) // 2
        low, high = (middle + 1, high) if filled(middle) < units else (low, middle)
    give = [min(cap, max(0, low - 1 - load[i])) for i in allowed]
    rest = units - sum(give)
    for position, i in enumerate(allowed):
        if rest and give[position] < cap and load[i] + give[position] == low - 1:
            give[position] += 1
            rest -= 1
    for position, i in enumerate(allowed):
        load[i] += give[position]
    return give


def _even_split(load: list[int], allowed: Sequence[int], units: int) -> list[int]:
    """Share `units` so counts differ by at most one; the extras go to the least loaded."""
    base, extra = divmod(units, len(allowed))
    lightest = sorted(range(len(allowed)), key=lambda position: load[allowed[position]])
    give = [base] * len(allowed)
    for position in lightest[:extra]:
        give[position] += 1
    for position, i in enumerate(allowed):
        load[i] += give[position]
    return give


def _spread(
    members: Sequence[int], allowed: Sequence[int], counts: Sequence[int]
) -> Iterator[tuple[int, int]]:
    """(member, target index) pairs; with every count <= len(members) nobody gets a case twice."""
    sequence = chain.from_iterable(
        repeat(i, count) for i, count in zip(allowed, counts, strict=True)
    )
    return zip(cycle(members), sequence)


def _shuffled_targets(targets: Sequence[Target], seed: int) -> list[Target]:
    # The seed also decides which case wins ties, so that no case is always first.
    ordered = sorted(targets, key=lambda target: target.case_id)
    random.Random(seed).shuffle(ordered)
    return ordered


def _allowed_by_country(targets: Sequence[Target]) -> Callable[[str | None], tuple[int, ...]]:
    cache: dict[str | None, tuple[int, ...]] = {}

    def allowed(country: str | None) -> tuple[int, ...]:
        if country not in cache:
            cache[country] = tuple(
                i for i, target in enumerate(targets) if country not in target.excluded
            )
        return cache[country]

    return allowed


def _country_groups(people: Sequence[SupporterRow], targets: Sequence[Target]) -> list[_Group]:
    allowed = _allowed_by_country(targets)
    members: dict[str | None, list[int]] = defaultdict(list)
    for supporter_id, country, _ in people:
        members[country].append(supporter_id)
    # Big countries first: the small ones then even out what the big ones left.
    order = sorted(members, key=lambda country: (-len(members[country]), country or ""))
    return [_Group(allowed(country), None, tuple(members[country])) for country in order]


def _choice_groups(
    people: Sequence[SupporterRow], targets: Sequence[Target], honour_preference: bool
) -> list[_Group]:
    allowed = _allowed_by_country(targets)
    index_of = {target.slug: i for i, target in enumerate(targets)}
    members: dict[tuple[tuple[int, ...], int | None], list[int]] = defaultdict(list)
    for supporter_id, country, preference in people:
        choices = allowed(country)
        first = index_of.get(preference) if honour_preference and preference else None
        if first is not None and first in choices:
            choices = tuple(i for i in choices if i != first)
        else:
            first = None
        members[choices, first].append(supporter_id)
    # The most restricted groups first, so the unrestricted ones can fill the gaps
    # that exclusions leave.
    order = sorted(members, key=lambda key: (len(key[0]), -len(members[key]), key))
    return [_Group(choices, first, tuple(members[choices, first])) for choices, first in order]


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
    people = sorted(supporters, key=itemgetter(0))  # by id: only the seed decides the order
    random.Random(seed).shuffle(people)
    if strategy == Strategy.COUNTRY:
        groups = _country_groups(people, ordered)
    else:
        groups = _choice_groups(people, ordered, strategy == Strategy.PREFERENCE)
    for group in groups:  # preferred cases count before anything is balanced
        if group.first is not None:
            load[group.first] += len(group.members)
    pairs: list[Iterator[tuple[int, int]]] = []
    unassignable = short = honoured = 0
    for group in groups:
        size = len(group.members)
        wanted = cases_per_supporter - (group.first is not None)
        count = min(wanted, len(group.allowed))
        if group.first is not None:
            honoured += size
            pairs.append(zip(group.members, repeat(group.first)))
        elif count == 0:
            unassignable += size
            continue
        short += size if count < wanted else 0
        if count:
            counts = (
                _even_split(load, group.allowed, size * count)
                if strategy == Strategy.COUNTRY
                else _water_fill(load, group.allowed, size * count, cap=size)
            )
            pairs.append(_spread(group.members, group.allowed, counts))
    case_ids = [target.case_id for target in ordered]
    # Sorted: writing in key order keeps index and foreign-key lookups sequential.
    rows = tuple(sorted((supporter, case_ids[i]) for supporter, i in chain.from_iterable(pairs)))
    return Plan(rows, len(people), unassignable, short, honoured)


# -- database side -------------------------------------------------------------------


@dataclass(frozen=True)
class _CampaignCase:
    id: int
    slug: str
    person: str
    status: str
    excluded: frozenset[str]


def _campaign_cases(connection: Connection, campaign_slug: str | None) -> list[_CampaignCase]:
    with Session(bind=connection) as session:
        campaign_id = require_open(resolve_campaign(session, campaign_slug)).id
    # FOR UPDATE on the campaign row: two `campaign assign` runs at once would
    # otherwise both see the same supporters as unassigned.
    connection.execute(select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())
    query = (
        select(Case.id, Case.slug, Case.person, Case.status, Case.excluded_countries)
        .where(Case.campaign_id == campaign_id)
        .order_by(Case.id)
    )
    return [
        _CampaignCase(id_, slug, person, status, frozenset(excluded or ()))
        for id_, slug, person, status, excluded in connection.execute(query)
    ]


def _assigned_in_campaign(case_ids: Sequence[int]) -> Exists:
    return exists().where(Assignment.supporter_id == Supporter.id, Assignment.case_id.in_(case_ids))


def _stream_supporters(
    connection: Connection, case_ids: Sequence[int], unassigned_only: bool
) -> Iterator[SupporterRow]:
    conditions = [
        Supporter.forgotten_at.is_(None),
        Supporter.status != SupporterStatus.FORGOTTEN.value,
    ]
    if unassigned_only:
        conditions.append(~_assigned_in_campaign(case_ids))
    query = select(Supporter.id, Supporter.country, Supporter.case_preference).where(*conditions)
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        # The whole result is wanted: plan for total time, not for the first
        # rows as a cursor otherwise would (a nested-loop anti-join, ~5x slower).
        connection.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
        cursor = driver.cursor(name="assign_supporters")  # type: ignore[union-attr]
        cursor.execute(str(compiled), compiled.params)
    else:
        cursor = driver.cursor()  # type: ignore[union-attr]
        cursor.execute(
            str(compiled), [compiled.params[name] for name in compiled.positiontup or ()]
        )
    # The driver's own tuples, fetched in blocks (a named cursor streams on
    # PostgreSQL): SQLAlchemy's Row objects cost more than the balancing.
    try:
        while rows := cursor.fetchmany(_STREAM_CHUNK):
            yield from rows
    finally:
        cursor.close()


def _counts(connection: Connection, case_ids: Sequence[int]) -> dict[int, int]:
    query = (
        select(Assignment.case_id, func.count())
        .where(Assignment.case_id.in_(case_ids))
        .group_by(Assignment.case_id)
    )
    return {int(case_id): int(count) for case_id, count in connection.execute(query)}


def _copy_assignments(
    connection: Connection, rows: Sequence[tuple[int, int]], suffix: str, recheck_from: int
) -> None:
    """COPY the rows; for a big batch, check the foreign keys once afterwards.

    PostgreSQL checks each foreign key row by row on insert, which costs more
    than the COPY itself at a million rows. Its documented bulk-load recipe is
    to drop the constraints and add them back, which validates every row in
    one set-based pass. DDL is transactional and holds an exclusive lock on
    `assignments` until commit, so no other session ever sees the table
    without its constraints; a violation rolls the whole assignment back.
    """
    table = Base.metadata.tables[Assignment.__tablename__]
    constraints = sorted(table.foreign_key_constraints, key=lambda constraint: str(constraint.name))
    recheck = len(rows) >= recheck_from
    if recheck:
        for constraint in constraints:
            connection.execute(DropConstraint(constraint))
    cursor = connection.connection.cursor()
    with cursor.copy(f"COPY assignments ({_COLUMNS}) FROM STDIN") as copy:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            copy.write("".join(f"{s}\t{c}{suffix}" for s, c in chunk))
    if recheck:
        for constraint in constraints:
            connection.execute(AddConstraint(constraint))


def _remove_assignments(connection: Connection, case_ids: Sequence[int], truncate_from: int) -> int:
    """Delete the campaign's assignments; how many there were.

    When the table holds nothing else, PostgreSQL empties it with TRUNCATE:
    deleting a million rows one by one, then inserting next to their dead
    index entries, doubled the time of a reassignment. TRUNCATE is
    transactional (a failed run restores every row) and takes the same
    exclusive lock the foreign-key recheck of such a batch takes anyway. Unlike
    DELETE it is not MVCC-safe: a transaction whose snapshot predates the commit
    and that first reads assignments afterwards sees the table empty, which a
    reassignment (an operator's deliberate step) can afford.
    """
    if connection.dialect.name == "postgresql":
        existing = sum(_counts(connection, case_ids).values())
        # Other campaigns' cases first (a small table), then their rows through
        # the case_id index: a join with NOT IN read every assignment.
        other_cases = list(connection.scalars(select(Case.id).where(Case.id.not_in(case_ids))))
        others = bool(other_cases) and connection.scalar(
            select(exists().where(Assignment.case_id.in_(other_cases)))
        )
        if existing >= truncate_from and not others:
            connection.exec_driver_sql("TRUNCATE assignments")
            return existing
    removed = connection.execute(delete(Assignment).where(Assignment.case_id.in_(case_ids)))
    return int(removed.rowcount)


def write_assignments(
    connection: Connection,
    rows: Sequence[tuple[int, int]],
    strategy: Strategy,
    bulk: BulkThresholds = BULK,
) -> None:
    """Insert (supporter_id, case_id) rows in bulk, inside the caller's transaction.

    Per-row ORM objects or per-row parameter processing would cost more than
    the balancing itself at a million rows, so the constant columns are
    converted once and the rows go to the driver as they are.
    """
    dialect = connection.dialect
    to_db = Assignment.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    stamp = to_db(utcnow()) if to_db else utcnow()
    if dialect.name == "postgresql":
        suffix = f"\t{strategy}\t{utcnow().isoformat()}\n"
        _copy_assignments(connection, rows, suffix, bulk.recheck_foreign_keys_from)
        return
    statement = "INSERT INTO assignments (" + _COLUMNS + ") VALUES (?, ?, ?, ?)"  # noqa: S608
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        connection.exec_driver_sql(statement, [(s, c, str(strategy), stamp) for s, c in chunk])


def assign(
    engine: Engine,
    strategy: Strategy | str,
    cases_per_supporter: int = 1,
    seed: int = 0,
    reassign: bool = False,
    campaign_slug: str | None = None,
    bulk: BulkThresholds = BULK,
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
            raise InvalidInput(
                "the campaign has no active case to assign: load its cases with"
                " `campaign campaigns create DIR` or `campaign cases load FILE`"
            )
        replaced = _remove_assignments(connection, all_ids, bulk.truncate_from) if reassign else 0
        # The campaign row is locked (FOR UPDATE), so nobody else changes its
        # assignments meanwhile: the counts after writing are known without a query.
        initial = {} if reassign else _counts(connection, all_ids)
        targets = [Target(case.id, case.slug, case.excluded) for case in active]
        plan = plan_assignments(
            _stream_supporters(connection, all_ids, unassigned_only=not reassign),
            targets,
            strategy,
            cases_per_supporter,
            seed,
            initial_load=initial,
        )
        write_assignments(connection, plan.rows, strategy, bulk)
        counts = Counter(initial)
        counts.update(case_id for _, case_id in plan.rows)
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


def _loads(cases: Sequence[_CampaignCase], counts: dict[int, int]) -> tuple[CaseLoad, ...]:
    total = sum(counts.values()) or 1
    return tuple(
        CaseLoad(
            case.slug,
            case.person,
            case.status,
            counts.get(case.id, 0),
            counts.get(case.id, 0) / total,
        )
        for case in cases
        if case.status == CaseStatus.ACTIVE or counts.get(case.id)
    )
