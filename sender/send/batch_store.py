"""The send pipeline's store over SQL (the SendStore of sender.send.batch): one batch's
claim and re-check, acceptance and endings, each call one transaction.

State changes are conditional UPDATEs guarded by the batch's status and the send key
of this attempt, so a batch taken over by another worker is never touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, bindparam, case, literal, or_, select, update
from sqlalchemy.orm import Session

from sender.core.config import Settings
from sender.core.db import rowcount, session_scope
from sender.core.errors import NotFound
from sender.core.models import Batch, Campaign, Case, Message, Supporter, Wave
from sender.core.subject_test import SubjectTestSpec
from sender.core.tallies import move, moved_all
from sender.core.vocabulary import (
    BatchStatus,
    CampaignStatus,
    MessageStatus,
    SupporterStatus,
    WaveStatus,
)
from sender.render.renderer import CaseContent, RecipientData, WaveContent
from sender.render.variants import content_for
from sender.send.batch import BatchOutcome, CampaignIdentity, Ending, PreparedBatch, Settled
from sender.send.eligibility import (
    SkipReason,
    acted,
    campaign_cap,
    case_statuses,
    excludes_actors,
    needs_act,
    recently_mailed,
    suppressed,
)
from sender.send.store import cancel_batches, cancel_wave_batches, mark_sent, move_wave
from sender.staff import audit
from sender.staff.actions import What


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
    return rowcount(result) > 0


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
    session: Session, batch: Batch, wave: Wave, now: datetime, cap: timedelta
) -> tuple[tuple[RecipientData, ...], dict[int, str]]:
    """The batch's unsent messages re-checked (one query): who is still eligible, as the
    renderer takes them, and why each of the others (message id -> reason) may no longer go."""
    rows = session.execute(
        _recipients_query(excludes_actors(wave.audience), needs_act(wave.audience)),
        {"batch_id": batch.id, "wave_id": wave.id, "since": now - cap},
    )
    case_id, wave_id = batch.case_id, wave.id
    going: list[RecipientData] = []
    skipped: dict[int, str] = {}
    for supporter, email, first, last, message, why in rows:
        if why is None:
            going.append(RecipientData(supporter, email, first, last, message, case_id, wave_id))
        else:
            skipped[message] = why
    return tuple(going), skipped


@lru_cache(maxsize=4)
def _recipients_query(skip_actors: bool, only_actors: bool) -> Select[Any]:
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
    if only_actors:
        rules.append((~acted(Supporter.id, Message.case_id), SkipReason.NOT_ACTED))
    reason = case(*[(cond, literal(value.value)) for cond, value in rules], else_=None)
    return (
        select(
            Supporter.id,
            Supporter.email,
            Supporter.first_name,
            Supporter.last_name,
            Message.id,
            reason,
        )
        .join(Supporter, Supporter.id == Message.supporter_id)
        .where(Message.batch_id == bindparam("batch_id"), Message.status == MessageStatus.PLANNED)
        .order_by(Message.id)
    )


def skip_messages(session: Session, batch_id: int, skipped: Mapping[int, str]) -> None:
    """Mark the batch's no-longer-eligible messages skipped; its row is locked by the claim."""
    by_reason: dict[str, list[int]] = {}
    for message_id, why in skipped.items():
        by_reason.setdefault(why, []).append(message_id)
    moved = 0
    for why, ids in by_reason.items():
        moved += rowcount(
            session.execute(
                update(Message)
                .where(Message.id.in_(ids), Message.status == MessageStatus.PLANNED)
                .values(status=MessageStatus.SKIPPED, skip_reason=why)
            )
        )
    move(session, {batch_id: moved}, MessageStatus.PLANNED, MessageStatus.SKIPPED)


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
        .values(
            status=BatchStatus.SENT,
            sent_at=now,
            provider_message_id=provider_id,
            error=None,
            # Every planned message of the batch becomes SENT below, under this row's lock.
            **moved_all(MessageStatus.PLANNED, MessageStatus.SENT),
        )
        .returning(Batch.case_id, Batch.wave_id, Batch.language)
    ).one_or_none()
    if variant is None:
        return 0
    case_id, wave_id, language = variant
    return mark_sent(
        session,
        update(Message)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED)
        .values(status=MessageStatus.SENT, sent_at=now)
        .execution_options(synchronize_session=False),
        (case_id, wave_id, language),
        now,
    )


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
    if status is BatchStatus.FAILED:
        # fail_messages fails every planned message of the batch next, under this lock.
        values.update(moved_all(MessageStatus.PLANNED, MessageStatus.FAILED))
    result = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            guard,
            Batch.status.in_([BatchStatus.SENDING, BatchStatus.QUEUED]),
        )
        .values(**values)
    )
    return rowcount(result) > 0


def fail_messages(session: Session, batch_id: int) -> None:
    """The batch's planned messages failed with it (after finish_batch moved its tallies)."""
    session.execute(
        update(Message)
        .where(Message.batch_id == batch_id, Message.status == MessageStatus.PLANNED)
        .values(status=MessageStatus.FAILED)
    )


# --- the send pipeline's store ----------------------------------------------------

# Where a batch goes when an attempt ends without the provider's acceptance.
_STATUS_AFTER = {
    Ending.FAILED: BatchStatus.FAILED,
    Ending.LATER: BatchStatus.PENDING,
    Ending.PAUSED: BatchStatus.PENDING,
    Ending.UNKNOWN: BatchStatus.SENDING,
}


@dataclass(frozen=True)
class SqlSendStore:
    """The pipeline's SendStore (sender.send.batch): one transaction per call, values out."""

    engine: Engine
    frequency_cap: timedelta

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> SqlSendStore:
        return cls(engine, timedelta(hours=settings.frequency_cap_hours))

    def claim(self, batch_id: int, send_key: str, now: datetime) -> PreparedBatch | Settled:
        """Claim the batch and re-check wave, case, window and each recipient, in one commit."""
        with session_scope(self.engine) as session:
            if not claim_batch(session, batch_id, send_key, now):
                return Settled(BatchOutcome.NOT_MINE)
            batch, wave, case_row, campaign = batch_with_context(session, batch_id)
            ids = (wave.id, case_row.id)
            if campaign.status == CampaignStatus.CLOSED:
                # Closing cancels every wave; a batch claimed meanwhile still never sends.
                finish_batch(session, batch_id, send_key, BatchStatus.PENDING)
                cancel_wave_batches(session, wave.id)
                return Settled(BatchOutcome.HELD, *ids, detail="campaign closed")
            if wave.status != WaveStatus.SENDING or case_row.status not in case_statuses(
                wave.audience
            ):
                finish_batch(session, batch_id, send_key, BatchStatus.PENDING)
                if wave.status == WaveStatus.CANCELLED:
                    cancel_wave_batches(session, wave.id)
                held = f"wave {wave.status}, case {case_row.status}"
                return Settled(BatchOutcome.HELD, *ids, detail=held)
            if now >= batch.send_before or now >= campaign.window_end:
                finish_batch(session, batch_id, send_key, BatchStatus.QUEUED)
                cancel_batches(session, [batch_id], SkipReason.MISSED, "send window closed")
                return Settled(BatchOutcome.EXPIRED, *ids)
            cap = campaign_cap(campaign.frequency_cap_hours, self.frequency_cap)
            going, skipped = recipients(session, batch, wave, now, cap)
            skip_messages(session, batch_id, skipped)
            if not going:
                record_accepted(session, batch_id, send_key, now, None)
                return Settled(BatchOutcome.SENT, *ids, len(skipped), "nobody left to send to")
            return _prepared(batch, wave, case_row, campaign, going, len(skipped))

    def rekey(self, batch_id: int, old_key: str, new_key: str, now: datetime) -> bool:
        with session_scope(self.engine) as session:
            result = session.execute(
                update(Batch)
                .where(
                    Batch.id == batch_id,
                    Batch.send_key == old_key,
                    Batch.status == BatchStatus.SENDING,
                )
                .values(send_key=new_key, claimed_at=now, attempts=Batch.attempts + 1)
            )
            return rowcount(result) > 0

    def still_sendable(self, wave_id: int, case_id: int) -> bool:
        with session_scope(self.engine) as session:
            wave_status, audience, case_status = session.execute(
                select(
                    select(Wave.status).where(Wave.id == wave_id).scalar_subquery(),
                    select(Wave.audience).where(Wave.id == wave_id).scalar_subquery(),
                    select(Case.status).where(Case.id == case_id).scalar_subquery(),
                )
            ).one()
            return wave_status == WaveStatus.SENDING and case_status in case_statuses(audience)

    def accept(self, batch_id: int, send_key: str, now: datetime, provider_id: str | None) -> int:
        with session_scope(self.engine) as session:
            return record_accepted(session, batch_id, send_key, now, provider_id)

    def finish(
        self,
        batch: PreparedBatch,
        send_key: str,
        ending: Ending,
        error: str | None,
        retry_at: datetime | None = None,
    ) -> None:
        with session_scope(self.engine) as session:
            status = _STATUS_AFTER[ending]
            ended = finish_batch(
                session, batch.id, send_key, status, error=error, retry_at=retry_at
            )
            if ending is Ending.FAILED:
                if ended:  # else the batch is no longer this attempt's: its messages neither
                    fail_messages(session, batch.id)
            elif ending is Ending.PAUSED:
                unfinished = [WaveStatus.SENDING, WaveStatus.SCHEDULED]
                if move_wave(session, batch.wave.id, unfinished, WaveStatus.PAUSED, error):
                    audit.record(
                        session,
                        audit.system_actor(),
                        What.WAVE_AUTO_PAUSE,
                        f"wave {batch.wave.name}",
                        before="status=sending",
                        after="status=paused",
                        detail=error,
                        campaign_id=batch.campaign.id,
                    )


def kinds_digest(kinds: Mapping[str, Any] | None) -> str:
    """A digest of a campaign's kinds, template sources included ("" without any)."""
    if not kinds:
        return ""
    encoded = json.dumps(kinds, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _prepared(
    batch: Batch,
    wave: Wave,
    case_row: Case,
    campaign: Campaign,
    going: tuple[RecipientData, ...],
    skipped: int,
) -> PreparedBatch:
    brand = {str(k): str(v) for k, v in (campaign.brand or {}).items()}
    return PreparedBatch(
        id=batch.id,
        language=batch.language,
        campaign=CampaignIdentity(
            campaign.id,
            campaign.slug,
            MappingProxyType(brand),
            campaign.from_email,
            campaign.from_name,
            MappingProxyType(dict(campaign.kinds or {})),
            kinds_digest(campaign.kinds),
        ),
        wave=content_for(
            WaveContent.from_row(wave), SubjectTestSpec.from_json(wave.subject_test), batch.variant
        ),
        case=CaseContent.from_row(case_row),
        rate_per_hour=wave.rate_per_hour,
        domain_rates=MappingProxyType(dict(wave.domain_rates or {})),
        going=going,
        skipped=skipped,
    )
