from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from audit_fixtures import audit_rows
from sending_fixtures import (
    DEC1,
    RecordingTransport,
    add_case,
    add_supporters,
    add_wave,
    by_email,
    make_sender,
    statuses,
    wave_status,
)
from sqlalchemy import Engine, select, update

from sender.campaign.waves import retry_failed
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Batch, Case, Event, Message, Supporter, Wave
from sender.core.vocabulary import (
    BatchStatus,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveStatus,
)
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.pipeline import SendPolicy, send_batch
from sender.send.planner import plan_wave
from sender.send.transport.base import NotAuthorised, OutcomeUnknown, Rejected, RetryLater

SETTINGS = Settings(secret_key="test", batch_size=3)
NINE = DEC1 + timedelta(hours=9)
FAST = SendPolicy(reconcile_grace=timedelta(minutes=1))


def _queued(engine: Engine, count: int = 3) -> tuple[int, list[int]]:
    """A planned wave whose batches (of 3) are released: (wave id, batch ids)."""
    case = add_case(engine, SETTINGS)
    add_supporters(engine, [case], [f"s{i}@example.org" for i in range(count)])
    wave = add_wave(engine, SETTINGS)
    plan_wave(engine, SETTINGS, wave, DEC1)
    with session_scope(engine) as session:
        return wave, repo.release_due(session, NINE, 100)


def _messages(engine: Engine) -> dict[str, str]:
    return by_email(engine, Message.status)


def _batch(engine: Engine, batch_id: int) -> Batch:
    with session_scope(engine) as session:
        found = session.get(Batch, batch_id)
        assert found is not None
        return found


def test_an_accepted_batch_marks_batch_and_messages_sent_with_custom_args(
    pg_engine: Engine,
) -> None:
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport()
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE))
    result = send_batch(batch_id, sender)
    assert (result.outcome, result.sent) == (BatchOutcome.SENT, 3)
    assert set(_messages(pg_engine).values()) == {MessageStatus.SENT}
    batch = _batch(pg_engine, batch_id)
    assert (batch.status, batch.sent_at) == (BatchStatus.SENT, NINE)
    (request,) = transport.sent
    assert batch.send_key == request.send_key
    args = request.custom_args_for(request.recipients[0])
    assert set(args) >= {"message_id", "wave_id", "case_id", "supporter_id", "send_key"}
    assert args["send_key"] == request.send_key
    # Once per request, with the installation id that events must carry back.
    assert set(request.custom_args) == {"installation_id", "wave_id", "case_id", "send_key"}


def test_a_batch_is_sent_once_however_often_it_is_dispatched(pg_engine: Engine) -> None:
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport()
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE))
    outcomes: list[BatchOutcome] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(send_batch(batch_id, sender).outcome))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count(BatchOutcome.SENT) == 1
    assert len(transport.sent) == 1 and len(transport.emails()) == 3


def test_a_supporter_who_unsubscribes_after_planning_is_not_emailed(pg_engine: Engine) -> None:
    _, (batch_id,) = _queued(pg_engine)
    with session_scope(pg_engine) as session:
        session.execute(
            update(Supporter)
            .where(Supporter.email == "s1@example.org")
            .values(status=SupporterStatus.UNSUBSCRIBED)
        )
    transport = RecordingTransport()
    result = send_batch(batch_id, make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE)))
    assert (result.sent, result.skipped) == (2, 1)
    assert "s1@example.org" not in transport.emails()
    assert _messages(pg_engine)["s1@example.org"] == MessageStatus.SKIPPED


def test_a_refused_batch_fails_with_the_reason_while_the_others_go_on(pg_engine: Engine) -> None:
    wave, batches = _queued(pg_engine, count=6)
    transport = RecordingTransport(script=[Rejected("personalizations too many", status_code=400)])
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE))
    results = [send_batch(b, sender) for b in batches]
    assert [r.outcome for r in results] == [BatchOutcome.FAILED, BatchOutcome.SENT]
    failed = _batch(pg_engine, batches[0])
    assert failed.status == BatchStatus.FAILED
    assert "400" in (failed.error or "") and "too many" in (failed.error or "")
    assert statuses(pg_engine, Message) == {MessageStatus.FAILED: 3, MessageStatus.SENT: 3}
    assert retry_failed(pg_engine, "case-email") == 1
    with session_scope(pg_engine) as session:
        assert repo.release_due(session, NINE, 100) == [batches[0]]
    assert send_batch(batches[0], sender).outcome == BatchOutcome.SENT
    assert statuses(pg_engine, Message) == {MessageStatus.SENT: 6}
    assert wave_status(pg_engine, wave)[0] == WaveStatus.SENDING


def test_unauthorised_pauses_the_wave_and_marks_nothing_sent(pg_engine: Engine) -> None:
    wave, batches = _queued(pg_engine, count=6)
    transport = RecordingTransport(script=[NotAuthorised("bad API key", status_code=401)])
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE))
    assert send_batch(batches[0], sender).outcome == BatchOutcome.UNAUTHORISED
    assert send_batch(batches[1], sender).outcome == BatchOutcome.HELD  # the wave is paused now
    status, reason = wave_status(pg_engine, wave)
    assert status == WaveStatus.PAUSED
    assert reason is not None and "401" in reason and "resume" in reason
    assert statuses(pg_engine, Message) == {MessageStatus.PLANNED: 6}
    assert statuses(pg_engine, Batch) == {BatchStatus.PENDING: 2}
    assert transport.sent == []
    (row,) = audit_rows(pg_engine)  # one pause, however many batches hit the 401
    assert (row.actor, row.action, row.outcome) == ("system", "wave.auto-pause", "done")
    assert (row.before, row.after) == ("status=sending", "status=paused")
    assert row.detail is not None and "401" in row.detail


def test_rate_limited_and_server_errors_are_retried_after_the_right_wait(
    pg_engine: Engine,
) -> None:
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport(
        script=[
            RetryLater("429", wait_seconds=7.0, status_code=429),
            RetryLater("503", status_code=503),
        ]
    )
    sleeps: list[float] = []
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE), sleeps=sleeps)
    result = send_batch(batch_id, sender)
    assert result.outcome == BatchOutcome.SENT and transport.attempts == 3
    assert sleeps[0] == 7.0  # the provider's reset time
    assert 2.0 <= sleeps[1] <= 4.0  # second attempt: back-off of up to 4 s, with jitter
    keys = {b.send_key for b in transport.sent}
    assert _batch(pg_engine, batch_id).send_key in keys
    # A new key for every attempt, in the args its events will carry; same recipients.
    assert len({b.send_key for b in transport.tried}) == 3
    assert all(b.custom_args["send_key"] == b.send_key for b in transport.tried)
    assert all(b.recipients == transport.tried[0].recipients for b in transport.tried)
    assert _batch(pg_engine, batch_id).attempts == 3


def test_persistent_server_errors_give_the_batch_back_for_a_later_tick(pg_engine: Engine) -> None:
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport(script=[RetryLater("502", status_code=502)] * 4)
    clock = MovableClock(NINE)
    sender = make_sender(pg_engine, SETTINGS, transport, clock)
    assert send_batch(batch_id, sender).outcome == BatchOutcome.RETRY
    batch = _batch(pg_engine, batch_id)
    assert batch.status == BatchStatus.PENDING and batch.retry_at is not None
    assert statuses(pg_engine, Message) == {MessageStatus.PLANNED: 3}
    with session_scope(pg_engine) as session:
        assert repo.release_due(session, NINE + timedelta(seconds=5), 100) == []
        assert repo.release_due(session, batch.retry_at, 100) == [batch_id]
    clock.at = batch.retry_at
    assert send_batch(batch_id, sender).outcome == BatchOutcome.SENT


def test_a_paused_case_stops_its_queued_batches_before_they_send(pg_engine: Engine) -> None:
    _, (batch_id,) = _queued(pg_engine)
    with session_scope(pg_engine) as session:
        session.execute(update(Case).values(status=CaseStatus.PAUSED))
    transport = RecordingTransport()
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE))
    assert send_batch(batch_id, sender).outcome == BatchOutcome.HELD
    assert transport.sent == [] and _batch(pg_engine, batch_id).status == BatchStatus.PENDING
    with session_scope(pg_engine) as session:
        assert repo.release_due(session, NINE, 100) == []  # held while paused
        session.execute(update(Case).values(status=CaseStatus.ACTIVE))
        assert repo.release_due(session, NINE, 100) == [batch_id]
    assert send_batch(batch_id, sender).outcome == BatchOutcome.SENT


def test_a_batch_whose_window_closed_is_not_sent_late(pg_engine: Engine) -> None:
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport()
    late = MovableClock(NINE + timedelta(hours=3))
    assert send_batch(batch_id, make_sender(pg_engine, SETTINGS, transport, late)).outcome == (
        BatchOutcome.EXPIRED
    )
    assert transport.sent == []
    assert statuses(pg_engine, Message) == {MessageStatus.CANCELLED: 3}


def test_a_drop_does_not_confirm_an_unknown_outcome(pg_engine: Engine) -> None:
    # A message the provider dropped (here for the quota, issue 12) reached nobody: an
    # unknown outcome is not settled by its drop, the message is sent again.
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport(script=[OutcomeUnknown("read timed out")])
    clock = MovableClock(NINE)
    sender = make_sender(pg_engine, SETTINGS, transport, clock, policy=FAST)
    assert send_batch(batch_id, sender).outcome == BatchOutcome.UNKNOWN
    with session_scope(pg_engine) as session:
        ids = list(session.scalars(select(Message.id).order_by(Message.id)))
        for n, (message_id, kind) in enumerate(zip(ids, ["dropped", "queued"], strict=False)):
            session.add(
                Event(
                    provider="sendgrid",
                    provider_event_id=f"ev-{n}",
                    event_type=kind,
                    raw_type=kind,
                    message_id=message_id,
                    occurred_at=NINE,
                )
            )
    later = NINE + timedelta(minutes=2)
    with session_scope(pg_engine) as session:
        assert repo.reconcile(session, batch_id, later) == (1, 2)  # the drop is resent
    clock.at = later
    with session_scope(pg_engine) as session:
        assert repo.release_due(session, later, 100) == [batch_id]
    assert send_batch(batch_id, sender).sent == 2
    resent = {int(r.custom_args["message_id"]) for r in transport.sent[-1].recipients}
    assert ids[0] in resent and ids[1] not in resent
    assert statuses(pg_engine, Message) == {MessageStatus.SENT: 3}


def test_an_unknown_outcome_is_reconciled_from_events_before_any_resend(
    pg_engine: Engine,
) -> None:
    _, (batch_id,) = _queued(pg_engine)
    transport = RecordingTransport(script=[OutcomeUnknown("read timed out")])
    clock = MovableClock(NINE)
    sender = make_sender(pg_engine, SETTINGS, transport, clock, policy=FAST)
    assert send_batch(batch_id, sender).outcome == BatchOutcome.UNKNOWN
    batch = _batch(pg_engine, batch_id)
    assert batch.status == BatchStatus.SENDING and batch.send_key
    with session_scope(pg_engine) as session:
        first = session.scalars(select(Message).order_by(Message.id)).first()
        assert first is not None
        session.add(
            Event(
                provider="sendgrid",
                provider_event_id="ev-1",
                event_type="queued",
                raw_type="processed",
                message_id=first.id,
                batch_key=batch.send_key,
                occurred_at=NINE,
            )
        )
        first_id = first.id
        assert repo.unreconciled(session, NINE + timedelta(seconds=30), FAST.reconcile_grace) == []
    later = NINE + timedelta(minutes=2)
    with session_scope(pg_engine) as session:
        (found,) = repo.unreconciled(session, later, FAST.reconcile_grace)
        assert repo.reconcile(session, found, later) == (1, 2)
        assert repo.release_due(session, later, 100) == [batch_id]
    clock.at = later
    assert send_batch(batch_id, sender).sent == 2
    (resend,) = transport.sent
    assert resend.send_key != batch.send_key
    assert first_id not in {int(r.custom_args["message_id"]) for r in resend.recipients}
    assert statuses(pg_engine, Message) == {MessageStatus.SENT: 3}


def test_sending_runs_on_sqlite_too(sqlite_engine: Engine) -> None:
    _, (batch_id,) = _queued(sqlite_engine)
    transport = RecordingTransport()
    sender = make_sender(sqlite_engine, SETTINGS, transport, MovableClock(NINE))
    assert send_batch(batch_id, sender).outcome == BatchOutcome.SENT
    assert send_batch(batch_id, sender).outcome == BatchOutcome.NOT_MINE
    with session_scope(sqlite_engine) as session:
        wave = session.scalars(select(Wave)).one()
    assert wave.status == WaveStatus.SENDING and len(transport.emails()) == 3


def test_a_warmed_up_domain_holds_back_only_its_own_addresses(pg_engine: Engine) -> None:
    slow_case, fast_case = add_case(pg_engine, SETTINGS, "slow"), add_case(pg_engine, SETTINGS)
    # Two cases, two batches: one all slow.example, one all fast.example.
    add_supporters(pg_engine, [slow_case], [f"w{i}@slow.example" for i in range(3)])
    add_supporters(pg_engine, [fast_case], [f"f{i}@fast.example" for i in range(3)])
    # 30 an hour, a bucket of one token: the next batch waits longer than a worker would.
    wave = add_wave(pg_engine, SETTINGS, domain_rates={"slow.example": 30})
    plan_wave(pg_engine, SETTINGS, wave, DEC1)
    with session_scope(pg_engine) as session:
        released = repo.release_due(session, NINE, 100)
        by_case: dict[int, int] = dict(session.execute(select(Batch.case_id, Batch.id)).all())
    assert sorted(released) == sorted(by_case.values())
    transport = RecordingTransport()
    sender = make_sender(pg_engine, SETTINGS, transport, MovableClock(NINE))
    assert send_batch(by_case[slow_case], sender).outcome == BatchOutcome.SENT  # the one token
    assert send_batch(by_case[fast_case], sender).outcome == BatchOutcome.SENT  # not held back
    with session_scope(pg_engine) as session:  # the slow domain's next batch must wait
        session.execute(update(Batch).where(Batch.id == by_case[slow_case]).values(status="queued"))
        session.execute(
            update(Message).where(Message.batch_id == by_case[slow_case]).values(status="planned")
        )
    result = send_batch(by_case[slow_case], sender)
    # The first batch took 3 tokens from a bucket of 1: 3 in debt at 30 an hour.
    assert (result.outcome, result.detail) == (BatchOutcome.RETRY, "rate limit: 360s")
    assert len(transport.emails()) == 6


def test_a_wave_paused_while_its_batch_waits_for_rate_tokens_sends_nothing(
    pg_engine: Engine,
) -> None:
    """Found by the browser journey: a batch sleeping for tokens went out after the pause."""
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], [f"w{i}@slow.example" for i in range(6)])
    # 150 an hour, a bucket of two: the second batch waits about a minute, inline.
    wave = add_wave(pg_engine, SETTINGS, domain_rates={"slow.example": 150})
    plan_wave(pg_engine, SETTINGS, wave, DEC1)
    with session_scope(pg_engine) as session:
        first, second = sorted(repo.release_due(session, NINE, 100))
    clock = MovableClock(NINE)
    waits: list[float] = []

    def staff_pause_meanwhile(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)
        with session_scope(pg_engine) as session:
            session.get_one(Wave, wave).status = WaveStatus.PAUSED

    transport = RecordingTransport()
    sender = replace(
        make_sender(pg_engine, SETTINGS, transport, clock), sleep=staff_pause_meanwhile
    )
    assert send_batch(first, sender).outcome == BatchOutcome.SENT
    result = send_batch(second, sender)
    assert (result.outcome, result.detail) == (BatchOutcome.HELD, "paused")
    assert len(waits) == 1 and 0 < waits[0] <= FAST.longest_inline_wait_seconds
    assert len(transport.emails()) == 3
    assert statuses(pg_engine, Message) == {MessageStatus.SENT: 3, MessageStatus.PLANNED: 3}


def test_the_frequency_cap_is_checked_again_right_before_sending(any_engine: Engine) -> None:
    case = add_case(any_engine, SETTINGS)
    add_supporters(any_engine, [case], ["ana@example.org", "ben@example.org"])
    first = add_wave(any_engine, SETTINGS, name="first")
    second = add_wave(any_engine, SETTINGS, name="second")
    plan_wave(any_engine, SETTINGS, first, DEC1)
    plan_wave(any_engine, SETTINGS, second, DEC1)  # planned before anyone was mailed
    with session_scope(any_engine) as session:
        batches = dict(session.execute(select(Batch.wave_id, Batch.id)).all())
        repo.release_due(session, NINE, 100)
    transport = RecordingTransport()
    sender = make_sender(any_engine, SETTINGS, transport, MovableClock(NINE))
    assert send_batch(batches[first], sender).sent == 2
    later = make_sender(any_engine, SETTINGS, transport, MovableClock(NINE + timedelta(hours=1)))
    result = send_batch(batches[second], later)
    assert (result.outcome, result.sent, result.skipped) == (BatchOutcome.SENT, 0, 2)
    with session_scope(any_engine) as session:
        reasons = session.scalars(select(Message.skip_reason).where(Message.wave_id == second))
        assert set(reasons) == {"frequency_cap"}
    assert len(transport.emails()) == 2
