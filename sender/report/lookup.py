"""One address's suppression, as staff look it up on the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from sender.core.addresses import email_hash, normalise_email
from sender.core.db import session_scope
from sender.core.models import Supporter, Suppression


@dataclass(frozen=True)
class SuppressionLookup:
    suppressed: bool
    reason: str | None
    source: str | None
    since: datetime | None
    supporter_status: str | None


def look_up_suppression(engine: Engine, raw_email: str) -> SuppressionLookup:
    """By hash only: works for erased supporters, and shows no other personal data.

    Raises InvalidInput (from normalise_email) for something that is not an address.
    """
    hashed = email_hash(normalise_email(raw_email))
    with session_scope(engine) as session:
        row = session.scalar(select(Suppression).where(Suppression.email_hash == hashed))
        supporter_status = session.scalar(
            select(Supporter.status).where(Supporter.email_hash == hashed)
        )
    if row is None:
        return SuppressionLookup(False, None, None, None, supporter_status)
    return SuppressionLookup(True, row.reason, row.source, row.created_at, supporter_status)
