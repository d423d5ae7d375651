"""Who a draft wave would reach, before it is launched: the launch confirmation's figures.

The same rules as planning (sender.send.eligibility), counted instead of
staged: one case per supporter (the first assigned), and each left-out
supporter named by the first rule that leaves them out. Languages are the
supporters' own; the planner may fall back to another one the case has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, func, literal, select

from sender.core.db import session_scope
from sender.core.models import Assignment, Campaign, Case, Supporter, Wave
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import SupporterStatus
from sender.send.eligibility import (
    SkipReason,
    acted,
    campaign_cap,
    case_statuses,
    excludes_actors,
    needs_act,
    recently_mailed,
    suppressed,
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
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        campaign = session.get_one(Campaign, wave.campaign_id)
        cap = campaign_cap(campaign.frequency_cap_hours, default_cap)
        first = (
            select(
                Assignment.supporter_id,
                Assignment.case_id,
                func.row_number()
                .over(partition_by=Assignment.supporter_id, order_by=Assignment.id)
                .label("pick"),
            )
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Case.campaign_id == wave.campaign_id, Case.status.in_(case_statuses(wave.audience))
            )
            .subquery("first")
        )
        reasons = [
            (Supporter.status != SupporterStatus.SUBSCRIBED, SkipReason.UNSUBSCRIBED.value),
            (Supporter.email.is_(None), SkipReason.UNSUBSCRIBED.value),
            (Supporter.consent.is_not(True), SkipReason.NO_CONSENT.value),
            (suppressed(Supporter.email_hash), SkipReason.SUPPRESSED.value),
            (recently_mailed(Supporter.id, wave.id, now - cap), SkipReason.FREQUENCY_CAP.value),
        ]
        if excludes_actors(wave.audience):
            reasons.append((acted(Supporter.id, first.c.case_id), SkipReason.ACTED.value))
        if needs_act(wave.audience):
            reasons.append((~acted(Supporter.id, first.c.case_id), SkipReason.NOT_ACTED.value))
        reason = case(*reasons, else_=literal(INCLUDED)).label("reason")
        test = wave.subject_test
        rows = session.execute(
            select(Case.slug, Supporter.language, reason, func.count())
            .select_from(first)
            .join(Supporter, Supporter.id == first.c.supporter_id)
            .join(Case, Case.id == first.c.case_id)
            .where(first.c.pick == 1)
            # The planner's stratum order (case id, language): the test share's deal follows it.
            .group_by(Case.id, Case.slug, Supporter.language, reason)
            .order_by(Case.id, Supporter.language, reason)
        ).all()
    return Reach(
        tuple(ReachRow(slug, language, str(why), int(n)) for slug, language, why, n in rows),
        SubjectTestSpec.from_json(test),
    )
