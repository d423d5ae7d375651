"""Who may receive a wave: the rules, as values shared by planning and sending.

The rules are checked twice, in SQL: when a wave is planned (who gets a
message row) and again right before each batch leaves (who is still in it).

One message per supporter per wave. A supporter assigned several cases gets
the case that was assigned first (lowest assignment id) among the cases that
still qualify: active and, for reminders, not acted on yet.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, exists

from sender.core.models import Action, Message, Suppression
from sender.core.vocabulary import ActionKind, AudienceRule, MessageStatus, WaveKind


class SkipReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # status no longer subscribed, or address erased
    NO_CONSENT = "no_consent"
    SUPPRESSED = "suppressed"
    ACTED = "acted"  # reminders only: already acted on the case
    FREQUENCY_CAP = "frequency_cap"  # another campaign email went out too recently
    CASE_INACTIVE = "case_inactive"
    MISSED = "missed"  # the send window closed before the batch could go


# Acting means doing something for the case, not reading about it.
ACTING_KINDS: tuple[str, ...] = (ActionKind.CLICKED, ActionKind.LETTER_SENT, ActionKind.REPLIED)
OPENING_KINDS: tuple[str, ...] = (ActionKind.OPENED,)


def excludes_actors(kind: str, audience: str) -> bool:
    """Reminders and not-acted audiences leave out those who already acted."""
    return kind != WaveKind.CASE_EMAIL or audience != AudienceRule.ALL_ASSIGNED


def needs_open(audience: str) -> bool:
    return audience == AudienceRule.OPENED_NOT_ACTED


# The rules as SQL predicates over the supporter (and case) of the row they
# are put in; arguments may be columns or bound parameters.


def acted(supporter: Any, case_id: Any) -> ColumnElement[bool]:
    return exists().where(
        Action.supporter_id == supporter,
        Action.case_id == case_id,
        Action.kind.in_(ACTING_KINDS),
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


def campaign_cap(campaign_hours: int | None, default: timedelta) -> timedelta:
    """The campaign's frequency cap, else the installation's; it counts every campaign's mail."""
    return default if campaign_hours is None else timedelta(hours=campaign_hours)
