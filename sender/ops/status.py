"""What is happening right now: waves in flight, queues, workers, rate buckets.

Everything here reads; nothing changes state. The database is the truth for
progress (so the numbers agree whichever machine asks); Redis adds the live
view (queue depth, workers, rate buckets) when REDIS_URL is set. Without Redis
tasks run in-process and the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import Engine, Row, func, select

from sender.core.db import session_scope
from sender.core.models import Batch, Campaign, Case, Message, Wave
from sender.core.vocabulary import BatchStatus, MessageStatus, WaveStatus
from sender.ops.metrics import WaveCount

IN_PROCESS = "in-process"
RATE_KEY_PREFIX = "campaign:rate:"  # sender.send.ratelimit.RedisTokenBucket's default prefix
# kombu's Redis transport keeps priority sub-queues beside the plain list.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_WAITING_BATCH = (BatchStatus.PENDING, BatchStatus.QUEUED)
_ACTIVE_WAVES = (WaveStatus.SCHEDULED, WaveStatus.SENDING, WaveStatus.PAUSED)
# Drafts have no messages yet: nothing to report on.
_SHOWN_WAVES = tuple(s for s in WaveStatus if s is not WaveStatus.DRAFT)


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
class RateBucket:
    key: str
    tokens: float
    updated_at: float | None


@dataclass(frozen=True)
class LiveView:
    """The Redis side; ``mode`` is IN_PROCESS and the rest empty without Redis."""

    mode: str
    queues: Mapping[str, int]
    workers: tuple[str, ...]
    buckets: tuple[RateBucket, ...]
    problem: str | None = None


@dataclass(frozen=True)
class StatusReport:
    generated_at: datetime
    waves: tuple[WaveProgress, ...]
    failed_batches: tuple[FailedBatch, ...]
    live: LiveView
    every_wave: bool = False  # finished waves were asked for too


def wave_progress(
    engine: Engine,
    now: datetime,
    wave_ids: Sequence[int] | None = None,
    states: Sequence[WaveStatus] = _ACTIVE_WAVES,
) -> tuple[WaveProgress, ...]:
    """Progress of the given waves, or of every wave in ``states`` (default: in flight)."""
    with session_scope(engine) as session:
        query = select(Wave.id, Wave.name, Wave.status, Campaign.slug).join(
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
        # One pass over the waves' messages for both figures (0.2 s a pass at
        # a million messages, and the dashboard asks every few seconds).
        rows = session.execute(
            select(
                Message.wave_id,
                Message.status,
                func.count(),
                func.count().filter(Message.sent_at >= now - timedelta(minutes=1)),
            )
            .where(Message.wave_id.in_(ids))
            .group_by(Message.wave_id, Message.status)
        ).all()
        counts = _status_counts((wave_id, status, count) for wave_id, status, count, _ in rows)
        recent: dict[int, int] = {}
        for wave_id, _, _, last_minute in rows:
            recent[wave_id] = recent.get(wave_id, 0) + int(last_minute)
        oldest = dict(
            session.execute(
                select(Batch.wave_id, func.min(Batch.send_after))
                .where(
                    Batch.wave_id.in_(ids),
                    Batch.status.in_(_WAITING_BATCH),
                    Batch.send_after <= now,
                )
                .group_by(Batch.wave_id)
            ).all()
        )
        upcoming = dict(
            session.execute(
                select(Batch.wave_id, func.min(Batch.send_after))
                .where(
                    Batch.wave_id.in_(ids),
                    Batch.status.in_(_WAITING_BATCH),
                    Batch.send_after > now,
                )
                .group_by(Batch.wave_id)
            ).all()
        )
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
            counts.get(row.id, {}),
            int(recent.get(row.id, 0)),
            _seconds_until(oldest.get(row.id), now),
            _seconds_until(upcoming.get(row.id), now),
            int(unsettled.get(row.id, 0)),
        )
        for row in waves
    )


def _seconds_until(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (moment - now).total_seconds()


def _status_counts(rows: Iterable[tuple[int, str, int]]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    for wave_id, status, count in rows:
        counts.setdefault(wave_id, {})[status] = int(count)
    return counts


def _progress(
    row: Row[int, str, str, str],
    counts: Mapping[str, int],
    recent: int,
    until_oldest: float | None,
    until_next: float | None,
    unsettled: int,
) -> WaveProgress:
    return WaveProgress(
        wave_id=row.id,
        campaign=row.slug,
        name=row.name,
        status=row.status,
        planned=sum(counts.values()),
        sent=counts.get(MessageStatus.SENT, 0),
        failed=counts.get(MessageStatus.FAILED, 0),
        remaining=counts.get(MessageStatus.PLANNED, 0),
        skipped=counts.get(MessageStatus.SKIPPED, 0) + counts.get(MessageStatus.CANCELLED, 0),
        sent_last_minute=recent,
        oldest_waiting_seconds=None if until_oldest is None else -until_oldest,
        next_batch_seconds=until_next,
        unsettled=unsettled,
    )


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
        rows = session.execute(
            select(Message.wave_id, Message.status, func.count())
            .join(Wave, Wave.id == Message.wave_id)
            .where(Wave.status.in_((*_ACTIVE_WAVES, WaveStatus.DONE)))
            .group_by(Message.wave_id, Message.status)
        ).all()
    return [WaveCount(str(wave), status, int(count)) for wave, status, count in rows]


def queue_depths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """LLEN of each Celery queue, priority sub-queues included."""
    pipe = client.pipeline(transaction=False)
    names = list(queues)
    for name in names:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(name + suffix)
    lengths = [int(n) for n in pipe.execute()]
    step = len(_PRIORITY_SUFFIXES)
    return {name: sum(lengths[i * step : (i + 1) * step]) for i, name in enumerate(names)}


def rate_buckets(client: redis.Redis, prefix: str = RATE_KEY_PREFIX) -> tuple[RateBucket, ...]:
    """The token buckets sender.send.ratelimit keeps in Redis (hashes: tokens, ts)."""
    found = []
    for raw in client.scan_iter(match=prefix + "*", count=500):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        tokens, ts = client.hmget(key, ["tokens", "ts"])
        if tokens is None:
            continue
        found.append(
            RateBucket(key[len(prefix) :], float(tokens), None if ts is None else float(ts))
        )
    return tuple(sorted(found, key=lambda b: b.key))


def celery_queue_names() -> tuple[str, ...]:
    """The queues the Celery app routes to (declared queues, routes, the default)."""
    from sender.celery_app import create_celery  # Celery is only needed with Redis

    conf = create_celery().conf
    names = {conf.task_default_queue}
    names.update(q.name for q in conf.task_queues or ())
    routes = conf.task_routes
    if isinstance(routes, Mapping):
        names.update(r["queue"] for r in routes.values() if isinstance(r, Mapping) and "queue" in r)
    return tuple(sorted(str(n) for n in names))


def live_workers(timeout: float = 1.0) -> tuple[str, ...]:
    """Worker hostnames that answer a broadcast ping within ``timeout`` seconds."""
    from sender.celery_app import create_celery

    replies = create_celery().control.ping(timeout=timeout) or []
    return tuple(sorted(name for reply in replies for name in reply))


def queue_depths_at(redis_url: str) -> dict[str, int]:
    """Queue depths for a metrics scrape: empty when Redis does not answer."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return queue_depths(client, celery_queue_names())
    except (redis.RedisError, OSError):
        return {}
    finally:
        client.close()


def live_view(redis_url: str | None, ping_timeout: float = 1.0) -> LiveView:
    if not redis_url:
        return LiveView(IN_PROCESS, {}, (), ())
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        queues = queue_depths(client, celery_queue_names())
        buckets = rate_buckets(client)
        workers = live_workers(ping_timeout) if ping_timeout > 0 else ()
    except (redis.RedisError, OSError) as error:
        return LiveView("redis", {}, (), (), problem=f"Redis unreachable: {error}")
    finally:
        client.close()
    return LiveView("redis", queues, workers, buckets)


def build_report(
    engine: Engine,
    redis_url: str | None,
    now: datetime,
    ping_timeout: float = 1.0,
    every_wave: bool = False,
) -> StatusReport:
    """Waves in flight; with ``every_wave``, finished and stopped ones too."""
    waves = wave_progress(engine, now, states=_SHOWN_WAVES if every_wave else _ACTIVE_WAVES)
    return StatusReport(
        generated_at=now,
        waves=waves,
        failed_batches=failed_batches(engine, [w.wave_id for w in waves]),
        live=live_view(redis_url, ping_timeout),
        every_wave=every_wave,
    )
