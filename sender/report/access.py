"""Which campaigns' reports a staff member may read: a campaign limit narrows reading too.

The workspace's report page and GET /api/report both ask here, so an account
limited to some campaigns can neither open nor compare another's figures. A
refusal is recorded (sender.staff.audit.check), a campaign that does not exist
is a plain input error, and neither message names campaigns the account may
not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Campaign
from sender.core.vocabulary import CampaignStatus
from sender.staff import audit
from sender.staff.actions import What
from sender.staff.audit import Actor


@dataclass(frozen=True)
class CampaignChoice:
    id: int
    slug: str
    name: str
    open: bool


def readable_campaigns(engine: Engine, actor: Actor) -> list[CampaignChoice]:
    """The campaigns the actor may read, open ones first, newest window first."""
    with session_scope(engine) as session:
        query = select(Campaign.id, Campaign.slug, Campaign.name, Campaign.status).order_by(
            Campaign.status != CampaignStatus.OPEN, Campaign.window_start.desc(), Campaign.id
        )
        if actor.campaign_ids is not None:
            query = query.where(Campaign.id.in_(actor.campaign_ids))
        return [
            CampaignChoice(row.id, row.slug, row.name, row.status == CampaignStatus.OPEN)
            for row in session.execute(query)
        ]


def check_readable(engine: Engine, actor: Actor, slugs: Sequence[str]) -> None:
    """InvalidInput for a campaign that does not exist, Forbidden (recorded) for another's."""
    wanted = list(dict.fromkeys(slugs))
    with session_scope(engine) as session:
        found = session.execute(select(Campaign.slug, Campaign.id).where(Campaign.slug.in_(wanted)))
        ids = {row.slug: row.id for row in found}
    unknown = [slug for slug in wanted if slug not in ids]
    if unknown:
        mine = ", ".join(c.slug for c in readable_campaigns(engine, actor)) or "none"
        names = ", ".join(repr(slug) for slug in unknown)
        raise InvalidInput(f"no campaign {names}: the campaigns you can read are {mine}")
    for slug in wanted:
        audit.check(engine, actor, What.REPORT_VIEW, f"report {slug}", ids[slug])
