"""Unsubscribing a supporter: suppression, status and cancelled plans, at once.

Every path that hears "no more email" (the one-click header, the
confirmation page, a STOP reply, a mail to the List-Unsubscribe mailto) ends
here, so they all agree and all are idempotent. The work itself is
sender.track.suppressions', shared with the event webhook's unsubscribes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sender.core.errors import InvalidInput
from sender.core.models import Case, Message, Supporter
from sender.core.tokens import MessageRef, TokenSigner
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


def token_supporter(
    session: Session, signer: TokenSigner, token: str
) -> tuple[Supporter, MessageRef] | None:
    """The supporter an unsubscribe token names, or None when it is forged or stale.

    The token is the credential (as for the one-click link): whoever holds the
    email may unsubscribe its recipient, whatever address they write from.
    """
    try:
        ref = signer.read_unsubscribe(token)
    except InvalidInput:
        return None
    supporter = session.get(Supporter, ref.supporter_id)
    if supporter is None or supporter.forgotten_at is not None:
        return None
    if session.get(Case, ref.case_id) is None:
        return None
    if ref.message_id is not None:
        message = session.get(Message, ref.message_id)
        if message is None or message.supporter_id != supporter.id:
            return None
    return supporter, ref
