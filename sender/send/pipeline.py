"""Send one batch, exactly once: claim → re-check → tokens → render → send → record.

The batch is committed as SENDING with a fresh send key before the request
leaves; the provider's acceptance moves the batch and its messages to SENT
in one transaction. A batch left SENDING (the worker died, or the answer was
lost) is settled by `repository.reconcile` from provider events before
anything is resent. See docs/SENDING.md.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

from sender.core.addresses import domain_of
from sender.core.clock import Clock, SystemClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import CampaignError, TransportError
from sender.core.mail import OutgoingBatch
from sender.core.models import Batch, Campaign, Case, Wave
from sender.core.vocabulary import BatchStatus, CaseStatus, WaveKind, WaveStatus
from sender.ops import metrics
from sender.ops.logs import ContextScope, log_context
from sender.render.identity import sender_identity
from sender.render.renderer import CaseContent, Renderer, WaveContent, batch_args
from sender.send import store as repo
from sender.send.eligibility import SkipReason
from sender.send.ratelimit import TokenBucket, demands_for
from sender.send.transport.base import (
    Accepted,
    NotAuthorised,
    OutcomeUnknown,
    Rejected,
    RetryLater,
    Transport,
)

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SENT = "sent"
    NOT_MINE = "not_mine"  # another worker has it, or it is no longer queued
    HELD = "held"  # wave paused/cancelled or case paused: back to pending, nothing sent
    EXPIRED = "expired"  # its send window closed: cancelled, never sent late
    RETRY = "retry"  # not accepted yet; back to pending with a retry time
    FAILED = "failed"  # the provider refused this batch (400/413)
    UNAUTHORISED = "unauthorised"  # wave paused (401/403)
    UNKNOWN = "unknown"  # left SENDING for reconciliation


@dataclass(frozen=True)
class SendPolicy:
    attempts: int = 4  # requests per claim before the batch goes back to pending
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 60.0
    longest_inline_wait_seconds: float = 90.0  # longer waits free the worker
    reconcile_grace: timedelta = timedelta(minutes=10)
    queued_timeout: timedelta = timedelta(minutes=10)

    @classmethod
    def from_settings(cls, settings: Settings) -> SendPolicy:
        return cls(
            attempts=settings.send_attempts,
            reconcile_grace=timedelta(seconds=settings.reconcile_grace_seconds),
            queued_timeout=timedelta(seconds=settings.queued_timeout_seconds),
        )

    def backoff(self, attempt: int) -> float:
        """Exponential with jitter: half fixed, half random, so retries spread out."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    outcome: Outcome
    sent: int = 0
    skipped: int = 0
    detail: str = ""


@dataclass
class Sender:
    """What sending needs; one per worker process, reused across batches."""

    engine: Engine
    settings: Settings
    transport: Transport
    bucket: TokenBucket
    clock: Clock = field(default_factory=SystemClock)
    policy: SendPolicy = field(default_factory=SendPolicy)
    sleep: Callable[[float], None] = time.sleep
    _renderers: dict[int, Renderer] = field(default_factory=dict)

    def renderer(self, campaign: Campaign) -> Renderer:
        found = self._renderers.get(campaign.id)
        if found is None:
            identity = sender_identity(self.settings, campaign)
            found = self._renderers[campaign.id] = Renderer(self.settings, identity)
        return found


@dataclass(frozen=True)
class _Job:
    """What was read in the claim transaction, detached from the session."""

    batch: Batch
    wave: Wave
    case: Case
    campaign: Campaign
    going: tuple[repo.RecipientRow, ...]
    skipped: int


def new_send_key() -> str:
    return secrets.token_hex(16)


def send_batch(batch_id: int, sender: Sender) -> BatchResult:
    started = time.perf_counter()
    with log_context(batch_id=batch_id) as scope:
        result = _send_batch(batch_id, sender, scope)
        if result.outcome is not Outcome.NOT_MINE:
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            log.info(
                "batch %s %s: %s sent, %s skipped %s",
                batch_id,
                result.outcome,
                result.sent,
                result.skipped,
                result.detail,
            )
    return result


def _send_batch(batch_id: int, sender: Sender, scope: ContextScope) -> BatchResult:
    key = new_send_key()
    job_or_result = _prepare(batch_id, key, sender, scope)
    if isinstance(job_or_result, BatchResult):
        return job_or_result
    return _deliver(job_or_result, key, sender)


def _prepare(batch_id: int, key: str, sender: Sender, scope: ContextScope) -> _Job | BatchResult:
    """Claim the batch and re-check wave, case, window and each recipient, in one commit."""
    now = sender.clock.now()
    with session_scope(sender.engine) as session:
        if not repo.claim_batch(session, batch_id, key, now):
            return BatchResult(batch_id, Outcome.NOT_MINE)
        batch, wave, case, campaign = repo.batch_with_context(session, batch_id)
        scope.add(wave_id=wave.id, case_id=case.id)
        if wave.status != WaveStatus.SENDING or case.status != CaseStatus.ACTIVE:
            repo.finish_batch(session, batch_id, key, BatchStatus.PENDING)
            if wave.status == WaveStatus.CANCELLED:
                repo.cancel_wave_batches(session, wave.id)
            return BatchResult(
                batch_id, Outcome.HELD, detail=f"wave {wave.status}, case {case.status}"
            )
        if now >= batch.send_before or now >= campaign.window_end:
            repo.finish_batch(session, batch_id, key, BatchStatus.QUEUED)
            repo.cancel_batches(session, [batch_id], SkipReason.MISSED, "send window closed")
            return BatchResult(batch_id, Outcome.EXPIRED)
        cap = timedelta(hours=sender.settings.frequency_cap_hours)
        rows = repo.recipients(session, batch_id, wave, now, cap)
        skipped = {r.message_id: r.skip_reason for r in rows if r.skip_reason}
        repo.skip_messages(session, skipped)
        going = tuple(r for r in rows if not r.skip_reason)
        if not going:
            repo.record_accepted(session, batch_id, key, now, None)
            return BatchResult(batch_id, Outcome.SENT, 0, len(skipped), "nobody left to send to")
        session.expunge_all()
    return _Job(batch, wave, case, campaign, going, len(skipped))


def _deliver(job: _Job, key: str, sender: Sender) -> BatchResult:
    held = _take_tokens(job, key, sender)
    if held is not None:
        return held
    try:
        renderer = sender.renderer(job.campaign)
        variant = renderer.variant(
            WaveKind(job.wave.kind),
            CaseContent.from_row(job.case),
            job.batch.language,
            WaveContent.from_row(job.wave),
        )
    except CampaignError as error:
        return _finish(job, key, sender, BatchStatus.FAILED, Outcome.FAILED, f"render: {error}")
    categories = (job.campaign.slug, job.wave.kind, job.case.slug)
    # Built once: only the shared args change between attempts (a new send key).
    recipients = renderer.recipients(variant, job.going, job.case.id, job.wave.id)
    for attempt in range(1, sender.policy.attempts + 1):
        shared = batch_args(job.case.id, job.wave.id, send_key=key)
        outgoing = renderer.batch(variant, recipients, key, categories, shared)
        try:
            accepted = _send_counted(sender.transport, outgoing)
        except RetryLater as error:
            wait = _retry_wait(error, attempt, sender.policy)
            if wait is None:
                return _back_later(job, key, sender, error, attempt)
            sender.sleep(wait)
            if not _still_sendable(job, sender):
                return _finish(job, key, sender, BatchStatus.PENDING, Outcome.HELD, "paused")
            fresh = new_send_key()
            with session_scope(sender.engine) as session:
                if not repo.rekey(session, job.batch.id, key, fresh, sender.clock.now()):
                    return BatchResult(job.batch.id, Outcome.NOT_MINE, detail="taken over")
            key = fresh
        except Rejected as error:
            return _failed(job, key, sender, error)
        except NotAuthorised as error:
            return _unauthorised(job, key, sender, error)
        except OutcomeUnknown as error:
            return _unknown(job, key, sender, error)
        else:
            return _accepted(job, key, sender, outgoing, accepted)
    raise AssertionError("unreachable: the last attempt returns")


def _send_counted(transport: Transport, outgoing: OutgoingBatch) -> Accepted:
    """One provider request; its answer (and a retry, if that is what it asks) is counted."""
    try:
        accepted = transport.send(outgoing)
    except TransportError as error:
        status_code = getattr(error, "status_code", None)
        metrics.count_answer(status_code, retried=isinstance(error, RetryLater))
        raise
    metrics.count_answer(accepted.status_code)
    return accepted


def _take_tokens(job: _Job, key: str, sender: Sender) -> BatchResult | None:
    per_hour = job.wave.rate_per_hour or sender.settings.rate_per_hour
    rates = job.wave.domain_rates or {}
    # Only warmed-up domains have buckets of their own; most waves have none,
    # and splitting 1,000 addresses for nothing cost about a millisecond.
    domains = (
        Counter(d for r in job.going if (d := domain_of(r.email or "")) in rates) if rates else {}
    )
    demands = demands_for(job.campaign.id, per_hour, len(job.going), domains, rates)
    while True:
        wait = sender.bucket.take(demands, sender.clock.now().timestamp())
        if wait <= 0:
            return None
        if wait > sender.policy.longest_inline_wait_seconds:
            retry_at = sender.clock.now() + timedelta(seconds=wait)
            with session_scope(sender.engine) as session:
                repo.finish_batch(
                    session, job.batch.id, key, BatchStatus.PENDING, retry_at=retry_at
                )
            return BatchResult(job.batch.id, Outcome.RETRY, detail=f"rate limit: {wait:.0f}s")
        sender.sleep(wait)


def _retry_wait(error: RetryLater, attempt: int, policy: SendPolicy) -> float | None:
    """Seconds to wait before the next attempt here, or None to give the batch back."""
    if attempt >= policy.attempts:
        return None
    wait = error.wait_seconds if error.wait_seconds is not None else policy.backoff(attempt)
    return wait if wait <= policy.longest_inline_wait_seconds else None


def _still_sendable(job: _Job, sender: Sender) -> bool:
    with session_scope(sender.engine) as session:
        wave = session.get(Wave, job.wave.id)
        case = session.get(Case, job.case.id)
        return bool(
            wave and case and wave.status == WaveStatus.SENDING and case.status == CaseStatus.ACTIVE
        )


def _accepted(
    job: _Job, key: str, sender: Sender, outgoing: OutgoingBatch, accepted: Accepted
) -> BatchResult:
    with session_scope(sender.engine) as session:
        sent = repo.record_accepted(
            session, job.batch.id, key, sender.clock.now(), accepted.provider_message_id
        )
    metrics.count_messages(str(job.wave.id), job.case.slug, sent=sent)
    return BatchResult(job.batch.id, Outcome.SENT, sent, job.skipped)


def _back_later(
    job: _Job, key: str, sender: Sender, error: RetryLater, attempt: int
) -> BatchResult:
    wait = error.wait_seconds or sender.policy.backoff(attempt + 1)
    retry_at = sender.clock.now() + timedelta(seconds=max(wait, 30.0))
    with session_scope(sender.engine) as session:
        repo.finish_batch(
            session, job.batch.id, key, BatchStatus.PENDING, error=str(error), retry_at=retry_at
        )
    return BatchResult(job.batch.id, Outcome.RETRY, detail=str(error))


def _failed(job: _Job, key: str, sender: Sender, error: Rejected) -> BatchResult:
    detail = f"provider refused the batch ({error.status_code}): {error}"
    return _finish(job, key, sender, BatchStatus.FAILED, Outcome.FAILED, detail)


def _finish(
    job: _Job, key: str, sender: Sender, status: BatchStatus, outcome: Outcome, detail: str
) -> BatchResult:
    with session_scope(sender.engine) as session:
        repo.finish_batch(session, job.batch.id, key, status, error=detail)
        if status is BatchStatus.FAILED:
            repo.fail_messages(session, job.batch.id)
    if status is BatchStatus.FAILED:
        metrics.count_messages(str(job.wave.id), job.case.slug, failed=len(job.going))
    return BatchResult(job.batch.id, outcome, detail=detail)


def _unauthorised(job: _Job, key: str, sender: Sender, error: NotAuthorised) -> BatchResult:
    reason = (
        f"paused: the provider refused our credentials ({error.status_code}: {error}); "
        "fix the API key or sender verification, then `campaign wave resume "
        f"{job.wave.name}`"
    )
    with session_scope(sender.engine) as session:
        repo.finish_batch(session, job.batch.id, key, BatchStatus.PENDING, error=reason)
        repo.move_wave(
            session,
            job.wave.id,
            [WaveStatus.SENDING, WaveStatus.SCHEDULED],
            WaveStatus.PAUSED,
            reason,
        )
    return BatchResult(job.batch.id, Outcome.UNAUTHORISED, detail=reason)


def _unknown(job: _Job, key: str, sender: Sender, error: OutcomeUnknown) -> BatchResult:
    """Stay SENDING: only events can tell whether the provider took it."""
    with session_scope(sender.engine) as session:
        repo.finish_batch(
            session, job.batch.id, key, BatchStatus.SENDING, error=f"outcome unknown: {error}"
        )
    return BatchResult(job.batch.id, Outcome.UNKNOWN, detail=str(error))


def result_dict(result: BatchResult) -> dict[str, Any]:
    """A JSON-friendly result for Celery."""
    return {
        "batch_id": result.batch_id,
        "outcome": result.outcome.value,
        "sent": result.sent,
        "skipped": result.skipped,
        "detail": result.detail,
    }


def default_sender(settings: Settings, clock: Clock | None = None) -> Sender:
    from sender.core.db import get_engine
    from sender.send.ratelimit import bucket_for
    from sender.send.transport.select import transport_for

    return Sender(
        engine=get_engine(settings.database_url),
        settings=settings,
        transport=transport_for(settings),
        bucket=bucket_for(settings.redis_url),
        clock=clock or SystemClock(),
        policy=SendPolicy.from_settings(settings),
    )
