"""Campaign rows for tests, made the way `campaign campaigns create` makes them.

No test writes a campaign window by SQL: a campaign that runs today is a
campaign.yaml whose window is taken from the clock (`campaign_yaml`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sender.campaign.folder import CAMPAIGN_FILE, parse_campaign
from sender.campaign.registry import store_campaign
from sender.core.db import session_scope
from sender.core.models import Campaign

ROOT = Path(__file__).resolve().parents[1]
W4R_2020 = ROOT / "audiences" / "w4r-2020"


def the_2020_campaign(session: Session) -> Campaign:
    """The demo's 2020 campaign (audiences/w4r-2020/campaign.yaml), created on first use."""
    existing = session.scalar(select(Campaign).where(Campaign.slug == "w4r-2020"))
    if existing is not None:
        return existing
    path = W4R_2020 / CAMPAIGN_FILE
    campaign, _ = store_campaign(session, parse_campaign(path.read_text(), str(path)), path)
    return campaign


def add_2020_campaign(engine: Engine) -> int:
    with session_scope(engine) as session:
        return the_2020_campaign(session).id


def campaign_yaml(
    slug: str,
    now: datetime,
    *,
    name: str | None = None,
    days_before: int = 1,
    days_after: int = 30,
    languages: str = "[en]",
    frequency_cap_hours: int | None = None,
    extra: str = "",
) -> str:
    """A campaign.yaml whose window runs around `now`."""
    start = (now - timedelta(days=days_before)).isoformat()
    end = (now + timedelta(days=days_after)).isoformat()
    cap = f"frequency_cap_hours: {frequency_cap_hours}\n" if frequency_cap_hours is not None else ""
    return (
        f"slug: {slug}\n"
        f"name: {name or slug.replace('-', ' ').title()}\n"
        f"window: {{start: '{start}', end: '{end}', timezone: UTC}}\n"
        "sender: {from_email: campaigns@example.org, from_name: Write for Rights}\n"
        f"languages: {languages}\n"
        f"{cap}{extra}"
    )


def add_campaign_now(engine: Engine, slug: str, now: datetime, **options: object) -> int:
    """A campaign running around `now`, stored as `campaigns create` stores it."""
    text = campaign_yaml(slug, now, **options)  # type: ignore[arg-type]
    with session_scope(engine) as session:
        campaign, _ = store_campaign(session, parse_campaign(text, f"{slug}/campaign.yaml"))
        return campaign.id
