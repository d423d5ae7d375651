"""Sending's database access after planning (sender.send.planner): the campaign's waves
and cases, staff controls, the scheduler's sweeps and reconciliation. One batch's own
statements, behind the pipeline's store, are in sender.send.batch_store.

State changes are conditional UPDATEs: a batch moves only from the state the
caller saw, so any number of workers can share the work.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from sender.core.db import rowcount
from sender.core.errors import NotFound
from sender.core.models import (
    Batch,
    Campaign,
    Case,
    Event,
    Message,
    Supporter,
    Wave,
)
from sender.core.tallies import lock, move, moved_all, per_batch
from sender.core.vocabulary import (
    AudienceRule,
    BatchStatus,
    CaseStatus,
    EventType,
    MessageStatus,
    WaveStatus,
)
from sender.report.totals import count_sends
from sender.send.eligibility import SkipReason, case_statuses
from sender.send.split import awaiting_remainder
from sender.staff import audit
from sender.staff.actions import What

OPEN_BATCH = (BatchStatus.PENDING, BatchStatus.QUEUED, BatchStatus.SENDING)


# --- campaign, waves, cases -------------------------------------------------


def campaign_by_slug(session: Session, slug: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise NotFound(f"no campaign {slug!r}")
    return campaign


def wave_by_name(session: Session, campaign_id: int, name: str) -> Wave:
    wave = session.scalar(select(Wave).where(Wave.campaign_id == campaign_id, Wave.name == name))
    if wave is None:
        raise NotFound(f"no wave named {name!r}")
    return wave


def waves_of(session: Session, campaign_id: int) -> list[Wave]:
    return list(
        session.scalars(
            select(Wave).where(Wave.campaign_id == campaign_id).order_by(Wave.starts_at, Wave.id)
        )
    )


def active_cases(session: Session, campaign_id: int) -> list[Case]:
    return list(
        session.scalars(
            select(Case)
            .where(Case.campaign_id == campaign_id, Case.status == CaseStatus.ACTIVE)
            .order_by(Case.id)
        )
    )


def supporter_addresses(session: Session, emails: Sequence[str]) -> list[str]:
    """Which of these addresses belong to supporters."""
    return list(session.scalars(select(Supporter.email).where(Supporter.email.in_(list(emails)))))


def waves_in(
    session: Session, statuses: Sequence[str], ids: Sequence[int] | None = None
) -> list[Wave]:
    """Every wave (of any campaign) in one of these states, or those of `ids` in them."""
    query = select(Wave).where(Wave.status.in_(list(statuses)))
    if ids is not None:
        query = query.where(Wave.id.in_(list(ids)))
    return list(session.scalars(query.order_by(Wave.id)))


def move_wave(
    session: Session,
    wave_id: int,
    from_statuses: Sequence[str],
    to_status: WaveStatus,
    reason: str | None = None,
    **values: Any,
) -> bool:
    """Change a wave's status only from one the caller expects; True when it moved."""
    result = session.execute(
        update(Wave)
        .where(Wave.id == wave_id, Wave.status.in_(list(from_statuses)))
        .values(status=to_status, status_reason=reason, **values)
    )
    return _moved(result)


def _moved(result: object) -> bool:
    return rowcount(result) > 0


# --- the scheduler's sweeps ---------------------------------------------------


def missed_waves(session: Session, now: datetime) -> list[Wave]:
    """Launched waves whose end passed before they were planned: never sent late."""
    return list(
        session.scalars(
            select(Wave).where(
                Wave.status == WaveStatus.SCHEDULED, Wave.planned_at.is_(None), Wave.ends_at <= now
            )
        )
    )


def due_waves(session: Session, now: datetime) -> list[Wave]:
    return list(
        session.scalars(
            select(Wave)
            .where(
                Wave.status == WaveStatus.SCHEDULED,
                Wave.planned_at.is_(None),
                Wave.starts_at <= now,
                Wave.ends_at > now,
            )
            .order_by(Wave.starts_at)
        )
    )


def _sendable() -> list[ColumnElement[bool]]:
    """A sending wave, and a case that wave may mail about (sender.send.eligibility)."""
    good_news = select(Wave.id).where(
        Wave.status == WaveStatus.SENDING,
        Wave.audience.in_([a for a in AudienceRule if CaseStatus.RESOLVED in case_statuses(a)]),
    )
    return [
        Batch.wave_id.in_(select(Wave.id).where(Wave.status == WaveStatus.SENDING)),
        or_(
            Batch.case_id.in_(select(Case.id).where(Case.status == CaseStatus.ACTIVE)),
            and_(
                Batch.wave_id.in_(good_news),
                Batch.case_id.in_(select(Case.id).where(Case.status == CaseStatus.RESOLVED)),
            ),
        ),
    ]


def release_due(session: Session, now: datetime, limit: int) -> list[int]:
    """PENDING batches whose slot opened become QUEUED; returns their ids to enqueue."""
    due = (
        select(Batch.id)
        .where(
            Batch.status == BatchStatus.PENDING,
            Batch.send_after <= now,
            Batch.send_before > now,
            or_(Batch.retry_at.is_(None), Batch.retry_at <= now),
            *_sendable(),
        )
        .order_by(Batch.send_after, Batch.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    if ids:
        session.execute(
            update(Batch)
            .where(Batch.id.in_(ids), Batch.status == BatchStatus.PENDING)
            .values(status=BatchStatus.QUEUED, claimed_at=now)
        )
    return ids


def stuck_queued(session: Session, now: datetime, older_than: timedelta) -> list[int]:
    """QUEUED batches no worker took (a lost broker message): stamp and hand out again."""
    ids = list(
        session.scalars(
            select(Batch.id)
            .where(Batch.status == BatchStatus.QUEUED, Batch.claimed_at <= now - older_than)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(
            update(Batch)
            .where(Batch.id.in_(ids), Batch.status == BatchStatus.QUEUED)
            .values(claimed_at=now)
        )
    return ids


def expire_batches(session: Session, now: datetime) -> int:
    """Unsent batches whose send window closed are cancelled, never sent late."""
    ids = list(
        session.scalars(
            select(Batch.id).where(
                Batch.status.in_([BatchStatus.PENDING, BatchStatus.QUEUED]),
                Batch.send_before <= now,
            )
        )
    )
    if ids:
        cancel_batches(session, ids, SkipReason.MISSED, "its send window closed before it went")
    return len(ids)


def cancel_batches(session: Session, ids: Sequence[int], reason: SkipReason, error: str) -> None:
    """Cancel the batches' planned messages; the waiting ones among them become CANCELLED."""
    if not ids:
        return
    # First, so the rows are locked before their messages move (sender.core.tallies).
    session.execute(
        update(Batch)
        .where(Batch.id.in_(list(ids)))
        .values(**moved_all(MessageStatus.PLANNED, MessageStatus.CANCELLED))
    )
    session.execute(
        update(Message)
        .where(Message.batch_id.in_(list(ids)), Message.status == MessageStatus.PLANNED)
        .values(status=MessageStatus.CANCELLED, skip_reason=reason)
    )
    session.execute(
        update(Batch)
        .where(Batch.id.in_(list(ids)), Batch.status.in_([BatchStatus.PENDING, BatchStatus.QUEUED]))
        .values(status=BatchStatus.CANCELLED, error=error)
    )


def cancel_wave_batches(session: Session, wave_id: int) -> int:
    ids = list(
        session.scalars(
            select(Batch.id).where(
                Batch.wave_id == wave_id,
                Batch.status.in_([BatchStatus.PENDING, BatchStatus.QUEUED]),
            )
        )
    )
    cancel_batches(session, ids, SkipReason.MISSED, "wave cancelled")
    return len(ids)


def finished_waves(session: Session, now: datetime) -> list[str]:
    """SENDING waves with nothing left to send become DONE; returns their names.

    A half-planned wave (`planning_until` set) is not finished: rows are still staged.
    """
    open_batches = exists().where(Batch.wave_id == Wave.id, Batch.status.in_(OPEN_BATCH))
    waves = list(
        session.scalars(
            select(Wave).where(
                Wave.status == WaveStatus.SENDING,
                Wave.planning_until.is_(None),
                ~open_batches,
                ~awaiting_remainder(),
            )
        )
    )
    for wave in waves:
        if move_wave(session, wave.id, [WaveStatus.SENDING], WaveStatus.DONE, finished_at=now):
            audit.record(
                session,
                audit.system_actor(),
                What.WAVE_DONE,
                f"wave {wave.name}",
                before="status=sending",
                after="status=done",
                campaign_id=wave.campaign_id,
            )
    return [w.name for w in waves]


def unreconciled(session: Session, now: datetime, grace: timedelta) -> list[int]:
    return list(
        session.scalars(
            select(Batch.id)
            .where(Batch.status == BatchStatus.SENDING, Batch.claimed_at <= now - grace)
            .with_for_update(skip_locked=True)
        )
    )


def reconcile(session: Session, batch_id: int, now: datetime) -> tuple[int, int]:
    """Messages with provider events count as sent; the rest go back to pending.

    Returns (marked sent, to resend). The batch must still be SENDING.
    """
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None or batch.status != BatchStatus.SENDING:
        return (0, 0)
    # A drop is no delivery: the message goes again (a quota drop was never delivered;
    # an address drop has suppressed the address, so the resend's re-check skips it).
    seen = exists().where(
        Event.message_id == Message.id, Event.event_type != EventType.DROPPED.value
    )
    sent = mark_sent(
        session,
        update(Message)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED, seen)
        .values(status=MessageStatus.SENT, sent_at=now)
        .execution_options(synchronize_session=False),
        (batch.case_id, batch.wave_id, batch.language),
        now,
    )
    batch.planned_count -= sent
    batch.sent_count += sent
    left = session.scalar(
        select(func.count()).where(
            Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED
        )
    )
    if left:
        batch.status = BatchStatus.PENDING
        batch.error = f"reconciled: {sent} confirmed by events, {left} to resend"
    else:
        batch.status = BatchStatus.SENT
        batch.sent_at = now
        batch.error = None
    batch.send_key = None
    return (int(sent), int(left or 0))


def mark_sent(session: Session, marking: Any, variant: tuple[int, int, str], now: datetime) -> int:
    """Run an UPDATE that marks one batch's messages SENT; add them to the report's totals.

    A batch is one case, wave and language, so the count needs no rows back
    (returning and counting 1,000 rows per batch was most of this step).
    """
    marked = rowcount(session.execute(marking, execution_options={"preserve_rowcount": True}))
    count_sends(session, {variant: marked}, now)
    return marked


def reopen_failed_messages(session: Session, wave_id: int, skip_reasons: Collection[str]) -> int:
    """Failed messages with one of these skip reasons (lower case) are sent again.

    For mail the provider accepted and then dropped for a reason about our account
    (a used-up quota): nobody received it. Their batches go back to PENDING with no
    send key, so the next tick releases them and only these messages go.
    """
    if not skip_reasons:
        return 0
    failed = select(Message.id, Message.batch_id).where(
        Message.wave_id == wave_id,
        Message.status == MessageStatus.FAILED,
        func.lower(Message.skip_reason).in_(sorted(skip_reasons)),
    )
    rows = session.execute(failed).all()
    if not rows:
        return 0
    batch_ids = sorted({row.batch_id for row in rows if row.batch_id is not None})
    lock(session, batch_ids)  # before their messages (sender.core.tallies)
    reopened = per_batch(
        session.scalars(
            update(Message)
            .where(Message.id.in_([row.id for row in rows]), Message.status == MessageStatus.FAILED)
            .values(status=MessageStatus.PLANNED, skip_reason=None, sent_at=None)
            .returning(Message.batch_id)
            .execution_options(synchronize_session=False)
        )
    )
    move(session, reopened, MessageStatus.FAILED, MessageStatus.PLANNED)
    session.execute(
        update(Batch)
        .where(Batch.id.in_(batch_ids), Batch.status.in_([BatchStatus.SENT, BatchStatus.FAILED]))
        .values(
            status=BatchStatus.PENDING,
            send_key=None,
            retry_at=None,
            error=f"reopened: the provider dropped mail for the account ({len(rows)} messages)",
        )
    )
    return len(rows)


def retry_failed(session: Session, wave_id: int) -> int:
    ids = list(
        session.scalars(
            select(Batch.id).where(Batch.wave_id == wave_id, Batch.status == BatchStatus.FAILED)
        )
    )
    if ids:
        # The batches first: locked before their messages move (sender.core.tallies).
        session.execute(
            update(Batch)
            .where(Batch.id.in_(ids))
            .values(
                status=BatchStatus.PENDING,
                send_key=None,
                retry_at=None,
                **moved_all(MessageStatus.FAILED, MessageStatus.PLANNED),
            )
        )
        session.execute(
            update(Message)
            .where(Message.batch_id.in_(ids), Message.status == MessageStatus.FAILED)
            .values(status=MessageStatus.PLANNED)
        )
    return len(ids)
