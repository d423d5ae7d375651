"""send_batch through the real SendGrid transport against the local SendGrid process."""

from __future__ import annotations

from datetime import timedelta

from sendgrid_fixtures import API_KEY, sendgrid_process, sg  # noqa: F401 - fixtures
from sending_fixtures import DEC1, add_case, add_supporters, add_wave, statuses
from sending_fixtures import wave_status as status_of
from sqlalchemy import Engine

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Batch, Message
from sender.core.vocabulary import BatchStatus, MessageStatus, WaveStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender, send_batch
from sender.send.planner import plan_wave
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.sendgrid import SendGridTransport

SETTINGS = Settings(secret_key="test", batch_size=3)
NINE = DEC1 + timedelta(hours=9)


def _setup(engine: Engine, server: LocalSendGrid, count: int = 6) -> tuple[int, list[int], Sender]:
    case = add_case(engine, SETTINGS)
    add_supporters(engine, [case], [f"p{i}@example.net" for i in range(count)])
    wave = add_wave(engine, SETTINGS)
    plan_wave(engine, SETTINGS, wave, DEC1)
    with session_scope(engine) as session:
        batches = repo.release_due(session, NINE, 100)
    sender = Sender(
        store=SqlSendStore.from_settings(engine, SETTINGS),
        settings=SETTINGS,
        transport=SendGridTransport(API_KEY, host=server.base_url, timeout_seconds=5),
        bucket=LocalTokenBucket(),
        clock=MovableClock(NINE),
        sleep=lambda _: None,
    )
    return wave, batches, sender


def test_batches_reach_the_provider_once_with_custom_args(
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
) -> None:
    _, batches, sender = _setup(pg_engine, sg)
    assert [send_batch(b, sender).outcome for b in batches] == [
        BatchOutcome.SENT,
        BatchOutcome.SENT,
    ]
    assert [send_batch(b, sender).outcome for b in batches] == [BatchOutcome.NOT_MINE] * 2
    assert sg.admin.count() == 6
    received = sg.admin.recipients()
    assert {"message_id", "wave_id", "case_id", "supporter_id", "send_key"} <= set(
        received[0]["custom_args"]
    )


def test_a_400_fails_one_batch_and_a_429_is_waited_out(
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
) -> None:
    _, batches, sender = _setup(pg_engine, sg)
    sg.admin.set_faults(
        forced=[{"status": 429, "remaining": 1}, {"status": 400, "email": "p4@example.net"}]
    )
    results = [send_batch(b, sender) for b in batches]
    assert [r.outcome for r in results] == [BatchOutcome.SENT, BatchOutcome.FAILED]
    with session_scope(pg_engine) as session:
        failed = session.get(Batch, batches[1])
        assert failed is not None and failed.status == BatchStatus.FAILED
        assert failed.error and "400" in failed.error
    assert statuses(pg_engine, Message) == {MessageStatus.SENT: 3, MessageStatus.FAILED: 3}
    assert sg.admin.count() == 3


def test_a_401_pauses_the_wave_and_nothing_is_marked_sent(
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
) -> None:
    wave, batches, sender = _setup(pg_engine, sg)
    sg.admin.set_faults(forced=[{"status": 401}])
    assert send_batch(batches[0], sender).outcome == BatchOutcome.UNAUTHORISED
    assert status_of(pg_engine, wave)[0] == WaveStatus.PAUSED
    assert statuses(pg_engine, Message) == {MessageStatus.PLANNED: 6}
    assert sg.admin.count() == 0
