"""Who may receive a wave: the rules, as values shared by planning and sending.

The rules are checked twice, in SQL: when a wave is planned (who gets a
message row) and again right before each batch leaves (who is still in it).

One message per supporter per wave. A supporter assigned several cases gets
the case that was assigned first (lowest assignment id) among the cases that
still qualify: active (or resolved, for `case_assigned`, which takes a resolved
case first: its good news is the point) and, for the `not_acted` rules, not
acted on yet; for `acted`, acted on.

What counts as acting has one home, the report's (sender.report.totals
`counts_as_acting`): the supporters a thank-you reaches are those the report
counts as having acted, and a reminder reaches the others.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, select

from sender.core.models import Action, Message, Suppression
from sender.core.vocabulary import ActionKind, AudienceRule, CaseStatus, MessageStatus
from sender.report.totals import counts_as_acting


class SkipReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # status no longer subscribed, or address erased
    NO_CONSENT = "no_consent"
    SUPPRESSED = "suppressed"
    ACTED = "acted"  # reminders only: already acted on the case
    NOT_ACTED = "not_acted"  # thank-yous only: the act no longer counts (a machine's click)
    NOT_OPENED = "not_opened"  # openers' reminders only: never opened the case's email
    FREQUENCY_CAP = "frequency_cap"  # another campaign email went out too recently
    CASE_INACTIVE = "case_inactive"
    MISSED = "missed"  # the send window closed before the batch could go


OPENING_KINDS: tuple[str, ...] = (ActionKind.OPENED,)
_SKIPS_ACTORS = frozenset({AudienceRule.NOT_ACTED.value, AudienceRule.OPENED_NOT_ACTED.value})
_ACTIVE = (CaseStatus.ACTIVE.value,)
_ACTIVE_OR_RESOLVED = (CaseStatus.ACTIVE.value, CaseStatus.RESOLVED.value)


def excludes_actors(audience: str) -> bool:
    """The not-acted audiences leave out those who already acted on their case."""
    return audience in _SKIPS_ACTORS


def needs_act(audience: str) -> bool:
    """A thank-you goes only to those who acted on their case."""
    return audience == AudienceRule.ACTED


def needs_open(audience: str) -> bool:
    return audience == AudienceRule.OPENED_NOT_ACTED


def case_statuses(audience: str) -> tuple[str, ...]:
    """The case statuses a wave of this audience mails about; paused cases never mail."""
    return _ACTIVE_OR_RESOLVED if audience == AudienceRule.CASE_ASSIGNED else _ACTIVE


def case_order(audience: str, assignment_id: Any, case_status: Any) -> list[Any]:
    """Which of a supporter's qualifying cases the wave is about: the first assigned, except
    that a good-news audience takes a resolved case first (its news is the point).
    The planner and the launch page's reach both order by it."""
    if CaseStatus.RESOLVED.value not in case_statuses(audience):
        return [assignment_id]
    return [case((case_status == CaseStatus.RESOLVED, 0), else_=1), assignment_id]


# The rules as SQL predicates over the supporter (and case) of the row they
# are put in; arguments may be columns or bound parameters.


def acted(supporter: Any, case_id: Any) -> ColumnElement[bool]:
    """The supporter acted on the case, as the report counts acting."""
    return exists().where(
        Action.supporter_id == supporter,
        Action.case_id == case_id,
        counts_as_acting(),
    )


def suppressed(email_hash: Any) -> ColumnElement[bool]:
    return exists().where(Suppression.email_hash == email_hash)


def recently_mailed(supporter: Any, wave_id: Any, since: Any) -> ColumnElement[bool]:
    other = Message.__table__.alias("recent")
    return exists().where(
        other.c.supporter_id == supporter,
        other.c.wave_id != wave_id,
        other.c.status == MessageStatus.SENT,
        other.c.sent_at > since,
    )


# The same rules as sets, for statements that judge every supporter at once
# (sender.send.reach) with an uncorrelated `IN (set)`: PostgreSQL hashes the set once,
# where a correlated EXISTS in a CASE (the twins above) runs once per row. Grouped, so
# the set (and its estimate, which decides whether it is hashed) is at most one row per
# supporter, or per assignment, however much mail or action there is. Tests hold the
# twins equal.


def acting_pairs(case_ids: Any) -> Select[Any, Any]:
    """(supporter_id, case_id) of the supporters who acted on these cases: `acted`'s set."""
    return (
        select(Action.supporter_id, Action.case_id)
        .where(Action.case_id.in_(case_ids), counts_as_acting())
        .group_by(Action.supporter_id, Action.case_id)
    )


def opening_pairs(case_ids: Any) -> Select[Any, Any]:
    """(supporter_id, case_id) of the supporters who opened the case's email."""
    return (
        select(Action.supporter_id, Action.case_id)
        .where(Action.case_id.in_(case_ids), Action.kind.in_(OPENING_KINDS))
        .group_by(Action.supporter_id, Action.case_id)
    )


def recently_mailed_ids(wave_id: Any, since: Any) -> Select[Any]:
    """The supporters `recently_mailed` holds for: sent mail of another wave since then."""
    return (
        select(Message.supporter_id)
        .where(
            Message.wave_id != wave_id,
            Message.status == MessageStatus.SENT,
            Message.sent_at > since,
        )
        .group_by(Message.supporter_id)
    )


def suppressed_hashes() -> Select[Any]:
    """The address hashes `suppressed` holds for."""
    return select(Suppression.email_hash)


def campaign_cap(campaign_hours: int | None, default: timedelta) -> timedelta:
    """The campaign's frequency cap, else the installation's; it counts every campaign's mail."""
    return default if campaign_hours is None else timedelta(hours=campaign_hours)
