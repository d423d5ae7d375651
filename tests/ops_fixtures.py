"""A small campaign in flight, for the status, ops and dashboard tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import Engine

from sender.core.addresses import email_hash
from sender.core.db import session_scope
from sender.core.models import Action, Batch, Campaign, Case, Message, Reply, Supporter, Wave
from sender.core.vocabulary import (
    ActionKind,
    BatchStatus,
    MessageStatus,
    ReplyStatus,
    WaveStatus,
)

# The shared redis_url fixture hands every xdist worker the same database; these
# tests count queue entries and ping workers, so each xdist worker gets its own.
_OWN_DB_BASE = 8


@pytest.fixture(name="ops_redis_url")
def ops_redis_fixture(redis_url: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = _OWN_DB_BASE + (int(worker[2:]) if worker[2:].isdigit() else 0)
    url = redis_url.rsplit("/", 1)[0] + f"/{index}"
    redis.Redis.from_url(url).flushdb()
    return url


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EMAILS = tuple(f"supporter{i}@example.org" for i in range(10))


@dataclass(frozen=True)
class Seeded:
    campaign_id: int
    wave_id: int
    draft_wave_id: int
    case_ids: tuple[int, int]
    failed_batch_id: int


def seed(engine: Engine, now: datetime = NOW) -> Seeded:
    """Ten supporters, one sending wave: 4 sent (3 in the last minute), 1 failed, 5 planned."""
    with session_scope(engine) as s:
        campaign = Campaign(
            slug="w4r-2020",
            name="Write for Rights 2020",
            window_start=now - timedelta(days=30),
            window_end=now + timedelta(days=60),
            from_email="campaigns@example.org",
            from_name="Write for Rights",
        )
        s.add(campaign)
        s.flush()
        cases = [
            Case(campaign_id=campaign.id, slug=slug, person=person, country=country)
            for slug, person, country in (
                ("bird", "Nassima al-Sada", "SA"),
                ("popi", "Popi Qwabe and Bongeka Phungula", "ZA"),
            )
        ]
        s.add_all(cases)
        supporters = [
            Supporter(email=e, email_hash=email_hash(e), first_name=f"Name{i}", consent=True)
            for i, e in enumerate(EMAILS)
        ]
        s.add_all(supporters)
        wave = _wave(campaign.id, "case-email", WaveStatus.SENDING, now)
        wave.launched_at = wave.planned_at = now - timedelta(minutes=30)
        draft = _wave(campaign.id, "reminder", WaveStatus.DRAFT, now)
        s.add_all([wave, draft])
        s.flush()
        sent = Batch(
            wave_id=wave.id,
            case_id=cases[0].id,
            language="en",
            status=BatchStatus.SENT,
            send_after=now - timedelta(minutes=10),
            send_before=now + timedelta(hours=1),
            size=3,
            sent_count=3,
            attempts=1,
            sent_at=now - timedelta(seconds=20),
        )
        earlier = Batch(
            wave_id=wave.id,
            case_id=cases[0].id,
            language="en",
            seq=3,
            status=BatchStatus.SENT,
            send_after=now - timedelta(minutes=10),
            send_before=now + timedelta(hours=1),
            size=1,
            sent_count=1,
            attempts=1,
            sent_at=now - timedelta(seconds=80),
        )
        failed = Batch(
            wave_id=wave.id,
            case_id=cases[1].id,
            language="en",
            seq=1,
            status=BatchStatus.FAILED,
            send_after=now - timedelta(minutes=10),
            send_before=now + timedelta(hours=1),
            size=1,
            failed_count=1,
            attempts=1,
            error="400 Bad Request: personalizations[0].to invalid",
        )
        waiting = Batch(
            wave_id=wave.id,
            case_id=cases[0].id,
            language="en",
            seq=2,
            status=BatchStatus.PENDING,
            send_after=now - timedelta(minutes=5),
            send_before=now + timedelta(hours=1),
            size=5,
            planned_count=5,
        )
        s.add_all([sent, earlier, failed, waiting])
        s.flush()
        for i, supporter in enumerate(supporters):
            if i < 4:
                status, batch, at = (
                    MessageStatus.SENT,
                    earlier if i == 0 else sent,
                    now - timedelta(seconds=20 + 60 * (i == 0)),
                )
            elif i == 4:
                status, batch, at = MessageStatus.FAILED, failed, None
            else:
                status, batch, at = MessageStatus.PLANNED, waiting, None
            s.add(
                Message(
                    wave_id=wave.id,
                    supporter_id=supporter.id,
                    case_id=batch.case_id,
                    batch_id=batch.id,
                    language="en",
                    status=status,
                    sent_at=at,
                )
            )
        for i, supporter in enumerate(supporters[:4]):
            s.add(
                Action(
                    supporter_id=supporter.id,
                    case_id=cases[i % 2].id,
                    wave_id=wave.id,
                    kind=ActionKind.CLICKED if i % 2 else ActionKind.OPENED,
                    source="sendgrid",
                    dedupe_key=f"seed-{i}",
                    occurred_at=now - timedelta(days=i),
                )
            )
        s.add(
            Reply(
                status=ReplyStatus.REVIEW,
                from_email="stranger@example.net",
                subject='=HYPERLINK("http://x")',
                body="Free them now",
                received_at=now,
            )
        )
        s.add(
            Reply(
                status=ReplyStatus.MATCHED,
                from_email=EMAILS[1],
                subject="Solidarity",
                body="Stay strong",
                supporter_id=supporters[1].id,
                case_id=cases[0].id,
                wave_id=wave.id,
                received_at=now,
            )
        )
        s.flush()
        return Seeded(campaign.id, wave.id, draft.id, (cases[0].id, cases[1].id), failed.id)


def _wave(campaign_id: int, name: str, status: str, now: datetime) -> Wave:
    return Wave(
        campaign_id=campaign_id,
        name=name,
        kind="case_email",
        status=status,
        audience="all_assigned",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=1),
    )
