"""The planner's database access: who gets a message in a wave, in which batch.

Set-based (INSERT ... SELECT, batch numbers from window functions), so a
million supporters cost a few statements in one transaction; see
docs/SENDING.md ("Send slots and batches") and PERFORMANCE.md ("Wave planning").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from sender.core.config import Settings
from sender.core.db import rowcount, session_scope
from sender.core.languages import FALLBACK_LANGUAGE, LanguageRule, language_rule
from sender.core.models import (
    Action,
    Assignment,
    Batch,
    Campaign,
    Case,
    Message,
    Supporter,
    Wave,
    WaveSlot,
)
from sender.core.vocabulary import (
    BatchStatus,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveStatus,
)
from sender.send.eligibility import (
    OPENING_KINDS,
    acted,
    campaign_cap,
    case_statuses,
    excludes_actors,
    needs_act,
    needs_open,
    recently_mailed,
    suppressed,
)
from sender.send.slots import SlotRow, slot_for
from sender.send.split import FollowUp, PlanScope, test_share


def claim_for_planning(session: Session, wave_id: int, now: datetime) -> bool:
    """Only one planner per wave: the conditional UPDATE is the lock."""
    result = session.execute(
        update(Wave)
        .where(Wave.id == wave_id, Wave.status == WaveStatus.SCHEDULED, Wave.planned_at.is_(None))
        .values(status=WaveStatus.SENDING, planned_at=now)
    )
    return rowcount(result) > 0


def candidate_timezones(session: Session, campaign_id: int) -> list[str]:
    """Distinct zones of assigned supporters: slots are computed per zone, not per person."""
    return list(
        session.scalars(
            select(Supporter.timezone)
            .distinct()
            .join(Assignment, Assignment.supporter_id == Supporter.id)
            .join(Case, Case.id == Assignment.case_id)
            .where(Case.campaign_id == campaign_id)
        )
    )


def save_slots(session: Session, wave_id: int, slots: Sequence[SlotRow]) -> None:
    session.execute(
        select(WaveSlot).where(WaveSlot.wave_id == wave_id).with_for_update()
    )  # keeps concurrent planners of one wave in line on PostgreSQL
    session.query(WaveSlot).filter(WaveSlot.wave_id == wave_id).delete()
    if slots:
        session.execute(
            insert(WaveSlot),
            [
                {
                    "wave_id": wave_id,
                    "timezone": s.timezone,
                    "slot_at": s.slot_at,
                    "send_after": s.send_after,
                    "send_before": s.send_before,
                }
                for s in slots
            ],
        )


@dataclass(frozen=True)
class BulkLoad:
    """When a plan (on PostgreSQL) inserts its messages with their foreign keys checked once."""

    # Rows from which one set-based check of the foreign keys beats one per row.
    from_rows: int = 100_000
    # How long such a plan waits for its exclusive table locks before it gives up.
    lock_timeout_ms: int = 5_000


def plan_messages(
    session: Session,
    wave: Wave,
    *,
    now: datetime,
    cap: timedelta,
    batch_size: int,
    declared: Sequence[str],
    bulk: BulkLoad = BulkLoad(),
    scope: PlanScope | None = None,
) -> tuple[int, int]:
    """Messages and their batches for every eligible supporter; returns (messages, batches).

    The numbered rows are kept once in a temporary table; the batches are made
    from them, then each message is inserted already linked to its batch. No
    message row is written twice: linking them afterwards with an UPDATE
    rewrote every row (and its index entries) a second time, over half of the
    planning time at a million supporters.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Two window functions sort every candidate row; keep those sorts in memory.
        session.execute(text("SET LOCAL work_mem = '128MB'"))
        # Every statement below touches most rows of what it joins, but the
        # estimates say a few (rows inserted in this transaction look empty;
        # a zone join is guessed at one row): a nested loop would probe an
        # index once per supporter (2.2x slower at a million) or, over the
        # new batches, go quadratic. Hash joins scan each table once.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    connection = session.connection()
    _PLAN_ROWS.drop(connection, checkfirst=True)  # left over on this connection after an error
    _PLAN_ROWS.create(connection)
    language = message_language_column(
        language_rules(declared, wave.subjects or {}, case_languages(session, wave.campaign_id))
    )
    numbered = _numbered(wave, now, cap, batch_size, language, scope)
    planned = rowcount(
        session.execute(
            insert(_PLAN_ROWS).from_select(list(numbered.selected_columns.keys()), numbered),
            execution_options={"preserve_rowcount": True},
        )
    )
    if postgres:
        session.execute(text("ANALYZE plan_rows"))
    batches = rowcount(
        session.execute(
            insert(Batch).from_select(_BATCH_COLUMNS, _grouped(wave.id, now)),
            execution_options={"preserve_rowcount": True},
        )
    )
    # No ON CONFLICT: the claim lets one planner plan a wave, once, and the
    # rows hold one per supporter, so a duplicate would be a bug; the unique
    # key still refuses it (the plan rolls back whole). ON CONFLICT's
    # speculative insertion cost 30 % of this insert.
    linking = insert(Message).from_select(_MESSAGE_COLUMNS, _linked(wave.id, now))
    if postgres and planned >= bulk.from_rows:
        messages = _insert_then_check_keys(session, linking, bulk.lock_timeout_ms)
        # Statistics from before the load say a supporter has hundreds of
        # messages; the send pipeline's frequency-cap probe then became a
        # scan of the whole table per batch (60 ms instead of 5 at a million)
        # until autovacuum caught up. Fresh ones come with the commit.
        session.execute(text("ANALYZE messages, batches"))
    else:
        messages = rowcount(session.execute(linking, execution_options={"preserve_rowcount": True}))
    _PLAN_ROWS.drop(connection)
    return messages, batches


# Batches first: every send-pipeline transaction starts with its batch, so
# workers queue behind a big plan instead of deadlocking with it (any other
# deadlock is broken by PostgreSQL and the plan is retried on the next tick).
_LOCK_ORDER = ("batches", "waves", "cases", "supporters", "messages")


def _insert_then_check_keys(session: Session, linking: Any, lock_timeout_ms: int) -> int:
    """Insert the messages with their foreign keys checked once, afterwards.

    PostgreSQL checks each of the four foreign keys of `messages` row by row
    (a query and a row lock each): 70 % of the insert at 100,000 rows. The
    documented bulk-load recipe, as in sender.audience.assignment: drop the constraints
    and add them back, which validates every row in one pass. DDL is
    transactional: nobody sees the table without its constraints, and the
    exclusive locks, taken in the pipeline's own order, hold the tables
    still until the plan commits.
    """
    # A waiting ACCESS EXCLUSIVE request queues every later reader behind it:
    # behind a long report query the whole web app would stall. Give up after
    # a few seconds instead; the plan rolls back whole and the next tick retries.
    session.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
    session.execute(text(f"LOCK TABLE {', '.join(_LOCK_ORDER)} IN ACCESS EXCLUSIVE MODE"))
    session.execute(text("SET LOCAL lock_timeout = 0"))  # the locks are held now
    constraints = sorted(
        Message.metadata.tables[Message.__tablename__].foreign_key_constraints,
        key=lambda constraint: str(constraint.name),
    )
    for constraint in constraints:
        session.execute(DropConstraint(constraint))
    messages = rowcount(session.execute(linking, execution_options={"preserve_rowcount": True}))
    for constraint in constraints:
        session.execute(AddConstraint(constraint))
    return messages


# One row per message to plan, numbered into batches; lives for one planning.
_PLAN_ROWS = Table(
    "plan_rows",
    MetaData(),
    Column("supporter_id", Integer),
    Column("case_id", Integer),
    Column("language", Message.__table__.c.language.type),
    Column("slot_at", WaveSlot.__table__.c.slot_at.type),
    Column("variant", Batch.__table__.c.variant.type),
    Column("batch_seq", Integer),
    Column("timezone", Supporter.__table__.c.timezone.type),
    prefixes=["TEMPORARY"],
)
_BATCH_COLUMNS = [
    "wave_id",
    "case_id",
    "language",
    "slot_at",
    "variant",
    "seq",
    "send_after",
    "send_before",
    "size",
    "status",
    "attempts",
    "created_at",
]
_MESSAGE_COLUMNS = [
    "wave_id",
    "supporter_id",
    "case_id",
    "language",
    "batch_id",
    "status",
    "created_at",
]


def case_languages(session: Session, campaign_id: int) -> dict[int, frozenset[str]]:
    """The languages each case of the campaign has text in (a few rows).

    Every case, whatever its status: which cases a wave reaches is the
    audience's business (a good-news wave reaches resolved ones).
    """
    rows = session.execute(select(Case.id, Case.content).where(Case.campaign_id == campaign_id))
    return {case_id: frozenset(content or {}) for case_id, content in rows}


def language_rules(
    declared: Sequence[str], subjects: Mapping[str, str], cases: Mapping[int, frozenset[str]]
) -> dict[frozenset[int], LanguageRule]:
    """One rule per set of cases that speak the same languages (usually one set).

    A message's language must be one its case has text in and its wave has a
    subject in: available = the case's languages that the wave's subjects name.
    """
    groups: dict[frozenset[str], set[int]] = {}
    for case_id, languages in cases.items():
        groups.setdefault(languages & frozenset(subjects), set()).add(case_id)
    return {frozenset(ids): language_rule(declared, available) for available, ids in groups.items()}


def message_language_column(rules: Mapping[frozenset[int], LanguageRule]) -> ColumnElement[str]:
    """`sender.core.languages.message_language` for each row, as one SQL expression.

    Set-based: a CASE over the supporter's language and country with a few
    constant IN lists (PostgreSQL hashes them), built from the unrolled rule,
    so a million rows cost no per-row Python and no extra query.
    """
    if not rules:
        return literal(FALLBACK_LANGUAGE)
    ordered = sorted(rules.items(), key=lambda item: min(item[0]))
    *leading, (_, last) = ordered
    if not leading:
        return _rule_column(last)
    return case(
        *((Assignment.case_id.in_(sorted(ids)), _rule_column(rule)) for ids, rule in leading),
        else_=_rule_column(last),
    )


def _rule_column(rule: LanguageRule) -> ColumnElement[str]:
    whens: list[tuple[ColumnElement[bool], ColumnElement[str]]] = []
    if rule.exact:
        own: ColumnElement[str] = Supporter.__table__.c.language
        whens.append((Supporter.language.in_(rule.exact), own))
    for language, choices in rule.by_language.items():
        for chosen, countries in _by_answer(
            {c: v for c, v in choices.items() if c is not None}
        ).items():
            whens.append(
                (
                    and_(Supporter.language == language, Supporter.country.in_(countries)),
                    literal(chosen),
                )
            )
        whens.append((Supporter.language == language, literal(choices[None])))
    for chosen, countries in _by_answer(rule.by_country).items():
        whens.append((Supporter.country.in_(countries), literal(chosen)))
    if not whens:
        return literal(rule.fallback)
    return case(*whens, else_=literal(rule.fallback))


def _by_answer(choices: Mapping[str, str]) -> dict[str, list[str]]:
    """{country: language} -> {language: [countries]}: one IN list per answer."""
    grouped: dict[str, list[str]] = {}
    for country, chosen in sorted(choices.items()):
        grouped.setdefault(chosen, []).append(country)
    return grouped


def _numbered(
    wave: Wave,
    now: datetime,
    cap: timedelta,
    batch_size: int,
    language: ColumnElement[str],
    scope: PlanScope | None = None,
) -> Select[Any]:
    """Eligible supporters, one case each, numbered into batches per (case, language, slot);
    a subject test's `scope` narrows them to its share and adds the variant to the key."""
    conditions: list[ColumnElement[bool]] = [
        Case.campaign_id == wave.campaign_id,
        _case_status(wave.audience),
        Supporter.status == SupporterStatus.SUBSCRIBED,
        Supporter.consent.is_(True),
        Supporter.email.is_not(None),
        ~suppressed(Supporter.email_hash),
        ~recently_mailed(Supporter.id, wave.id, now - cap),
    ]
    if excludes_actors(wave.audience):
        conditions.append(~acted(Supporter.id, Assignment.case_id))
    if needs_act(wave.audience):
        conditions.append(acted(Supporter.id, Assignment.case_id))
    if needs_open(wave.audience):
        conditions.append(
            exists().where(
                Action.supporter_id == Supporter.id,
                Action.case_id == Assignment.case_id,
                Action.kind.in_(OPENING_KINDS),
            )
        )
    ranked = (
        select(
            Supporter.id.label("supporter_id"),
            Assignment.case_id.label("case_id"),
            language.label("language"),
            WaveSlot.slot_at.label("slot_at"),
            Supporter.timezone.label("timezone"),
            func.row_number()
            .over(partition_by=Supporter.id, order_by=_case_order(wave.audience))
            .label("pick"),
        )
        .select_from(Assignment)
        .join(Supporter, Supporter.id == Assignment.supporter_id)
        .join(Case, Case.id == Assignment.case_id)
        .join(WaveSlot, and_(WaveSlot.wave_id == wave.id, WaveSlot.timezone == Supporter.timezone))
        .where(*conditions)
        .subquery("ranked")
    )
    variant: ColumnElement[str]
    if scope is None:
        rows, picked, variant = ranked, [ranked.c.pick == 1], literal("", Batch.variant.type)
        key = [ranked.c.case_id, ranked.c.language, ranked.c.slot_at]
    else:
        rows = scope.narrow(ranked, wave.id)
        picked, variant = [], rows.c.variant
        key = [rows.c.case_id, rows.c.language, rows.c.slot_at, rows.c.variant]
    seq = (
        # No order within a group: which 1,000 share a batch does not
        # matter, and a tie-breaking key made this sort 2.5x slower.
        func.row_number().over(partition_by=key) - 1
    ) // batch_size
    return select(
        rows.c.supporter_id,
        rows.c.case_id,
        rows.c.language,
        rows.c.slot_at,
        variant.label("variant"),
        (seq + scope.first_seq if scope and scope.first_seq else seq).label("batch_seq"),
        rows.c.timezone,
    ).where(*picked)


def _case_status(audience: str) -> ColumnElement[bool]:
    statuses = case_statuses(audience)
    # One status as `=`: the statement most waves plan with stays the one benchmarked.
    return Case.status == statuses[0] if len(statuses) == 1 else Case.status.in_(statuses)


def _case_order(audience: str) -> list[Any]:
    """Which of a supporter's cases the wave is about: the first assigned, except that
    a good-news audience takes a resolved case first (its news is the point)."""
    if CaseStatus.RESOLVED.value not in case_statuses(audience):
        return [Assignment.id]
    return [case((Case.status == CaseStatus.RESOLVED, 0), else_=1), Assignment.id]


def _grouped(wave_id: int, now: datetime) -> Select[Any]:
    """One batch per (case, language, slot, number): its zones' latest slot and earliest end."""
    rows = _PLAN_ROWS.c
    return (
        select(
            literal(wave_id),
            rows.case_id,
            rows.language,
            rows.slot_at,
            rows.variant,
            rows.batch_seq,
            func.max(WaveSlot.send_after),
            func.min(WaveSlot.send_before),
            func.count(),
            literal(BatchStatus.PENDING.value),
            literal(0),
            literal(now, Batch.created_at.type),
        )
        .select_from(_PLAN_ROWS)
        .join(WaveSlot, and_(WaveSlot.wave_id == wave_id, WaveSlot.timezone == rows.timezone))
        .group_by(rows.case_id, rows.language, rows.slot_at, rows.variant, rows.batch_seq)
    )


def _linked(wave_id: int, now: datetime) -> Select[Any]:
    """Each planned row with the id of the batch just made for it."""
    rows = _PLAN_ROWS.c
    return (
        select(
            literal(wave_id),
            rows.supporter_id,
            rows.case_id,
            rows.language,
            Batch.id,
            literal(MessageStatus.PLANNED.value),
            literal(now, Message.created_at.type),
        )
        .select_from(_PLAN_ROWS)
        .join(
            Batch,
            and_(
                Batch.wave_id == wave_id,
                Batch.case_id == rows.case_id,
                Batch.language == rows.language,
                Batch.slot_at == rows.slot_at,
                Batch.variant == rows.variant,
                Batch.seq == rows.batch_seq,
            ),
        )
        # A batch's rows together on few pages (its reads and its acceptance
        # touch 30 pages, not 1,000), in supporter order within it, so the
        # supporter indexes take ordered runs instead of random inserts.
        .order_by(Batch.id, rows.supporter_id)
    )


@dataclass(frozen=True)
class PlanResult:
    wave: str
    messages: int
    batches: int
    zones: int


def plan_wave(
    engine: Engine,
    settings: Settings,
    wave_id: int,
    now: datetime,
    bulk: BulkLoad = BulkLoad(),
    follow_up: FollowUp | None = None,
) -> PlanResult | None:
    """Insert the wave's messages and batches in one transaction; None if another planner won.

    A wave running a subject test plans its test share here first; its remainder
    is a `follow_up` (sender.send.subject_tests), planned later from `now` on.
    """
    with session_scope(engine) as session:
        scope: PlanScope | None
        if follow_up is None:
            if not claim_for_planning(session, wave_id, now):
                return None
            scope, earliest = test_share(session, wave_id, now), None
        elif (scope := follow_up(session)) is None:
            return None
        else:
            earliest = now
        wave = session.get(Wave, wave_id)
        campaign = session.get(Campaign, wave.campaign_id) if wave else None
        assert wave is not None and campaign is not None
        ends = min(wave.ends_at, campaign.window_end)
        starts = max(wave.starts_at, campaign.window_start, earliest or wave.starts_at)
        window = (wave.local_window_start, wave.local_window_end)
        slots = [
            slot
            for zone in candidate_timezones(session, campaign.id)
            if (slot := slot_for(zone, starts, ends, window)) is not None
        ]
        save_slots(session, wave.id, slots)
        messages, batches = plan_messages(
            session,
            wave,
            now=now,
            cap=campaign_cap(
                campaign.frequency_cap_hours, timedelta(hours=settings.frequency_cap_hours)
            ),
            batch_size=settings.batch_size,
            declared=declared_languages(campaign, wave),
            bulk=bulk,
            scope=scope,
        )
        return PlanResult(wave.name, messages, batches, len(slots))


def declared_languages(campaign: Campaign, wave: Wave) -> tuple[str, ...]:
    """The campaign's languages, its fallback first; a campaign row without any (made
    before languages were declared) speaks its waves' subject languages, English first."""
    if campaign.languages:
        return tuple(campaign.languages)
    subjects = sorted(wave.subjects or {})
    return tuple(sorted(subjects, key=lambda code: code != FALLBACK_LANGUAGE))
