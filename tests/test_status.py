"""The status report against real databases and a real Redis."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from ops_fixtures import (
    NOW,
    ops_redis_fixture,  # noqa: F401 - provides ops_redis_url
    seed,
)
from sqlalchemy import Engine

from sender import status
from sender.ratelimit import Demand, RedisTokenBucket, campaign_limit


def test_wave_progress_counts_rate_eta_and_oldest_batch(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    (wave,) = status.wave_progress(any_engine, NOW)
    assert wave.wave_id == seeded.wave_id and wave.campaign == "w4r-2020"
    assert (wave.planned, wave.sent, wave.failed, wave.remaining) == (10, 4, 1, 5)
    assert wave.sent_last_minute == 3  # the fourth went out 80 s ago
    assert wave.eta_seconds == pytest.approx(5 / 3 * 60)
    assert wave.oldest_waiting_seconds == pytest.approx(300)
    assert wave.done_fraction == pytest.approx(0.5)


def test_stalled_wave_has_no_eta_and_drafts_are_left_out(any_engine: Engine) -> None:
    seed(any_engine)
    (wave,) = status.wave_progress(any_engine, NOW + timedelta(hours=1))
    assert wave.sent_last_minute == 0 and wave.eta_seconds is None


def test_failed_batches_carry_their_reason(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    (failed,) = status.failed_batches(any_engine, [seeded.wave_id])
    assert failed.batch_id == seeded.failed_batch_id
    assert "400 Bad Request" in failed.reason


def test_report_without_redis_says_in_process(any_engine: Engine) -> None:
    seed(any_engine)
    report = status.build_report(any_engine, None, NOW)
    assert report.live.mode == status.IN_PROCESS
    assert report.live.queues == {} and len(report.waves) == 1
    assert len(report.failed_batches) == 1


def test_wave_counts_feed_the_metrics_gauge(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    counts = {(c.wave, c.status): c.count for c in status.wave_counts(pg_engine)}
    assert counts[(str(seeded.wave_id), "sent")] == 4
    assert counts[(str(seeded.wave_id), "planned")] == 5


def test_queue_depth_and_rate_buckets_read_from_redis(ops_redis_url: str) -> None:
    client = redis.Redis.from_url(ops_redis_url)
    client.rpush("celery", "a", "b", "c")
    client.rpush("celery\x06\x166", "d")  # a priority sub-queue counts too
    assert status.queue_depths(client, ["celery", "sending"]) == {"celery": 4, "sending": 0}
    bucket = RedisTokenBucket(client)
    bucket.take([Demand(campaign_limit(1, 3600), 10)], now=time.time())
    (found,) = status.rate_buckets(client)
    assert found.key == "campaign:1"
    assert found.tokens == pytest.approx(1000 - 10)


def test_live_view_with_redis_and_no_workers(ops_redis_url: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", ops_redis_url)
    from sender.config import reset_settings

    reset_settings()
    redis.Redis.from_url(ops_redis_url).rpush("celery", "x")
    live = status.live_view(ops_redis_url, ping_timeout=0.3)
    assert live.mode == "redis" and live.problem is None
    assert live.queues["celery"] == 1
    assert live.workers == ()


def test_unreachable_redis_is_reported_not_raised(any_engine: Engine) -> None:
    live = status.live_view("redis://127.0.0.1:1/0", ping_timeout=0)
    assert live.problem is not None and "Redis unreachable" in live.problem
