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

from sqlalchemy import ColumnElement, Engine, Select, Subquery, and_, case, func, literal, select

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
        wave = session.get_one(Wave, wave_id)
        campaign = session.get_one(Campaign, wave.campaign_id)
        cap = campaign_cap(campaign.frequency_cap_hours, default_cap)
        judged = _judged(wave, now - cap)
        rows = session.execute(
            select(Case.slug, Supporter.language, judged.c.reason, func.count())
            .select_from(judged)
            .join(Supporter, Supporter.id == judged.c.supporter_id)
            .join(Case, Case.id == judged.c.case_id)
            # The planner's stratum order (case id, language): the test share's deal follows it.
            .group_by(Case.id, Case.slug, Supporter.language, judged.c.reason)
            .order_by(Case.id, Supporter.language, judged.c.reason)
        ).all()
        test = wave.subject_test
    return Reach(
        tuple(ReachRow(slug, language, str(why), int(n)) for slug, language, why, n in rows),
        SubjectTestSpec.from_json(test),
    )


@dataclass(frozen=True)
class _CaseRule:
    """The audience's rule about the case itself: whether an assignment qualifies, and
    the reason given when none of a supporter's cases does."""

    qualifies: ColumnElement[bool]
    reason: ColumnElement[str]


def _judged(wave: Wave, since: datetime) -> Subquery:
    """(supporter_id, case_id, reason) for every supporter assigned a case the wave mails about.

    The planner's choice of case: the first (sender.send.eligibility `case_order`)
    among those that pass the audience's case rule, else the first of all, named by
    that rule. Each set (suppressed hashes, the recently mailed, the pairs that acted
    or opened) is a LEFT JOIN PostgreSQL hashes once: no per-row subplan.
    """
    cases = select(Case.id).where(
        Case.campaign_id == wave.campaign_id, Case.status.in_(case_statuses(wave.audience))
    )
    assigned = (
        select(Assignment.supporter_id, Assignment.case_id)
        .join(Case, Case.id == Assignment.case_id)
        .where(Case.campaign_id == wave.campaign_id, Case.status.in_(case_statuses(wave.audience)))
    )
    rule, assigned = _case_rule(wave.audience, cases, assigned)
    order = case_order(wave.audience, Assignment.id, Case.status)
    if rule is not None:
        order = [case((rule.qualifies, 0), else_=1), *order]
    ranked = assigned.add_columns(
        func.row_number().over(partition_by=Assignment.supporter_id, order_by=order).label("pick"),
        *([rule.reason.label("case_reason")] if rule is not None else []),
    ).subquery("ranked")
    hashes = suppressed_hashes().subquery("suppressed")
    recent = recently_mailed_ids(wave.id, since).subquery("recent")
    reasons: list[tuple[ColumnElement[bool], str | ColumnElement[str]]] = [
        (Supporter.status != SupporterStatus.SUBSCRIBED, SkipReason.UNSUBSCRIBED.value),
        (Supporter.email.is_(None), SkipReason.UNSUBSCRIBED.value),
        (Supporter.consent.is_not(True), SkipReason.NO_CONSENT.value),
        (hashes.c.email_hash.is_not(None), SkipReason.SUPPRESSED.value),
        (recent.c.supporter_id.is_not(None), SkipReason.FREQUENCY_CAP.value),
    ]
    reason = case(*reasons, else_=ranked.c.case_reason if rule is not None else literal(INCLUDED))
    return (
        select(ranked.c.supporter_id, ranked.c.case_id, reason.label("reason"))
        .join(Supporter, Supporter.id == ranked.c.supporter_id)
        .outerjoin(hashes, hashes.c.email_hash == Supporter.email_hash)
        .outerjoin(recent, recent.c.supporter_id == Supporter.id)
        .where(ranked.c.pick == 1)
        .subquery("judged")
    )


def _case_rule(
    audience: str, cases: Select[Any], assigned: Select[Any, Any]
) -> tuple[_CaseRule | None, Select[Any, Any]]:
    """The audience's case rule, with the sets it reads joined onto the assignments."""
    if not (excludes_actors(audience) or needs_act(audience)):
        return None, assigned
    actors = acting_pairs(cases).subquery("actors")
    assigned = assigned.outerjoin(
        actors,
        and_(
            actors.c.supporter_id == Assignment.supporter_id,
            actors.c.case_id == Assignment.case_id,
        ),
    )
    has_acted = actors.c.supporter_id.is_not(None)
    included = literal(INCLUDED)
    if needs_act(audience):
        return _CaseRule(has_acted, case((has_acted, included), else_=_NOT_ACTED)), assigned
    if not needs_open(audience):
        return _CaseRule(~has_acted, case((has_acted, _ACTED), else_=included)), assigned
    openers = opening_pairs(cases).subquery("openers")
    assigned = assigned.outerjoin(
        openers,
        and_(
            openers.c.supporter_id == Assignment.supporter_id,
            openers.c.case_id == Assignment.case_id,
        ),
    )
    has_opened = openers.c.supporter_id.is_not(None)
    reason = case((has_acted, _ACTED), (~has_opened, _NOT_OPENED), else_=included)
    return _CaseRule(and_(~has_acted, has_opened), reason), assigned


_ACTED = literal(SkipReason.ACTED.value)
_NOT_ACTED = literal(SkipReason.NOT_ACTED.value)
_NOT_OPENED = literal(SkipReason.NOT_OPENED.value)
