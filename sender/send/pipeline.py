"""Send one batch, exactly once: claim → re-check → tokens → render → send → record.

The batch is committed as SENDING with a fresh send key before the request
leaves; the provider's acceptance moves the batch and its messages to SENT
in one transaction. A batch left SENDING (the worker died, or the answer was
lost) is settled by `store.reconcile` from provider events before anything
is resent. See docs/SENDING.md.

The pipeline sees a `SendStore` (sender.send.batch) and a `Transport`, nothing
else of the outside: the store owns every transaction and hands over plain values.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sender.core.addresses import domain_of
from sender.core.clock import Clock, SystemClock
from sender.core.config import Settings
from sender.core.errors import CampaignError, TransportError
from sender.core.mail import OutgoingBatch
from sender.ops import metrics
from sender.ops.logs import ContextScope, log_context
from sender.render.identity import sender_identity
from sender.render.renderer import Renderer, batch_args
from sender.send.batch import (
    BatchOutcome,
    CampaignIdentity,
    Ending,
    PreparedBatch,
    SendStore,
    Settled,
)
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
    outcome: BatchOutcome
    sent: int = 0
    skipped: int = 0
    detail: str = ""


@dataclass
class Sender:
    """What sending needs; one per worker process, reused across batches."""

    store: SendStore
    settings: Settings
    transport: Transport
    bucket: TokenBucket
    clock: Clock = field(default_factory=SystemClock)
    policy: SendPolicy = field(default_factory=SendPolicy)
    sleep: Callable[[float], None] = time.sleep
    # Held around each batch; the process that runs the pipeline chooses it
    # (workers and the in-process commands pause the collector: sender.core.speedups).
    batch_scope: Callable[[], AbstractContextManager[object]] = nullcontext
    _renderers: dict[tuple[int, str], Renderer] = field(default_factory=dict)

    def renderer(self, campaign: CampaignIdentity) -> Renderer:
        key = (campaign.id, campaign.kinds_digest)
        found = self._renderers.get(key)
        if found is None:
            identity = sender_identity(self.settings, campaign)
            renderer = Renderer(self.settings, identity, kinds=campaign.kinds)
            found = self._renderers[key] = renderer
        return found


def new_send_key() -> str:
    return secrets.token_hex(16)


def send_batch(batch_id: int, sender: Sender) -> BatchResult:
    started = time.perf_counter()
    with log_context(batch_id=batch_id) as scope, sender.batch_scope():
        result = _send_batch(batch_id, sender, scope)
        if result.outcome is not BatchOutcome.NOT_MINE:
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
    claimed = sender.store.claim(batch_id, key, sender.clock.now())
    if isinstance(claimed, Settled):
        if claimed.wave_id is not None:
            scope.add(wave_id=claimed.wave_id, case_id=claimed.case_id)
        return BatchResult(batch_id, claimed.outcome, 0, claimed.skipped, claimed.detail)
    scope.add(wave_id=claimed.wave.id, case_id=claimed.case.id)
    return _deliver(claimed, key, sender)


def _deliver(batch: PreparedBatch, key: str, sender: Sender) -> BatchResult:
    held = _take_tokens(batch, key, sender)
    if held is not None:
        return held
    try:
        renderer = sender.renderer(batch.campaign)
        variant = renderer.variant(batch.wave.kind, batch.case, batch.language, batch.wave)
    except CampaignError as error:
        return _failed(batch, key, sender, f"render: {error}")
    # The case by id, not slug: a case slug is a person's name, and SendGrid
    # treats categories as non-personal data. Reports go by custom args.
    categories = (batch.campaign.slug, batch.wave.kind, f"case-{batch.case.id}")
    # Built once: only the shared args change between attempts (a new send key).
    recipients = renderer.recipients(variant, batch.going, batch.case.id, batch.wave.id)
    for attempt in range(1, sender.policy.attempts + 1):
        shared = batch_args(batch.case.id, batch.wave.id, send_key=key)
        outgoing = renderer.batch(variant, recipients, key, categories, shared)
        try:
            accepted = _send_counted(sender.transport, outgoing)
        except RetryLater as error:
            wait = _retry_wait(error, attempt, sender.policy)
            if wait is None:
                return _back_later(batch, key, sender, error, attempt)
            sender.sleep(wait)
            if (paused := _held_if_paused(batch, key, sender)) is not None:
                return paused
            fresh = new_send_key()
            if not sender.store.rekey(batch.id, key, fresh, sender.clock.now()):
                return BatchResult(batch.id, BatchOutcome.NOT_MINE, detail="taken over")
            key = fresh
        except Rejected as error:
            detail = f"provider refused the batch ({error.status_code}): {error}"
            return _failed(batch, key, sender, detail)
        except NotAuthorised as error:
            return _unauthorised(batch, key, sender, error)
        except OutcomeUnknown as error:
            sender.store.finish(batch, key, Ending.UNKNOWN, f"outcome unknown: {error}")
            return BatchResult(batch.id, BatchOutcome.UNKNOWN, detail=str(error))
        else:
            return _accepted(batch, key, sender, accepted)
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


def _take_tokens(batch: PreparedBatch, key: str, sender: Sender) -> BatchResult | None:
    per_hour = batch.rate_per_hour or sender.settings.rate_per_hour
    rates = batch.domain_rates
    # Only warmed-up domains have buckets of their own; most waves have none,
    # and splitting 1,000 addresses for nothing cost about a millisecond.
    domains = Counter(d for r in batch.going if (d := domain_of(r.email)) in rates) if rates else {}
    demands = demands_for(batch.campaign.id, per_hour, len(batch.going), domains, rates)
    while True:
        wait = sender.bucket.take(demands, sender.clock.now().timestamp())
        if wait <= 0:
            return None
        if wait > sender.policy.longest_inline_wait_seconds:
            retry_at = sender.clock.now() + timedelta(seconds=wait)
            sender.store.finish(batch, key, Ending.LATER, None, retry_at=retry_at)
            return BatchResult(batch.id, BatchOutcome.RETRY, detail=f"rate limit: {wait:.0f}s")
        sender.sleep(wait)
        # Staff may pause the wave or its case during a wait of up to a minute and a half.
        if (paused := _held_if_paused(batch, key, sender)) is not None:
            return paused


def _held_if_paused(batch: PreparedBatch, key: str, sender: Sender) -> BatchResult | None:
    """After any wait: a wave or case paused meanwhile gets the batch back, unsent."""
    if sender.store.still_sendable(batch.wave.id, batch.case.id):
        return None
    sender.store.finish(batch, key, Ending.LATER, "paused")
    return BatchResult(batch.id, BatchOutcome.HELD, detail="paused")


def _retry_wait(error: RetryLater, attempt: int, policy: SendPolicy) -> float | None:
    """Seconds to wait before the next attempt here, or None to give the batch back."""
    if attempt >= policy.attempts:
        return None
    wait = error.wait_seconds if error.wait_seconds is not None else policy.backoff(attempt)
    return wait if wait <= policy.longest_inline_wait_seconds else None


def _accepted(batch: PreparedBatch, key: str, sender: Sender, accepted: Accepted) -> BatchResult:
    sent = sender.store.accept(batch.id, key, sender.clock.now(), accepted.provider_message_id)
    metrics.count_messages(str(batch.wave.id), batch.case.slug, sent=sent)
    return BatchResult(batch.id, BatchOutcome.SENT, sent, batch.skipped)


def _back_later(
    batch: PreparedBatch, key: str, sender: Sender, error: RetryLater, attempt: int
) -> BatchResult:
    wait = error.wait_seconds or sender.policy.backoff(attempt + 1)
    retry_at = sender.clock.now() + timedelta(seconds=max(wait, 30.0))
    sender.store.finish(batch, key, Ending.LATER, str(error), retry_at=retry_at)
    return BatchResult(batch.id, BatchOutcome.RETRY, detail=str(error))


def _failed(batch: PreparedBatch, key: str, sender: Sender, detail: str) -> BatchResult:
    sender.store.finish(batch, key, Ending.FAILED, detail)
    metrics.count_messages(str(batch.wave.id), batch.case.slug, failed=len(batch.going))
    return BatchResult(batch.id, BatchOutcome.FAILED, detail=detail)


def _unauthorised(
    batch: PreparedBatch, key: str, sender: Sender, error: NotAuthorised
) -> BatchResult:
    reason = (
        f"paused: the provider refused our credentials ({error.status_code}: {error}); "
        "fix the API key or sender verification, then `campaign wave resume "
        f"{batch.wave.name}`"
    )
    sender.store.finish(batch, key, Ending.PAUSED, reason)
    return BatchResult(batch.id, BatchOutcome.UNAUTHORISED, detail=reason)


def result_dict(result: BatchResult) -> dict[str, Any]:
    """A JSON-friendly result for Celery."""
    return {
        "batch_id": result.batch_id,
        "outcome": result.outcome.value,
        "sent": result.sent,
        "skipped": result.skipped,
        "detail": result.detail,
    }
