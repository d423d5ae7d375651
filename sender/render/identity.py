"""Who an email comes from: the campaign's brand, its From address and the reply domain.

Built in one place, from the campaign row with the settings filling what the
row leaves out, so sending, proofs, previews and the demo all show the same
sender. A campaign row is created with the settings' identity
(sender.campaign.folder, from campaign.yaml), which staff may then change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from sender.core.config import Settings
from sender.core.mail import Address


class CampaignRow(Protocol):
    """What identity reads of a campaign: the ORM row, or the send store's plain copy."""

    @property
    def brand(self) -> Mapping[str, Any] | None: ...
    @property
    def from_email(self) -> str: ...
    @property
    def from_name(self) -> str: ...


@dataclass(frozen=True)
class SenderIdentity:
    brand: Mapping[str, str]  # what templates read as `brand.*`: colours, logo, organisation
    sender: Address  # From
    reply_domain: str  # replies go to reply+TOKEN@ this domain


def sender_identity(settings: Settings, campaign: CampaignRow | None = None) -> SenderIdentity:
    """The campaign's identity; without a campaign, the settings' (the defaults)."""
    brand = {
        "primary": settings.brand_primary,
        "ink": settings.brand_ink,
        "accent": settings.brand_accent,
        "logo_url": settings.logo_url,
        "org_name": settings.org_name,
        "org_address": settings.org_address,
    }
    sender = Address(settings.from_email, settings.from_name)
    if campaign is not None:
        brand |= {str(k): str(v) for k, v in (campaign.brand or {}).items()}
        sender = Address(
            campaign.from_email or settings.from_email, campaign.from_name or settings.from_name
        )
    return SenderIdentity(MappingProxyType(brand), sender, settings.inbound_domain)
