"""What is happening right now: waves in flight, queues, workers, rate buckets.

Everything here reads; nothing changes state. The database is the truth for
progress (so the numbers agree whichever machine asks); Redis adds the live
view (queue depth, workers, rate buckets) when REDIS_URL is set. Without Redis
tasks run in-process and the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import redis
from kombu.exceptions import ChannelError, OperationalError
from sqlalchemy import ColumnElement, Engine, Row, func, select
from sqlalchemy.orm import Session

from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.models import Batch, Campaign, Case, Wave
from sender.core.vocabulary import BatchStatus, CampaignStatus, WaveStatus
from sender.ops.counts import MessageCounts, message_counts
from sender.ops.metrics import WaveCount
from sender.send.ratelimit import BucketLevel, RedisTokenBucket
from sender.track.actions import PendingEvents, pending_events
from sender.track.rejected_events import RejectedSummary, rejected_summary

if TYPE_CHECKING:
    from celery import Celery
    from kombu.connection import Connection

IN_PROCESS = "in-process"
_WAITING_BATCH = (BatchStatus.PENDING, BatchStatus.QUEUED)
_ACTIVE_WAVES = (WaveStatus.SCHEDULED, WaveStatus.SENDING, WaveStatus.PAUSED)
# Drafts have no messages yet: nothing to report on.
_SHOWN_WAVES = tuple(s for s in WaveStatus if s is not WaveStatus.DRAFT)
# Connection errors of the two clients the live view uses.
_UNREACHABLE = (redis.RedisError, OSError, OperationalError)


@dataclass(frozen=True)
class WaveProgress:
    wave_id: int
    campaign: str
    name: str
    status: str
    planned: int  # every message row of the wave, whatever became of it
    sent: int
    failed: int
    remaining: int  # still planned: will be sent unless the wave stops
    skipped: int
    sent_last_minute: int
    oldest_waiting_seconds: float | None  # a due batch nobody has sent yet
    next_batch_seconds: float | None = None  # until the next batch is due, when none is yet
    unsettled: int = 0  # batches left SENDING: their outcome awaits reconciliation
    reason: str | None = None  # why it is paused, missed or cancelled (Wave.status_reason)

    @property
    def per_minute(self) -> int:
        return self.sent_last_minute

    @property
    def eta_seconds(self) -> float | None:
        """Time to send what remains at the last minute's rate; None when stalled."""
        if self.remaining == 0:
            return 0.0
        if self.sent_last_minute == 0:
            return None
        return self.remaining / self.sent_last_minute * 60.0

    @property
    def done_fraction(self) -> float:
        finished = self.planned - self.remaining
        return finished / self.planned if self.planned else 0.0

    @property
    def waiting_for_window(self) -> bool:
        """Work is left but none of it is due: the wave waits for a local send window."""
        return (
            self.remaining > 0
            and self.oldest_waiting_seconds is None
            and (self.next_batch_seconds is not None)
        )


@dataclass(frozen=True)
class FailedBatch:
    batch_id: int
    wave_id: int
    case_id: int
    size: int
    attempts: int
    reason: str
    wave: str = ""  # names, for people reading the report
    case: str = ""


@dataclass(frozen=True)
class LiveView:
    """The Redis side; ``mode`` is IN_PROCESS and the rest empty without Redis."""

    mode: str
    queues: Mapping[str, int]
    workers: tuple[str, ...]
    buckets: tuple[BucketLevel, ...]
    problem: str | None = None


@dataclass(frozen=True)
class LiveSource:
    """Where the live view looks: the rate limiter's Redis and the Celery app's broker."""

    redis_url: str
    celery: Celery  # asked for its queues, their depth and its workers


@dataclass(frozen=True)
class StatusReport:
    generated_at: datetime
    waves: tuple[WaveProgress, ...]
    failed_batches: tuple[FailedBatch, ...]
    live: LiveView
    every_wave: bool = False  # finished waves were asked for too
    # Webhook events kept raw because they could not be stored (issue 12).
    rejected_events: RejectedSummary = field(default_factory=RejectedSummary)
    # Stored webhook events not yet turned into actions.
    pending_events: PendingEvents = field(default_factory=PendingEvents)


def wave_progress(
    engine: Engine,
    now: datetime,
    wave_ids: Sequence[int] | None = None,
    states: Sequence[WaveStatus] = _ACTIVE_WAVES,
) -> tuple[WaveProgress, ...]:
    """Progress of the given waves, or of every wave in ``states`` (default: in flight)."""
    with session_scope(engine) as session:
        query = select(Wave.id, Wave.name, Wave.status, Campaign.slug, Wave.status_reason).join(
            Campaign, Campaign.id == Wave.campaign_id
        )
        if wave_ids is None:
            query = query.where(Wave.status.in_(states))
        else:
            query = query.where(Wave.id.in_(wave_ids))
        waves = session.execute(query.order_by(Wave.starts_at, Wave.id)).all()
        ids = [row.id for row in waves]
        if not ids:
            return ()
        counts = message_counts(session, ids, sent_since=now - timedelta(minutes=1))
        oldest = _first_batch_due(session, ids, Batch.send_after <= now)
        upcoming = _first_batch_due(session, ids, Batch.send_after > now)
        unsettled = dict(
            session.execute(
                select(Batch.wave_id, func.count())
                .where(Batch.wave_id.in_(ids), Batch.status == BatchStatus.SENDING)
                .group_by(Batch.wave_id)
            ).all()
        )
    return tuple(
        _progress(
            row,
            counts.get(row.id, MessageCounts()),
            _seconds_until(oldest.get(row.id), now),
            _seconds_until(upcoming.get(row.id), now),
            int(unsettled.get(row.id, 0)),
        )
        for row in waves
    )


def _first_batch_due(
    session: Session, ids: Sequence[int], when: ColumnElement[bool]
) -> dict[int, datetime]:
    """Per wave, the earliest ``send_after`` of its waiting batches that match ``when``."""
    return dict(
        session.execute(
            select(Batch.wave_id, func.min(Batch.send_after))
            .where(Batch.wave_id.in_(ids), Batch.status.in_(_WAITING_BATCH), when)
            .group_by(Batch.wave_id)
        ).all()
    )


def _seconds_until(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (moment - now).total_seconds()


def _progress(
    row: Row[int, str, str, str, str | None],
    counts: MessageCounts,
    until_oldest: float | None,
    until_next: float | None,
    unsettled: int,
) -> WaveProgress:
    return WaveProgress(
        wave_id=row.id,
        campaign=row.slug,
        name=row.name,
        status=row.status,
        planned=counts.planned,
        sent=counts.sent,
        failed=counts.failed,
        remaining=counts.remaining,
        skipped=counts.skipped,
        sent_last_minute=counts.sent_recently,
        oldest_waiting_seconds=None if until_oldest is None else -until_oldest,
        next_batch_seconds=until_next,
        unsettled=unsettled,
        reason=row.status_reason,
    )


@dataclass(frozen=True)
class CampaignWaves:
    slug: str
    name: str
    waves: tuple[WaveProgress, ...]
    campaign_id: int  # what a staff member's campaign limit names


def campaign_waves(engine: Engine, now: datetime) -> tuple[CampaignWaves, ...]:
    """Every open campaign with the progress of each of its waves, drafts included.

    A closed campaign sends nothing more; its report stays (`campaign report`).
    """
    with session_scope(engine) as session:
        campaigns = session.execute(
            select(Campaign.slug, Campaign.name, Campaign.id)
            .where(Campaign.status == CampaignStatus.OPEN)
            .order_by(Campaign.window_start, Campaign.id)
        ).all()
        wave_ids = list(
            session.scalars(
                select(Wave.id)
                .join(Campaign, Campaign.id == Wave.campaign_id)
                .where(Campaign.status == CampaignStatus.OPEN)
                .order_by(Wave.starts_at, Wave.id)
            )
        )
    progress = wave_progress(engine, now, wave_ids)
    return tuple(
        CampaignWaves(slug, name, tuple(w for w in progress if w.campaign == slug), campaign_id)
        for slug, name, campaign_id in campaigns
    )


@dataclass(frozen=True)
class WaveName:
    wave_id: int
    campaign: str  # the campaign's slug
    name: str
    campaign_id: int
    status: str


def wave_named(engine: Engine, wave_id: int) -> WaveName:
    """Which wave an id names, for controls that act on a wave by name."""
    with session_scope(engine) as session:
        row = session.execute(
            select(Wave.name, Wave.status, Campaign.slug, Campaign.id)
            .join(Campaign, Campaign.id == Wave.campaign_id)
            .where(Wave.id == wave_id)
        ).first()
    if row is None:
        raise NotFound(f"no wave with id {wave_id}")
    return WaveName(wave_id, row.slug, row.name, row.id, row.status)


def failed_batches(
    engine: Engine, wave_ids: Sequence[int], limit: int = 50
) -> tuple[FailedBatch, ...]:
    if not wave_ids:
        return ()
    with session_scope(engine) as session:
        rows = session.execute(
            select(Batch, Wave.name, Case.slug)
            .join(Wave, Wave.id == Batch.wave_id)
            .join(Case, Case.id == Batch.case_id)
            .where(Batch.wave_id.in_(wave_ids), Batch.status == BatchStatus.FAILED)
            .order_by(Batch.id)
            .limit(limit)
        ).all()
        return tuple(
            FailedBatch(
                b.id,
                b.wave_id,
                b.case_id,
                b.size,
                b.attempts,
                b.error or "no reason recorded",
                wave=wave,
                case=case,
            )
            for b, wave, case in rows
        )


def wave_counts(engine: Engine) -> list[WaveCount]:
    """Messages per wave and status, for the scrape-time Prometheus gauge."""
    with session_scope(engine) as session:
        ids = session.scalars(
            select(Wave.id).where(Wave.status.in_((*_ACTIVE_WAVES, WaveStatus.DONE)))
        )
        counts = message_counts(session, list(ids))
    return [
        WaveCount(str(wave), status, count)
        for wave, per_wave in counts.items()
        for status, count in per_wave.by_status.items()
    ]


def queue_names(celery: Celery) -> tuple[str, ...]:
    """The queues the Celery app routes to (declared queues, routes, the default)."""
    conf = celery.conf
    names = {conf.task_default_queue}
    names.update(q.name for q in conf.task_queues or ())
    routes = conf.task_routes
    if isinstance(routes, Mapping):
        names.update(r["queue"] for r in routes.values() if isinstance(r, Mapping) and "queue" in r)
    return tuple(sorted(str(n) for n in names))


def queue_depths(celery: Celery, queues: Iterable[str]) -> dict[str, int]:
    """Tasks waiting in each queue, as the broker counts them (priority sub-queues too)."""
    with celery.connection_for_read() as connection:
        # No retries: a status read reports a broker that does not answer, never waits for it.
        connection.ensure_connection(max_retries=0)
        return {name: _depth(connection, name) for name in queues}


def _depth(connection: Connection, queue: str) -> int:
    # A channel per queue: AMQP brokers close the channel that asked for a missing queue.
    with connection.channel() as channel:  # type: ignore[no-untyped-call]
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except ChannelError:  # never declared, or (Redis) emptied and so gone: nothing waits
            return 0


def live_workers(celery: Celery, timeout: float = 1.0) -> tuple[str, ...]:
    """Worker hostnames that answer a broadcast ping within ``timeout`` seconds."""
    replies = celery.control.ping(timeout=timeout) or []
    return tuple(sorted(name for reply in replies for name in reply))


def queue_depths_at(celery: Celery) -> dict[str, int]:
    """Queue depths for a metrics scrape: empty when the broker does not answer."""
    try:
        return queue_depths(celery, queue_names(celery))
    except _UNREACHABLE:
        return {}


def live_view(source: LiveSource | None, ping_timeout: float = 1.0) -> LiveView:
    """Queues, workers and rate buckets; IN_PROCESS without a source (no Redis)."""
    if source is None:
        return LiveView(IN_PROCESS, {}, (), ())
    client = redis.Redis.from_url(source.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        buckets = RedisTokenBucket(client).levels()
        queues = queue_depths(source.celery, queue_names(source.celery))
        workers = live_workers(source.celery, ping_timeout) if ping_timeout > 0 else ()
    except _UNREACHABLE as error:
        return LiveView("redis", {}, (), (), problem=f"Redis unreachable: {error}")
    finally:
        client.close()
    return LiveView("redis", queues, workers, buckets)


def snapshot(
    engine: Engine,
    now: datetime,
    live: LiveSource | None = None,
    ping_timeout: float = 1.0,
    every_wave: bool = False,
) -> StatusReport:
    """Waves in flight; with ``every_wave``, finished and stopped ones too."""
    waves = wave_progress(engine, now, states=_SHOWN_WAVES if every_wave else _ACTIVE_WAVES)
    return StatusReport(
        generated_at=now,
        waves=waves,
        failed_batches=failed_batches(engine, [w.wave_id for w in waves]),
        live=live_view(live, ping_timeout),
        every_wave=every_wave,
        rejected_events=rejected_summary(engine),
        pending_events=pending_events(engine),
    )
