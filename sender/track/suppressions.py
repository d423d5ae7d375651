"""Addresses never to email again, kept by email hash so erasure does not undo them.

Applied at once, in the same transaction as the event that caused them, so the
next batch the sending pipeline releases already sees them (it re-checks
suppressions by hash right before each send).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sender.core.errors import InvalidInput
from sender.core.models import Batch, BounceStreak, Message, Supporter, Suppression
from sender.core.tallies import lock, move, per_batch
from sender.core.upsert import insert_for
from sender.core.vocabulary import (
    BatchStatus,
    EventType,
    MessageStatus,
    SupporterStatus,
    SuppressionReason,
)
from sender.track.providers.base import NormalisedEvent

# Soft bounces (policy refusals) suppress only when this many come in a row.
SOFT_BOUNCE_LIMIT = 3

# A dropped event is not here: its provider's reason decides (`drop_suppression`).
_EVENT_REASON: Mapping[EventType, SuppressionReason] = {
    EventType.COMPLAINED: SuppressionReason.COMPLAINED,
    EventType.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
    EventType.GROUP_UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
}
_STATUS_FOR: Mapping[SuppressionReason, SupporterStatus] = {
    SuppressionReason.BOUNCED: SupporterStatus.BOUNCED,
    SuppressionReason.DROPPED: SupporterStatus.BOUNCED,
    SuppressionReason.INVALID: SupporterStatus.BOUNCED,  # undeliverable, like a hard bounce
    SuppressionReason.COMPLAINED: SupporterStatus.COMPLAINED,
    SuppressionReason.UNSUBSCRIBED: SupporterStatus.UNSUBSCRIBED,
}
# A stronger status is never overwritten by a weaker one.
_RANK = [
    SupporterStatus.SUBSCRIBED,
    SupporterStatus.BOUNCED,
    SupporterStatus.UNSUBSCRIBED,
    SupporterStatus.COMPLAINED,
    SupporterStatus.FORGOTTEN,
]
# The supporter asked us to stop: their not-yet-sent messages go too.
_CANCELS = {SuppressionReason.COMPLAINED, SuppressionReason.UNSUBSCRIBED}
_IN_FLIGHT = (BatchStatus.SENDING, BatchStatus.SENT)
# Message.skip_reason's width.
_MAX_FAILURE = 64


@dataclass(frozen=True)
class Suppressed:
    email_hash: str
    reason: SuppressionReason
    supporter_id: int | None = None


@dataclass(frozen=True)
class Failed:
    """A message the provider refused for a reason not about the address."""

    message_id: int
    reason: str


def reason_for(event: NormalisedEvent) -> SuppressionReason | None:
    if event.hard_bounce:
        return SuppressionReason.BOUNCED
    if event.event_type is EventType.DROPPED:
        return event.drop_suppression
    return _EVENT_REASON.get(event.event_type)


def failure_for(event: NormalisedEvent) -> Failed | None:
    """A drop that suppresses nobody (quota, spam content, unknown) still fails its message."""
    if event.event_type is not EventType.DROPPED or event.drop_suppression is not None:
        return None
    if event.message_id is None:
        return None
    why = f"dropped: {event.reason or 'no reason given'}"
    return Failed(event.message_id, why[:_MAX_FAILURE])


def fail_messages(session: Session, failures: Sequence[Failed]) -> int:
    """Mark sent messages failed with the provider's reason; other states are left alone.

    Their batches' tallies move last, in id order: counted from the rows changed,
    they need no lock first (sender.core.tallies), and two tasks never wait in a circle.
    """
    batches: list[int | None] = []
    for item in failures:
        batches.extend(
            session.scalars(
                update(Message)
                .where(Message.id == item.message_id, Message.status == MessageStatus.SENT.value)
                .values(status=MessageStatus.FAILED.value, skip_reason=item.reason)
                .returning(Message.batch_id)
                .execution_options(synchronize_session=False)
            )
        )
    move(session, per_batch(batches), MessageStatus.SENT, MessageStatus.FAILED)
    return len(batches)


def add(session: Session, item: Suppressed, source: str, now: datetime) -> bool:
    """Suppress the address (first reason wins), update its supporter; True when new."""
    statement = (
        insert_for(session, Suppression)
        .values(email_hash=item.email_hash, reason=item.reason.value, source=source, created_at=now)
        .on_conflict_do_nothing(index_elements=["email_hash"])
        .returning(Suppression.id)
    )
    created = session.execute(statement).scalar() is not None
    _mark_supporter(session, item, now)
    return created


def _mark_supporter(session: Session, item: Suppressed, now: datetime) -> None:
    status = _STATUS_FOR.get(item.reason)
    if status is None:
        return  # staff's own (manual) suppression: the address stops, the supporter's status stays
    weaker = [s.value for s in _RANK[: _RANK.index(status)]]
    match = Supporter.email_hash == item.email_hash
    if item.supporter_id is not None:
        match = match | (Supporter.id == item.supporter_id)
    ids = list(
        session.scalars(
            update(Supporter)
            .where(match, Supporter.status.in_(weaker))
            .values(status=status.value, updated_at=now)
            .returning(Supporter.id)
        )
    )
    if item.reason in _CANCELS:
        owners = session.scalars(select(Supporter.id).where(match))
        cancel_pending(session, [*ids, *owners], item.reason)


def remove_manual(session: Session, email_hash: str) -> bool:
    """Lift a suppression staff added by hand; True when one was there.

    The others stay: they record what the supporter or the provider said (an
    unsubscribe, a complaint, a bounce, an erasure), which staff may not undo.
    """
    found = session.scalar(select(Suppression).where(Suppression.email_hash == email_hash))
    if found is None:
        return False
    if found.reason != SuppressionReason.MANUAL.value:
        raise InvalidInput(
            f"this address is suppressed as {found.reason}, which only the supporter can undo;"
            " only manual suppressions can be removed"
        )
    session.delete(found)
    return True


def cancel_pending(
    session: Session, supporter_ids: Sequence[int], reason: SuppressionReason
) -> int:
    """Cancel planned messages not already handed to the provider."""
    if not supporter_ids:
        return 0
    in_flight = select(Batch.id).where(Batch.status.in_([s.value for s in _IN_FLIGHT]))
    pending = [
        Message.supporter_id.in_(set(supporter_ids)),
        Message.status == MessageStatus.PLANNED.value,
        Message.batch_id.is_(None) | Message.batch_id.not_in(in_flight),
    ]
    # Their batches locked first: a worker's acceptance moves a batch's planned tally
    # whole (sender.core.tallies). The conditions are checked again once locked.
    lock(session, [b for b in session.scalars(select(Message.batch_id).where(*pending)) if b])
    cancelled = list(
        session.scalars(
            update(Message)
            .where(*pending)
            .values(status=MessageStatus.CANCELLED.value, skip_reason=reason.value)
            .returning(Message.batch_id)
            .execution_options(synchronize_session=False)
        )
    )
    move(session, per_batch(cancelled), MessageStatus.PLANNED, MessageStatus.CANCELLED)
    return len(cancelled)


def track_soft_bounces(
    session: Session, events: Sequence[NormalisedEvent], now: datetime
) -> list[Suppressed]:
    """Update bounce streaks from events in time order; the addresses that hit the limit."""
    outcome: dict[str, tuple[bool, int]] = {}  # hash -> (delivered seen, soft bounces since)
    for event in events:
        if event.email_hash is None:
            continue
        delivered, soft = outcome.get(event.email_hash, (False, 0))
        if event.event_type is EventType.DELIVERED:
            outcome[event.email_hash] = (True, 0)
        elif event.event_type is EventType.BOUNCED and not event.hard_bounce:
            outcome[event.email_hash] = (delivered, soft + 1)
    reset = [h for h, (delivered, soft) in outcome.items() if delivered and soft == 0]
    if reset:
        session.execute(delete(BounceStreak).where(BounceStreak.email_hash.in_(reset)))
    reached = []
    for email_hash, (delivered, soft) in sorted(outcome.items()):
        if soft and _add_to_streak(session, email_hash, soft, delivered, now) >= SOFT_BOUNCE_LIMIT:
            reached.append(Suppressed(email_hash, SuppressionReason.BOUNCED))
    return reached


def _add_to_streak(
    session: Session, email_hash: str, soft: int, restart: bool, now: datetime
) -> int:
    insert = insert_for(session, BounceStreak).values(
        email_hash=email_hash, soft_bounces=soft, updated_at=now
    )
    grown = soft if restart else BounceStreak.soft_bounces + soft
    statement = insert.on_conflict_do_update(
        index_elements=["email_hash"], set_={"soft_bounces": grown, "updated_at": now}
    ).returning(BounceStreak.soft_bounces)
    return int(session.execute(statement).scalar_one())
