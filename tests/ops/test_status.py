"""The status report against real databases and a real Redis."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
import redis
from events_fixtures import keep_odd_events
from ops_fixtures import (
    NOW,
    ops_redis_fixture,  # noqa: F401 - provides ops_redis_url
    seed,
)
from rich.console import Console
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine

from sender.celery_app import create_celery
from sender.cli import status as cli_status
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.models import Wave
from sender.core.vocabulary import WaveStatus
from sender.ops import status
from sender.send import store as repo
from sender.send.batch_store import claim_batch
from sender.send.planner import plan_wave
from sender.send.ratelimit import Demand, RedisTokenBucket, campaign_limit

PLAN_SETTINGS = Settings(secret_key="test", batch_size=3)


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
    report = status.snapshot(any_engine, NOW)
    assert report.live.mode == status.IN_PROCESS
    assert report.live.queues == {} and len(report.waves) == 1
    assert len(report.failed_batches) == 1


def test_wave_counts_feed_the_metrics_gauge(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    counts = {(c.wave, c.status): c.count for c in status.wave_counts(pg_engine)}
    assert counts[(str(seeded.wave_id), "sent")] == 4
    assert counts[(str(seeded.wave_id), "planned")] == 5


def _source(redis_url: str) -> status.LiveSource:
    return status.LiveSource(
        redis_url, create_celery(Settings(secret_key="t", redis_url=redis_url))
    )


def test_the_broker_counts_queue_depths_priority_sub_queues_included(ops_redis_url: str) -> None:
    client = redis.Redis.from_url(ops_redis_url)
    client.rpush("celery", "a", "b", "c")
    client.rpush("celery\x06\x166", "d")  # kombu's sub-queue for priority 6
    celery = _source(ops_redis_url).celery
    assert status.queue_depths(celery, ["celery", "sending"]) == {"celery": 4, "sending": 0}
    assert status.queue_depths_at(celery) == {"celery": 4}
    assert set(client.keys()) == {b"celery", b"celery\x06\x166"}  # read only


def test_queue_names_come_from_the_celery_configuration() -> None:
    celery = create_celery(Settings(secret_key="t"))
    assert status.queue_names(celery) == ("celery",)
    celery.conf.task_routes = {"sender.send_batch": {"queue": "sending"}}
    assert status.queue_names(celery) == ("celery", "sending")


def test_live_view_with_redis_and_no_workers(ops_redis_url: str) -> None:
    client = redis.Redis.from_url(ops_redis_url)
    client.rpush("celery", "x")
    RedisTokenBucket(client).take([Demand(campaign_limit(1, 3600), 10)], now=time.time())
    live = status.live_view(_source(ops_redis_url), ping_timeout=0.3)
    assert live.mode == "redis" and live.problem is None
    assert live.queues["celery"] == 1
    assert live.workers == ()
    (found,) = live.buckets  # what the rate limiter keeps, as it reads it back
    assert found.key == "campaign:1"
    assert found.tokens == pytest.approx(1000 - 10)


def test_unreachable_redis_is_reported_not_raised(any_engine: Engine) -> None:
    started = time.monotonic()
    live = status.live_view(_source("redis://127.0.0.1:1/0"), ping_timeout=0)
    assert live.problem is not None and "Redis unreachable" in live.problem
    assert status.queue_depths_at(_source("redis://127.0.0.1:1/0").celery) == {}
    assert time.monotonic() - started < 2  # no broker retries


def test_campaign_waves_and_wave_names(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    (campaign,) = status.campaign_waves(any_engine, NOW)
    assert (campaign.slug, campaign.name) == ("w4r-2020", "Write for Rights 2020")
    assert [w.wave_id for w in campaign.waves] == [seeded.wave_id, seeded.draft_wave_id]
    assert status.wave_named(any_engine, seeded.wave_id) == status.WaveName(
        seeded.wave_id, "w4r-2020", "case-email", campaign.campaign_id, "sending"
    )
    with pytest.raises(NotFound):
        status.wave_named(any_engine, 9999)


# --- waves between windows, unsettled batches, finished waves, the CLI text ------------


def _planned(engine: Engine) -> int:
    """A real plan: six supporters in batches of three, due at 09:00 UTC on Dec 1."""
    case = add_case(engine, PLAN_SETTINGS, slug="germain")
    add_supporters(engine, [case], [f"g{i}@example.net" for i in range(6)])
    wave = add_wave(engine, PLAN_SETTINGS)
    plan_wave(engine, PLAN_SETTINGS, wave, DEC1)
    return wave


def test_a_wave_between_windows_waits_rather_than_stalls(any_engine: Engine) -> None:
    wave_id = _planned(any_engine)
    (wave,) = status.wave_progress(any_engine, DEC1)
    assert (wave.planned, wave.sent, wave.failed, wave.skipped, wave.remaining) == (6, 0, 0, 0, 6)
    assert wave.wave_id == wave_id and wave.oldest_waiting_seconds is None
    assert wave.next_batch_seconds == pytest.approx(9 * 3600)
    assert wave.waiting_for_window and wave.eta_seconds is None
    assert cli_status.eta_text(wave) == "next in 9:00:00"
    # Once its window opens and nothing goes out, the same wave is stalled.
    (late,) = status.wave_progress(any_engine, DEC1 + timedelta(hours=9, minutes=5))
    assert late.oldest_waiting_seconds == pytest.approx(300)
    assert not late.waiting_for_window and cli_status.eta_text(late) == "stalled"


def test_a_batch_sent_without_answer_is_reported_unsettled(any_engine: Engine) -> None:
    _planned(any_engine)
    nine = DEC1 + timedelta(hours=9)
    with session_scope(any_engine) as session:
        first, _ = repo.release_due(session, nine, 10)
        assert claim_batch(session, first, "key-1", nine)
    (wave,) = status.wave_progress(any_engine, nine)
    assert wave.unsettled == 1
    text = _text(cli_status.render(status.snapshot(any_engine, nine)))
    assert "1 batch sent with no answer yet" in text


def test_finished_waves_only_on_request_and_when_nothing_is_in_flight(any_engine: Engine) -> None:
    wave_id = _planned(any_engine)
    with session_scope(any_engine) as session:
        wave = session.get(Wave, wave_id)
        assert wave is not None
        wave.status = WaveStatus.DONE
    assert status.snapshot(any_engine, DEC1).waves == ()
    report = status.snapshot(any_engine, DEC1, every_wave=True)
    assert [w.status for w in report.waves] == ["done"]
    finished = status.snapshot(any_engine, DEC1, every_wave=True)
    text = _text(cli_status.render(status.snapshot(any_engine, DEC1), finished))
    assert "No wave is scheduled, sending or paused." in text
    assert "How the other waves ended:" in text and "/case-email" in text


def test_the_cli_text_adds_up_and_fits_80_columns(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    text = _text(cli_status.render(status.snapshot(any_engine, NOW)), width=80)
    assert "planned 10 = sent 4 + failed 1 + skipped 0 + left 5" in text
    assert "3/min in the last minute, ETA 0:01:40" in text
    assert "oldest due batch waiting 0:05:00" in text
    assert f"failed batch {seeded.failed_batch_id} (wave case-email, case popi, 1 message" in text
    assert "w4r-2020/case-email" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def _text(renderable: object, width: int = 120) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_webhook_events_kept_raw_are_counted_with_their_latest_reasons(
    any_engine: Engine,
) -> None:
    seed(any_engine)
    assert status.snapshot(any_engine, NOW).rejected_events.count == 0
    reasons = keep_odd_events(any_engine)
    report = status.snapshot(any_engine, NOW)
    assert report.rejected_events.count == 2
    assert sorted(r.reason for r in report.rejected_events.latest) == reasons
    text = _text(cli_status.render(report), width=120)
    assert "2 webhook events could not be stored" in text
    assert all(reason in text for reason in reasons)
    # Nothing in flight: the finished view still shows them.
    quiet = status.snapshot(any_engine, NOW, every_wave=True)
    assert "2 webhook events" in _text(cli_status.render(quiet), width=120)
