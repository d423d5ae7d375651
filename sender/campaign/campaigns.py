"""Which campaign a command acts on, and the rules of a closed campaign.

A database holds any number of campaigns, each made from a campaign folder
(sender.campaign.folder). Supporters, consent and suppressions are shared by
all of them; cases, waves and everything sent belong to one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sender.core.errors import CampaignError, InvalidInput, NotFound
from sender.core.models import Campaign
from sender.core.vocabulary import CampaignStatus


class CampaignClosed(CampaignError):
    """The campaign is closed: it is read-only and sends nothing."""


class CampaignChoiceNeeded(InvalidInput):
    """No campaign was named and there is not exactly one open campaign."""


def all_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.window_start, Campaign.id)))


def open_campaigns(session: Session) -> list[Campaign]:
    return [c for c in all_campaigns(session) if c.status == CampaignStatus.OPEN]


def campaign_named(session: Session, slug: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        known = ", ".join(c.slug for c in all_campaigns(session)) or "none yet"
        raise NotFound(f"no campaign {slug!r} (campaigns: {known})")
    return campaign


def resolve_campaign(session: Session, slug: str | None) -> Campaign:
    """The campaign named, or else the only open one; otherwise say which exist."""
    if slug:
        return campaign_named(session, slug)
    candidates = open_campaigns(session)
    if len(candidates) == 1:
        return candidates[0]
    raise CampaignChoiceNeeded(_choice_message(candidates, all_campaigns(session)))


def _choice_message(candidates: Sequence[Campaign], every: Sequence[Campaign]) -> str:
    if candidates:
        names = ", ".join(c.slug for c in candidates)
        return (
            f"{len(candidates)} campaigns are open ({names}): pass --campaign SLUG or set CAMPAIGN"
        )
    if every:
        names = ", ".join(c.slug for c in every)
        return f"no campaign is open (closed: {names}); {CREATE_HINT}"
    return f"no campaign yet: {CREATE_HINT}"


CREATE_HINT = "write one with `campaign init DIR`, then `campaign campaigns create DIR`"


def require_open(campaign: Campaign) -> Campaign:
    """Refuse any change to a closed campaign."""
    if campaign.status == CampaignStatus.CLOSED:
        raise CampaignClosed(f"campaign {campaign.slug!r} is closed: it is read-only")
    return campaign
