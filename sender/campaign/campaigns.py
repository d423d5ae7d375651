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

DEFAULT_SLUG = "w4r-2020"
DEFAULT_WINDOW = (datetime(2020, 10, 1, tzinfo=UTC), datetime(2021, 2, 1, tzinfo=UTC))


def ensure_campaign(session: Session, settings: Settings, slug: str = DEFAULT_SLUG) -> Campaign:
    """The campaign named `slug`, created with the defaults on first use."""
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        campaign = Campaign(
            slug=slug,
            name="Write for Rights 2020",
            window_start=DEFAULT_WINDOW[0],
            window_end=DEFAULT_WINDOW[1],
            timezone="UTC",
            from_email=settings.from_email,
            from_name=settings.from_name,
            brand={
                "primary": settings.brand_primary,
                "ink": settings.brand_ink,
                "accent": settings.brand_accent,
                "logo_url": settings.logo_url,
                "org_name": settings.org_name,
                "org_address": settings.org_address,
            },
        )
        session.add(campaign)
        session.flush()
    return campaign
