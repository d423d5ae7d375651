"""One supporter as staff look them up: status, consent, campaigns, messages, actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from sender.core.addresses import email_hash, normalise_email
from sender.core.db import session_scope
from sender.core.models import Action, Assignment, Campaign, Case, Message, Supporter, Wave

SHOWN = 100  # messages and actions each: a supporter has a handful


@dataclass(frozen=True)
class MessageLine:
    wave: str
    campaign: str
    case: str
    status: str
    sent_at: datetime | None


@dataclass(frozen=True)
class ActionLine:
    kind: str
    case: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Profile:
    supporter_id: int
    email: str | None
    first_name: str | None
    country: str | None
    language: str
    status: str
    consent: bool
    source: str | None
    campaigns: tuple[str, ...]
    messages: tuple[MessageLine, ...]
    actions: tuple[ActionLine, ...]


def find_supporter(engine: Engine, raw_email: str) -> Profile | None:
    """By address hash, so a forgotten supporter is found too (with nothing personal left).

    Raises InvalidInput (from normalise_email) for something that is not an address.
    """
    digest = email_hash(normalise_email(raw_email))
    with session_scope(engine) as session:
        supporter = session.scalar(select(Supporter).where(Supporter.email_hash == digest))
        if supporter is None:
            return None
        messages = session.execute(
            select(Wave.name, Campaign.slug, Case.slug, Message.status, Message.sent_at)
            .join(Wave, Wave.id == Message.wave_id)
            .join(Campaign, Campaign.id == Wave.campaign_id)
            .join(Case, Case.id == Message.case_id)
            .where(Message.supporter_id == supporter.id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(SHOWN)
        ).all()
        actions = session.execute(
            select(Action.kind, Case.slug, Action.occurred_at)
            .outerjoin(Case, Case.id == Action.case_id)
            .where(Action.supporter_id == supporter.id)
            .order_by(Action.occurred_at.desc(), Action.id.desc())
            .limit(SHOWN)
        ).all()
        assigned = session.scalars(
            select(Campaign.slug)
            .join(Case, Case.campaign_id == Campaign.id)
            .join(Assignment, Assignment.case_id == Case.id)
            .where(Assignment.supporter_id == supporter.id)
        )
        return Profile(
            supporter.id,
            supporter.email,
            supporter.first_name,
            supporter.country,
            supporter.language,
            supporter.status,
            supporter.consent,
            supporter.source,
            tuple(sorted({*assigned, *(m[1] for m in messages)})),
            tuple(MessageLine(*m) for m in messages),
            tuple(ActionLine(*a) for a in actions),
        )
