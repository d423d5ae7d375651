"""Webhook events kept raw, with the reason, for staff: those that could not be stored as
events, and those stored but refused for not matching what we sent (sender.track.binding).

A signed batch is answered 2xx even when some of its events are odd, so that the
unsubscribes sharing the batch are not lost to the provider's retries; the odd
events themselves land here instead (sender.track.event_store). The provider
will not send them again, so this table is their only copy, and staff see a
count and the latest reasons in `campaign status` and on the dashboard. Nothing
here ever becomes an action or a suppression.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sender.core.models import RejectedEvent
from sender.core.vocabulary import REFUSED_KINDS, RejectionKind
from sender.track.providers.base import Rejection

MAX_REASON = 200  # the column's width
LATEST_SHOWN = 5


@dataclass(frozen=True)
class RejectedItem:
    """One event of a batch that is kept raw instead of stored as an event."""

    position: int
    kind: RejectionKind
    reason: str
    raw_text: str  # JSON, every non-ASCII character escaped: any database takes it


def rejected_item(item: object, position: int, rejection: Rejection) -> RejectedItem:
    # Escaped, NUL characters and lone surrogates become six plain characters each,
    # which a text column holds (jsonb refuses both, which is why the event is here).
    raw_text = json.dumps(item, ensure_ascii=True, separators=(",", ":"))
    return RejectedItem(position, rejection.kind, rejection.reason[:MAX_REASON], raw_text)


def _digest(provider: str, raw_text: str) -> str:
    # The position is left out: a redelivered batch may hold the event elsewhere.
    return hashlib.sha256(f"{provider}\n{raw_text}".encode()).hexdigest()


def store_rejected(
    connection: Connection, provider: str, items: Sequence[RejectedItem], received_at: datetime
) -> int:
    """Keep the items not kept before, in the caller's transaction; how many were new."""
    if not items:
        return 0
    rows: list[dict[str, Any]] = [
        {
            "provider": provider,
            "digest": _digest(provider, item.raw_text),
            "position": item.position,
            "kind": item.kind.value,
            "reason": item.reason,
            "raw": item.raw_text,
            "received_at": received_at,
        }
        for item in items
    ]
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(RejectedEvent).on_conflict_do_nothing(index_elements=["digest"])
    kept = 0
    for row in rows:  # rare and few: one row at a time gives an exact count everywhere
        kept += connection.execute(statement, row).rowcount
    return kept


@dataclass(frozen=True)
class RejectedReason:
    received_at: datetime
    provider: str
    kind: str
    reason: str


@dataclass(frozen=True)
class RejectedSummary:
    """How many webhook events were kept raw, and the latest few reasons.

    `refused` of them were stored but refused when processed, because their custom
    args do not bind them to a message we sent (sender.track.binding): a steady
    trickle means another system or installation shares the provider account, a
    burst may be an attack. The rest could not be stored at all.
    """

    count: int = 0
    latest: tuple[RejectedReason, ...] = ()
    refused: int = 0

    @property
    def unstorable(self) -> int:
        return self.count - self.refused


def rejected_summary(engine: Engine, limit: int = LATEST_SHOWN) -> RejectedSummary:
    """The one reader of rejected events for people: the CLI and the dashboard show this."""
    with engine.connect() as connection:
        by_kind: dict[str, int] = {
            kind: int(n)
            for kind, n in connection.execute(
                select(RejectedEvent.kind, func.count()).group_by(RejectedEvent.kind)
            )
        }
        count = sum(by_kind.values())
        if not count:
            return RejectedSummary()
        rows = connection.execute(
            select(
                RejectedEvent.received_at,
                RejectedEvent.provider,
                RejectedEvent.kind,
                RejectedEvent.reason,
            )
            .order_by(RejectedEvent.received_at.desc(), RejectedEvent.id.desc())
            .limit(limit)
        ).all()
    refused = sum(by_kind.get(kind.value, 0) for kind in REFUSED_KINDS)
    return RejectedSummary(
        count,
        tuple(RejectedReason(r.received_at, r.provider, r.kind, r.reason) for r in rows),
        refused,
    )
