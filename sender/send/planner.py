"""The planner's database access: who gets a message in a wave, in which batch.

Set-based (INSERT ... SELECT, batch numbers from window functions): a million
supporters are staged in one statement, then planned a few batches per
transaction (sender.send.plan_chunks); see docs/SENDING.md ("Send slots and
batches") and PERFORMANCE.md ("Wave planning").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
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

from sender.core.config import Settings
from sender.core.db import rowcount, session_scope
from sender.core.languages import FALLBACK_LANGUAGE, LanguageRule, language_rule
from sender.core.models import (
    Action,
    Assignment,
    Campaign,
    Case,
    PlanRow,
    Supporter,
    Wave,
    WaveSlot,
)
from sender.core.vocabulary import SupporterStatus, WaveStatus
from sender.send.eligibility import (
    OPENING_KINDS,
    acted,
    campaign_cap,
    case_order,
    case_statuses,
    excludes_actors,
    needs_act,
    needs_open,
    recently_mailed,
    suppressed,
)
from sender.send.plan_chunks import (
    DEFAULT_CHUNKING,
    Chunking,
    Lease,
    lease_for,
    move_staged,
    take_over,
)
from sender.send.slots import SlotRow, slot_for
from sender.send.split import FollowUp, PlanScope, test_share


def claim_for_planning(session: Session, lease: Lease) -> bool:
    """Only one planner per wave: the conditional UPDATE is the lock, its lease the marker
    of a wave half-planned (sender.send.plan_chunks)."""
    result = session.execute(
        update(Wave)
        .where(
            Wave.id == lease.wave_id,
            Wave.status == WaveStatus.SCHEDULED,
            Wave.planned_at.is_(None),
        )
        .values(status=WaveStatus.SENDING, planned_at=lease.now, planning_until=lease.held)
    )
    return rowcount(result) > 0


def claim_follow_up(session: Session, lease: Lease) -> bool:
    """A sending wave with no plan in progress takes this planner's lease for a later plan."""
    result = session.execute(
        update(Wave)
        .where(
            Wave.id == lease.wave_id,
            Wave.status == WaveStatus.SENDING,
            Wave.planning_until.is_(None),
        )
        .values(planning_until=lease.held)
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


def stage_rows(
    session: Session,
    wave: Wave,
    *,
    now: datetime,
    cap: timedelta,
    batch_size: int,
    declared: Sequence[str],
    scope: PlanScope | None = None,
) -> int:
    """Every eligible supporter, numbered into batches, into plan_rows; returns how many.

    One set-based statement that only reads the tables it selects from: it
    takes no lock a web request or a worker waits for. sender.send.plan_chunks
    turns the rows into batches and messages afterwards, a few batches per
    transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Two window functions sort every candidate row; keep those sorts in memory.
        session.execute(text("SET LOCAL work_mem = '128MB'"))
        # The statement touches most rows of what it joins, but the estimates
        # say a few (a zone join is guessed at one row): a nested loop would
        # probe an index once per supporter (2.2x slower at a million).
        # Hash joins scan each table once.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    language = message_language_column(
        language_rules(declared, wave.subjects or {}, case_languages(session, wave.campaign_id))
    )
    numbered = _numbered(wave, now, cap, batch_size, language, scope)
    staged = rowcount(
        session.execute(
            insert(PlanRow).from_select(list(numbered.selected_columns.keys()), numbered),
            execution_options={"preserve_rowcount": True},
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        # Fresh rows look like an empty table: each chunk's range would be a guess.
        session.execute(text("ANALYZE plan_rows"))
    return staged


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
            .over(
                partition_by=Supporter.id,
                order_by=case_order(wave.audience, Assignment.id, Case.status),
            )
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
        rows, picked, variant = ranked, [ranked.c.pick == 1], literal("", PlanRow.variant.type)
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
        literal(wave.id, PlanRow.wave_id.type).label("wave_id"),
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


@dataclass(frozen=True)
class PlanResult:
    wave: str
    messages: int
    batches: int
    zones: int
    resumed: bool = False  # went on with a plan another planner left half-done
    complete: bool = True  # False: the wave was paused mid-plan; the rest is planned after resume


def plan_wave(
    engine: Engine,
    settings: Settings,
    wave_id: int,
    now: datetime,
    chunking: Chunking = DEFAULT_CHUNKING,
    on_chunk: Callable[[], None] | None = None,
    follow_up: FollowUp | None = None,
) -> PlanResult | None:
    """Plan a due wave, or go on with one whose planner stopped; None if there is nothing to do.

    The eligible rows are staged in one transaction, then planned a chunk of
    batches per transaction; `on_chunk` runs after each chunk's commit (the
    tick releases the batches just planned). A wave running a subject test
    stages its test share first; its remainder is a `follow_up`
    (sender.send.subject_tests), staged later from `now` on and moved the same way.
    """
    lease = lease_for(wave_id, now, chunking.lease)
    staged = _stage(engine, settings, lease, follow_up)
    resumed = staged is None
    if resumed and follow_up is not None:
        return None  # not decided yet, or another planner took the remainder
    if resumed:
        with session_scope(engine) as session:
            if not take_over(session, lease):
                return None
    moved = move_staged(engine, lease, chunking, on_chunk)
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        zones = session.scalar(select(func.count()).where(WaveSlot.wave_id == wave_id)) or 0
        return PlanResult(wave.name, moved.messages, moved.batches, zones, resumed, moved.complete)


def _stage(
    engine: Engine, settings: Settings, lease: Lease, follow_up: FollowUp | None = None
) -> int | None:
    """Claim a due wave (or its follow-up), save its slots and stage its rows, in one
    transaction.

    A planner that dies here leaves nothing: the claim rolls back with the rows.
    """
    with session_scope(engine) as session:
        scope: PlanScope | None
        earliest: datetime | None = None
        if follow_up is None:
            if not claim_for_planning(session, lease):
                return None
            scope = test_share(session, lease.wave_id, lease.now)
        else:
            if (scope := follow_up(session)) is None or not claim_follow_up(session, lease):
                session.rollback()
                return None
            earliest = lease.now
        wave = session.get_one(Wave, lease.wave_id)
        campaign = session.get_one(Campaign, wave.campaign_id)
        ends = min(wave.ends_at, campaign.window_end)
        # Never from before now: a wave launched after its start would otherwise get
        # the local windows that already closed, and every batch would miss its slot.
        starts = max(wave.starts_at, campaign.window_start, earliest or lease.now)
        window = (wave.local_window_start, wave.local_window_end)
        slots = [
            slot
            for zone in candidate_timezones(session, campaign.id)
            if (slot := slot_for(zone, starts, ends, window)) is not None
        ]
        save_slots(session, wave.id, slots)
        return stage_rows(
            session,
            wave,
            now=lease.now,
            cap=campaign_cap(
                campaign.frequency_cap_hours, timedelta(hours=settings.frequency_cap_hours)
            ),
            batch_size=settings.batch_size,
            declared=declared_languages(campaign, wave),
            scope=scope,
        )


def declared_languages(campaign: Campaign, wave: Wave) -> tuple[str, ...]:
    """The campaign's languages, its fallback first; a campaign row without any (made
    before languages were declared) speaks its waves' subject languages, English first."""
    if campaign.languages:
        return tuple(campaign.languages)
    subjects = sorted(wave.subjects or {})
    return tuple(sorted(subjects, key=lambda code: code != FALLBACK_LANGUAGE))
