"""The campaign row: its window, sender identity and brand.

One database normally holds one campaign; the default one is the 2020
Write for Rights window (1 October 2020 to 31 January 2021).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sender.core.config import Settings
from sender.core.models import Campaign
from sender.render.identity import sender_identity

DEFAULT_SLUG = "w4r-2020"
DEFAULT_WINDOW = (datetime(2020, 10, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC))
DEFAULT_LANGUAGES = ("en", "es", "fr", "ar")  # the 2020 campaign's, its fallback first


def ensure_campaign(session: Session, settings: Settings, slug: str = DEFAULT_SLUG) -> Campaign:
    """The campaign named `slug`, created with the defaults on first use."""
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        defaults = sender_identity(settings)
        campaign = Campaign(
            slug=slug,
            name="Write for Rights 2020",
            window_start=DEFAULT_WINDOW[0],
            window_end=DEFAULT_WINDOW[1],
            timezone="UTC",
            from_email=defaults.sender.email,
            from_name=defaults.sender.name or "",
            brand=dict(defaults.brand),
            languages=list(DEFAULT_LANGUAGES),
        )
        session.add(campaign)
        session.flush()
    return campaign
