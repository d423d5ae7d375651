"""Every database access of the send pipeline after planning (sender.send.planner).

State changes are conditional UPDATEs: a batch moves only from the state the
caller saw, so any number of workers can share the work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
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
from sender.core.vocabulary import (
    BatchStatus,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveStatus,
)
from sender.report.totals import count_sends
from sender.send.eligibility import SkipReason, acted, excludes_actors, recently_mailed, suppressed

OPEN_BATCH = (BatchStatus.PENDING, BatchStatus.QUEUED, BatchStatus.SENDING)


@dataclass(frozen=True)
class RecipientRow:
    message_id: int
    supporter_id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    skip_reason: str | None


@dataclass(frozen=True)
class WaveSummary:
    name: str
    kind: str
    status: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    counts: Mapping[str, int]  # message status -> count


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


def case_by_slug(session: Session, campaign_id: int, slug: str) -> Case:
    found = session.scalar(select(Case).where(Case.campaign_id == campaign_id, Case.slug == slug))
    if found is None:
        raise NotFound(f"no case {slug!r}")
    return found


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


def set_case_status(session: Session, case_id: int, status: CaseStatus) -> None:
    session.execute(update(Case).where(Case.id == case_id).values(status=status))


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


def wave_summaries(session: Session, campaign_id: int) -> list[WaveSummary]:
    counts: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(Message.wave_id, Message.status, func.count())
        .join(Wave, Wave.id == Message.wave_id)
        .where(Wave.campaign_id == campaign_id)
        .group_by(Message.wave_id, Message.status)
    )
    for wave_id, status, count in rows:
        counts.setdefault(wave_id, {})[status] = count
    return [
        WaveSummary(
            w.name, w.kind, w.status, w.starts_at, w.ends_at, w.status_reason, counts.get(w.id, {})
        )
        for w in waves_of(session, campaign_id)
    ]


def batch_errors(session: Session, wave_id: int) -> list[tuple[int, str | None]]:
    return [
        (row.id, row.error)
        for row in session.execute(
            select(Batch.id, Batch.error).where(
                Batch.wave_id == wave_id, Batch.status == BatchStatus.FAILED
            )
        )
    ]


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
    return [
        Batch.wave_id.in_(select(Wave.id).where(Wave.status == WaveStatus.SENDING)),
        Batch.case_id.in_(select(Case.id).where(Case.status == CaseStatus.ACTIVE)),
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
    """SENDING waves with nothing left to send become DONE; returns their names."""
    open_batches = exists().where(Batch.wave_id == Wave.id, Batch.status.in_(OPEN_BATCH))
    waves = list(
        session.scalars(select(Wave).where(Wave.status == WaveStatus.SENDING, ~open_batches))
    )
    for wave in waves:
        move_wave(session, wave.id, [WaveStatus.SENDING], WaveStatus.DONE, finished_at=now)
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
    seen = exists().where(Event.message_id == Message.id)
    sent = _mark_sent(
        session,
        update(Message)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED, seen)
        .values(status=MessageStatus.SENT, sent_at=now)
        .execution_options(synchronize_session=False),
        (batch.case_id, batch.wave_id, batch.language),
        now,
    )
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


# --- one batch ----------------------------------------------------------------


def claim_batch(session: Session, batch_id: int, send_key: str, now: datetime) -> bool:
    """QUEUED → SENDING with a fresh send key; False if another worker has it."""
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status == BatchStatus.QUEUED)
        .values(
            status=BatchStatus.SENDING,
            send_key=send_key,
            claimed_at=now,
            attempts=Batch.attempts + 1,
        )
    )
    return _moved(result)


def rekey(session: Session, batch_id: int, old_key: str, new_key: str, now: datetime) -> bool:
    """A new attempt of a SENDING batch gets a new key, committed before it leaves."""
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.send_key == old_key, Batch.status == BatchStatus.SENDING)
        .values(send_key=new_key, claimed_at=now, attempts=Batch.attempts + 1)
    )
    return _moved(result)


def batch_with_context(session: Session, batch_id: int) -> tuple[Batch, Wave, Case, Campaign]:
    """The batch, its wave, case and campaign in one query (four lookups were four round trips)."""
    found = session.execute(
        select(Batch, Wave, Case, Campaign)
        .join(Wave, Wave.id == Batch.wave_id)
        .join(Case, Case.id == Batch.case_id)
        .join(Campaign, Campaign.id == Wave.campaign_id)
        .where(Batch.id == batch_id)
    ).one_or_none()
    if found is None:
        raise NotFound(f"no batch {batch_id}")
    batch, wave, case, campaign = found
    return batch, wave, case, campaign


def recipients(
    session: Session, batch_id: int, wave: Wave, now: datetime, cap: timedelta
) -> list[RecipientRow]:
    """The batch's unsent messages with, per row, why it may no longer go (one query)."""
    rows = session.execute(
        _recipients_query(excludes_actors(wave.kind, wave.audience)),
        {"batch_id": batch_id, "wave_id": wave.id, "since": now - cap},
    )
    return [RecipientRow(*row) for row in rows]


@lru_cache(maxsize=2)
def _recipients_query(skip_actors: bool) -> Select[Any]:
    """Built once per shape, values bound at each call: building it cost a worker
    about a millisecond per batch."""
    rules: list[tuple[ColumnElement[bool], SkipReason]] = [
        (
            or_(Supporter.status != SupporterStatus.SUBSCRIBED, Supporter.email.is_(None)),
            SkipReason.UNSUBSCRIBED,
        ),
        (Supporter.consent.is_not(True), SkipReason.NO_CONSENT),
        (suppressed(Supporter.email_hash), SkipReason.SUPPRESSED),
        (
            recently_mailed(Supporter.id, bindparam("wave_id"), bindparam("since")),
            SkipReason.FREQUENCY_CAP,
        ),
    ]
    if skip_actors:
        rules.append((acted(Supporter.id, Message.case_id), SkipReason.ACTED))
    reason = case(*[(cond, literal(value.value)) for cond, value in rules], else_=None)
    return (
        select(
            Message.id,
            Supporter.id,
            Supporter.email,
            Supporter.first_name,
            Supporter.last_name,
            reason,
        )
        .join(Supporter, Supporter.id == Message.supporter_id)
        .where(Message.batch_id == bindparam("batch_id"), Message.status == MessageStatus.PLANNED)
        .order_by(Message.id)
    )


def skip_messages(session: Session, skipped: Mapping[int, str]) -> None:
    by_reason: dict[str, list[int]] = {}
    for message_id, why in skipped.items():
        by_reason.setdefault(why, []).append(message_id)
    for why, ids in by_reason.items():
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == MessageStatus.PLANNED)
            .values(status=MessageStatus.SKIPPED, skip_reason=why)
        )


def record_accepted(
    session: Session, batch_id: int, send_key: str, now: datetime, provider_id: str | None
) -> int:
    """The provider took the batch: batch and its messages become SENT together."""
    variant = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            Batch.send_key == send_key,
            Batch.status == BatchStatus.SENDING,
        )
        .values(status=BatchStatus.SENT, sent_at=now, provider_message_id=provider_id, error=None)
        .returning(Batch.case_id, Batch.wave_id, Batch.language)
    ).one_or_none()
    if variant is None:
        return 0
    case_id, wave_id, language = variant
    return _mark_sent(
        session,
        update(Message)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED)
        .values(status=MessageStatus.SENT, sent_at=now)
        .execution_options(synchronize_session=False),
        (case_id, wave_id, language),
        now,
    )


def _mark_sent(session: Session, marking: Any, variant: tuple[int, int, str], now: datetime) -> int:
    """Run an UPDATE that marks one batch's messages SENT; add them to the report's totals.

    A batch is one case, wave and language, so the count needs no rows back
    (returning and counting 1,000 rows per batch was most of this step).
    """
    marked = rowcount(session.execute(marking, execution_options={"preserve_rowcount": True}))
    count_sends(session, {variant: marked}, now)
    return marked


def finish_batch(
    session: Session,
    batch_id: int,
    send_key: str | None,
    status: BatchStatus,
    *,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Leave SENDING (or QUEUED) for `status`, guarded by the key of this attempt."""
    guard = Batch.send_key == send_key if send_key else Batch.send_key.is_(None)
    values: dict[str, Any] = {"status": status, "error": error, "retry_at": retry_at}
    if status is not BatchStatus.SENDING:
        values["send_key"] = None if status is not BatchStatus.FAILED else send_key
    result = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            guard,
            Batch.status.in_([BatchStatus.SENDING, BatchStatus.QUEUED]),
        )
        .values(**values)
    )
    return _moved(result)


def fail_messages(session: Session, batch_id: int) -> None:
    session.execute(
        update(Message)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED)
        .values(status=MessageStatus.FAILED)
    )


def retry_failed(session: Session, wave_id: int) -> int:
    ids = list(
        session.scalars(
            select(Batch.id).where(Batch.wave_id == wave_id, Batch.status == BatchStatus.FAILED)
        )
    )
    if ids:
        session.execute(
            update(Message)
            .where(Message.batch_id.in_(ids), Message.status == MessageStatus.FAILED)
            .values(status=MessageStatus.PLANNED)
        )
        session.execute(
            update(Batch)
            .where(Batch.id.in_(ids))
            .values(status=BatchStatus.PENDING, send_key=None, retry_at=None)
        )
    return len(ids)


def batch_domains(session: Session, batch_id: int) -> dict[str, int]:
    """Recipients per address domain, for the warm-up buckets."""
    domain = func.lower(func.substr(Supporter.email, func.instr(Supporter.email, "@") + 1))
    if session.get_bind().dialect.name == "postgresql":
        domain = func.lower(func.split_part(Supporter.email, "@", 2))
    rows = session.execute(
        select(domain, func.count())
        .join(Message, Message.supporter_id == Supporter.id)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED)
        .group_by(domain)
    )
    return {str(d): int(n) for d, n in rows}
