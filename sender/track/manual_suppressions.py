"""Staff's own do-not-email list: the CLI's and the workspace's one way to add and lift.

Only manual suppressions can be lifted (sender.track.suppressions.remove_manual);
audit rows name the hash's first characters, never the address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from sender.core.addresses import email_hash, normalise_email
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Suppression
from sender.core.vocabulary import SuppressionReason
from sender.track import suppressions
from sender.track.suppressions import Suppressed

HASH_SHOWN = 12  # enough to tell rows apart, too little to look an address up by
MAX_SOURCE = 64  # Suppression.source's width


def digest_of(email: str) -> str:
    """The address's hash; InvalidInput for something that is not an address."""
    return email_hash(normalise_email(email))


def target(digest: str) -> str:
    return f"address sha256:{digest[:HASH_SHOWN]}"


def state(engine: Engine, digest: str) -> str:
    with session_scope(engine) as session:
        reason = session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))
    return "not suppressed" if reason is None else f"suppressed ({reason})"


def checked_reason(reason: str) -> str:
    why = reason.strip()
    if not why:
        raise InvalidInput("the reason must say why the address is suppressed")
    return why


def suppress(engine: Engine, digest: str, why: str, now: datetime) -> bool:
    """Never email the address again; True when it was not suppressed before."""
    item = Suppressed(digest, SuppressionReason.MANUAL)
    with session_scope(engine) as session:
        return suppressions.add(session, item, f"staff: {why}"[:MAX_SOURCE], now)


def lift(engine: Engine, digest: str) -> bool:
    """Lift a manual suppression; InvalidInput for any other kind, False for none."""
    with session_scope(engine) as session:
        return suppressions.remove_manual(session, digest)
