"""Creating campaigns from their folders, closing them, and describing them.

`create_from_folder` is idempotent like `cases load` and `plan apply`: run it
again after editing the folder and it updates what changed, in one
transaction, so a bad edit changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sender.campaign.campaigns import all_campaigns, campaign_named, require_open
from sender.campaign.cases import LoadReport, store_cases
from sender.campaign.folder import CAMPAIGN_FILE, CampaignFolder, CampaignSettings
from sender.campaign.waves import ApplyResult, cancel_wave, store_plan
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Assignment, Campaign, Case, Wave
from sender.core.vocabulary import CampaignStatus


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class CreateReport:
    slug: str
    outcome: Outcome
    cases: LoadReport
    waves: ApplyResult | None


@dataclass(frozen=True)
class CampaignView:
    """One campaign as `campaigns list` and `campaigns show` print it."""

    slug: str
    name: str
    status: str
    window_start: datetime
    window_end: datetime
    timezone: str
    languages: tuple[str, ...]
    sender: str
    reply_domain: str | None
    cases: int
    assigned: int
    waves: dict[str, int]  # wave status -> count
    closed_at: datetime | None


def create_from_folder(engine: Engine, folder: CampaignFolder) -> CreateReport:
    """The folder's campaign, cases and waves, stored together or not at all."""
    with session_scope(engine) as session:
        campaign, outcome = store_campaign(session, folder.settings, folder.path / CAMPAIGN_FILE)
        cases = store_cases(session, campaign, folder.cases)
        waves = store_plan(session, campaign, folder.plan) if folder.plan else None
        return CreateReport(campaign.slug, outcome, cases, waves)


def store_campaign(
    session: Session, settings: CampaignSettings, source: Path | str = CAMPAIGN_FILE
) -> tuple[Campaign, Outcome]:
    """The campaign row of campaign.yaml, created or updated in the caller's transaction."""
    values = settings.row_values()
    campaign = session.scalar(select(Campaign).where(Campaign.slug == settings.slug))
    if campaign is None:
        campaign = Campaign(slug=settings.slug, **values)
        session.add(campaign)
        session.flush()
        return campaign, Outcome.CREATED
    _refuse_clash(campaign, settings, source)
    return campaign, _update(campaign, values)


def _refuse_clash(campaign: Campaign, settings: CampaignSettings, source: Path | str) -> None:
    """One slug, one campaign: another folder may not take over an existing campaign."""
    if campaign.name != settings.name:
        raise InvalidInput(
            f"{source}: slug: {campaign.slug!r} already belongs to the campaign"
            f" {campaign.name!r}; give this campaign its own slug, or keep that"
            " campaign's name to update it"
        )
    require_open(campaign)


def _update(campaign: Campaign, values: dict[str, Any]) -> Outcome:
    changed = {name: value for name, value in values.items() if getattr(campaign, name) != value}
    for name, value in changed.items():
        setattr(campaign, name, value)
    return Outcome.UPDATED if changed else Outcome.UNCHANGED


def close_campaign(engine: Engine, slug: str, now: datetime) -> list[str]:
    """Stop every unfinished wave of the campaign, then make it read-only.

    Returns a line per stopped wave. Closing twice changes nothing.
    """
    lines: list[str] = []
    with session_scope(engine) as session:
        campaign = campaign_named(session, slug)
        if campaign.status == CampaignStatus.CLOSED:
            return [f"campaign {slug} was already closed on {campaign.closed_at:%Y-%m-%d}"]
        for wave in session.scalars(select(Wave).where(Wave.campaign_id == campaign.id)):
            dropped = cancel_wave(session, wave, f"campaign {slug} closed")
            if dropped is not None:
                lines.append(f"wave {wave.name} stopped ({dropped} unsent batches dropped)")
        campaign.status = CampaignStatus.CLOSED
        campaign.closed_at = now
    return [*lines, f"campaign {slug} closed: it sends nothing more and is read-only"]


def campaign_views(engine: Engine) -> list[CampaignView]:
    with session_scope(engine) as session:
        return [_view(session, campaign) for campaign in all_campaigns(session)]


def campaign_view(engine: Engine, slug: str) -> CampaignView:
    with session_scope(engine) as session:
        return _view(session, campaign_named(session, slug))


def _view(session: Session, campaign: Campaign) -> CampaignView:
    case_ids = select(Case.id).where(Case.campaign_id == campaign.id)
    cases = session.scalar(select(func.count()).select_from(case_ids.subquery())) or 0
    assigned = session.scalar(
        select(func.count()).select_from(Assignment).where(Assignment.case_id.in_(case_ids))
    )
    statuses = Counter(
        session.scalars(select(Wave.status).where(Wave.campaign_id == campaign.id)).all()
    )
    sender = f"{campaign.from_name} <{campaign.from_email}>"
    return CampaignView(
        slug=campaign.slug,
        name=campaign.name,
        status=campaign.status,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        timezone=campaign.timezone,
        languages=tuple(campaign.languages or ()),
        sender=sender,
        reply_domain=campaign.reply_domain,
        cases=int(cases),
        assigned=int(assigned or 0),
        waves=dict(statuses),
        closed_at=campaign.closed_at,
    )
