"""Unsubscribing a supporter: suppression, status and cancelled plans, at once.

Every path that hears "no more email" (the one-click header, the
confirmation page, a STOP reply) ends here, so they all agree and all are
idempotent. The work itself is sender.track.suppressions', shared with the event
webhook's unsubscribes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sender.core.models import Supporter
from sender.core.vocabulary import SuppressionReason
from sender.track import suppressions


def unsubscribe(session: Session, supporter: Supporter, source: str, now: datetime) -> bool:
    """Stop all email to `supporter`; True when this call newly suppressed them."""
    item = suppressions.Suppressed(
        supporter.email_hash, SuppressionReason.UNSUBSCRIBED, supporter.id
    )
    added = suppressions.add(session, item, source, now)
    session.flush()
    return added
