"""Who a draft wave would reach, before it is launched: the launch confirmation's figures.

The same rules as planning (sender.send.eligibility), counted instead of
staged: one case per supporter (the first assigned), and each left-out
supporter named by the first rule that leaves them out. Languages are the
supporters' own; the planner may fall back to another one the case has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Subquery,
    and_,
    case,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from sender.core.db import session_scope
from sender.core.models import Assignment, Campaign, Case, Supporter, Wave
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import SupporterStatus
from sender.send.eligibility import (
    SkipReason,
    acting_pairs,
    campaign_cap,
    case_order,
    case_statuses,
    excludes_actors,
    needs_act,
    needs_open,
    opening_pairs,
    recently_mailed_ids,
    suppressed_hashes,
)
from sender.send.split import share_counts

INCLUDED = "included"


@dataclass(frozen=True)
class ReachRow:
    case: str  # the case's slug
    language: str
    reason: str  # INCLUDED, or the SkipReason that leaves them out
    supporters: int


@dataclass(frozen=True)
class TestSplit:
    """A subject test's wave at launch: who gets each variant now, who waits for the winner."""

    share: float
    now: dict[str, int]  # per variant, in the test share
    later: int  # the remainder, sent the winner once the test is decided

    @property
    def tested(self) -> int:
        return sum(self.now.values())


@dataclass(frozen=True)
class Reach:
    rows: tuple[ReachRow, ...]
    test: SubjectTestSpec | None = None

    def split(self) -> TestSplit | None:
        """The test share's draw over these counts (sender.send.split); None without a test.
        Exact while every supporter gets their own language (the planner may fall back)."""
        if self.test is None:
            return None
        tested = share_counts(
            [r.supporters for r in self.included], self.test.names, self.test.share
        )
        return TestSplit(self.test.share, tested, self.total - sum(tested.values()))

    @property
    def included(self) -> tuple[ReachRow, ...]:
        return tuple(r for r in self.rows if r.reason == INCLUDED)

    @property
    def total(self) -> int:
        return sum(r.supporters for r in self.included)

    def excluded(self) -> dict[str, int]:
        """Left out, by reason, over every case and language."""
        out: dict[str, int] = {}
        for row in self.rows:
            if row.reason != INCLUDED:
                out[row.reason] = out.get(row.reason, 0) + row.supporters
        return out


def wave_reach(engine: Engine, wave_id: int, now: datetime, default_cap: timedelta) -> Reach:
    """Every assigned supporter judged once, by set-based joins (see `_judged`)."""
    with session_scope(engine) as session:
        statement_settings(session)
        wave = session.get_one(Wave, wave_id)
        campaign = session.get_one(Campaign, wave.campaign_id)
        cap = campaign_cap(campaign.frequency_cap_hours, default_cap)
        rows = session.execute(reach_statement(wave, now - cap)).all()
        test = wave.subject_test
    return Reach(
        tuple(ReachRow(slug, language, str(why), int(n)) for slug, language, why, n in rows),
        SubjectTestSpec.from_json(test),
    )


def reach_statement(wave: Wave, since: datetime) -> Select[Any, Any, Any, Any]:
    """(case slug, language, reason, supporters), in the planner's stratum order."""
    judged = _judged(wave, since)
    # Counted over every assignment row, only a supporter's pick adding one: filtering
    # `pick = 1` first made PostgreSQL guess 0.5 % of the rows and sort them all.
    picked = func.sum(case((judged.c.pick == 1, 1), else_=0))
    counted = (
        select(judged.c.case_id, judged.c.language, judged.c.reason, picked.label("n"))
        .group_by(judged.c.case_id, judged.c.language, judged.c.reason)
        .having(picked > 0)
        .subquery("counted")
    )
    return (
        select(Case.slug, counted.c.language, counted.c.reason, counted.c.n)
        .join(Case, Case.id == counted.c.case_id)
        # The planner's stratum order (case id, language): the test share's deal follows it.
        .order_by(Case.id, counted.c.language, counted.c.reason)
    )


# PostgreSQL, this transaction only (measured at 1M supporters, docs/PERFORMANCE.md):
# room to hash a million recently mailed (about 100 MB grouped, 60 MB hashed; work_mem
# gives twice itself to hashes), else PostgreSQL scans the set once per row; JIT
# compiling cost up to 1.8 s; and parallel workers each built the same hash again.
_POSTGRES_SETTINGS = (
    "SET LOCAL work_mem = '128MB'",
    "SET LOCAL jit = off",
    "SET LOCAL max_parallel_workers_per_gather = 0",
)


def statement_settings(session: Session) -> None:
    """The reach statement's PostgreSQL settings, for the rest of this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        for setting in _POSTGRES_SETTINGS:
            session.execute(text(setting))


@dataclass(frozen=True)
class _CaseRule:
    """The audience's rule about the case itself: whether an assignment qualifies, and
    the reason given when none of a supporter's cases does."""

    qualifies: ColumnElement[bool]
    reason: ColumnElement[str]


def _judged(wave: Wave, since: datetime) -> Subquery:
    """(case_id, language, reason, pick) for every assignment to a case the wave mails about;
    pick 1 is the supporter's case.

    The planner's choice of case: the first (sender.send.eligibility `case_order`)
    among those that pass the audience's case rule, else the first of all, named by
    that rule. Each set (suppressed hashes, the recently mailed, the pairs that acted
    or opened) is hashed once: no per-row subplan.
    """
    cases = select(Case.id).where(
        Case.campaign_id == wave.campaign_id, Case.status.in_(case_statuses(wave.audience))
    )
    assigned = (
        select(Assignment.case_id, Supporter.language)
        .join(Case, Case.id == Assignment.case_id)
        .join(Supporter, Supporter.id == Assignment.supporter_id)
        .where(Case.campaign_id == wave.campaign_id, Case.status.in_(case_statuses(wave.audience)))
    )
    rule = _case_rule(wave.audience, cases)
    order = case_order(wave.audience, Assignment.id, Case.status)
    if rule is not None:
        order = [case((rule.qualifies, 0), else_=1), *order]
    reasons: list[tuple[ColumnElement[bool], str]] = [
        (Supporter.status != SupporterStatus.SUBSCRIBED, SkipReason.UNSUBSCRIBED.value),
        (Supporter.email.is_(None), SkipReason.UNSUBSCRIBED.value),
        (Supporter.consent.is_not(True), SkipReason.NO_CONSENT.value),
        # Uncorrelated INs: PostgreSQL hashes each set once (a "hashed SubPlan") while
        # it fits in work_mem; a LEFT JOIN to the grouped messages measured 1.5-2x slower
        # (its hash join broke the supporters' order: the window sorted 1M rows again).
        (Supporter.email_hash.in_(suppressed_hashes()), SkipReason.SUPPRESSED.value),
        (Supporter.id.in_(recently_mailed_ids(wave.id, since)), SkipReason.FREQUENCY_CAP.value),
    ]
    reason = case(*reasons, else_=rule.reason if rule is not None else literal(INCLUDED))
    return assigned.add_columns(
        reason.label("reason"),
        func.row_number().over(partition_by=Assignment.supporter_id, order_by=order).label("pick"),
    ).subquery("judged")


def _case_rule(audience: str, cases: Select[Any]) -> _CaseRule | None:
    """The audience's rule about the assignment's case, from the sets of pairs that acted
    or opened (hashed once, like the supporter's sets)."""
    if not (excludes_actors(audience) or needs_act(audience)):
        return None
    pair = tuple_(Assignment.supporter_id, Assignment.case_id)
    has_acted = pair.in_(acting_pairs(cases))
    included = literal(INCLUDED)
    if needs_act(audience):
        return _CaseRule(has_acted, case((has_acted, included), else_=_NOT_ACTED))
    if not needs_open(audience):
        return _CaseRule(~has_acted, case((has_acted, _ACTED), else_=included))
    has_opened = pair.in_(opening_pairs(cases))
    reason = case((has_acted, _ACTED), (~has_opened, _NOT_OPENED), else_=included)
    return _CaseRule(and_(~has_acted, has_opened), reason)


_ACTED = literal(SkipReason.ACTED.value)
_NOT_ACTED = literal(SkipReason.NOT_ACTED.value)
_NOT_OPENED = literal(SkipReason.NOT_OPENED.value)
