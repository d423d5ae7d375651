from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from audit_fixtures import audit_rows
from sending_fixtures import (
    DEC1,
    RecordingTransport,
    add_case,
    add_supporters,
    add_wave,
    make_sender,
    statuses,
    wave_status,
)
from sqlalchemy import Engine, select, update

from sender.campaign.waves import pause
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Batch, Event, Message, Supporter
from sender.core.vocabulary import AudienceRule, BatchStatus, MessageStatus, WaveKind, WaveStatus
from sender.send.pipeline import SendPolicy
from sender.send.scheduler import InlineDispatcher, tick

SETTINGS = Settings(secret_key="test")
POLICY = SendPolicy(reconcile_grace=timedelta(minutes=5), queued_timeout=timedelta(minutes=5))


@dataclass
class RecordingDispatcher:
    """Takes batch ids and sends nothing: stands for a broker that lost its messages."""

    seen: list[int] = field(default_factory=list)

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        self.seen.extend(batch_ids)


def _run(
    engine: Engine, clock: MovableClock, hours: int, dispatcher: InlineDispatcher
) -> list[str]:
    lines: list[str] = []
    for _ in range(hours * 2):
        lines += tick(engine, SETTINGS, clock.at, dispatcher, POLICY).lines()
        clock.advance(minutes=30)
    return lines


def test_a_day_of_ticks_sends_each_zone_in_its_morning_and_finishes(pg_engine: Engine) -> None:
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], ["london@example.org"], timezone="Europe/London")
    add_supporters(pg_engine, [case], ["tokyo@example.org"], timezone="Asia/Tokyo")
    add_supporters(pg_engine, [case], ["lima@example.org"], timezone="America/Lima")
    wave = add_wave(pg_engine, SETTINGS, days=1)
    transport = RecordingTransport()
    clock = MovableClock(DEC1 - timedelta(hours=1))
    lines = _run(
        pg_engine, clock, 26, InlineDispatcher(make_sender(pg_engine, SETTINGS, transport, clock))
    )
    assert transport.emails() == ["tokyo@example.org", "london@example.org", "lima@example.org"]
    with session_scope(pg_engine) as session:
        sent_at = dict(
            session.execute(
                select(Supporter.email, Message.sent_at).join(
                    Supporter, Supporter.id == Message.supporter_id
                )
            ).all()
        )
    assert sent_at["tokyo@example.org"] == DEC1
    assert sent_at["london@example.org"] == DEC1 + timedelta(hours=9)
    assert sent_at["lima@example.org"] == DEC1 + timedelta(hours=14)  # 09:00 in Lima
    assert wave_status(pg_engine, wave)[0] == WaveStatus.DONE
    assert "wave case-email done" in lines
    (done,) = audit_rows(pg_engine, "wave.done")
    assert (done.actor, done.target, done.after) == ("system", "wave case-email", "status=done")


def test_a_wave_whose_time_passed_is_marked_missed_and_never_sent(pg_engine: Engine) -> None:
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], ["late@example.org"])
    wave = add_wave(pg_engine, SETTINGS, days=1)
    transport = RecordingTransport()
    clock = MovableClock(DEC1 + timedelta(days=2))
    lines = _run(
        pg_engine, clock, 2, InlineDispatcher(make_sender(pg_engine, SETTINGS, transport, clock))
    )
    status, reason = wave_status(pg_engine, wave)
    assert status == WaveStatus.MISSED and reason and "passed before it started" in reason
    assert "wave case-email missed: its time passed before it started" in lines
    assert transport.sent == [] and statuses(pg_engine, Message) == {}
    (missed,) = audit_rows(pg_engine)
    assert (missed.actor, missed.action, missed.after) == ("system", "wave.missed", "status=missed")


def test_future_waves_wait_in_the_database(pg_engine: Engine) -> None:
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], ["later@example.org"])
    wave = add_wave(pg_engine, SETTINGS, starts_at=DEC1 + timedelta(days=9))
    dispatcher = RecordingDispatcher()
    report = tick(pg_engine, SETTINGS, DEC1, dispatcher, POLICY)
    assert report.planned == () and dispatcher.seen == []
    assert wave_status(pg_engine, wave)[0] == WaveStatus.SCHEDULED


def test_batches_lost_by_the_broker_are_released_again(pg_engine: Engine) -> None:
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], ["lost@example.org"])
    add_wave(pg_engine, SETTINGS)
    nine = DEC1 + timedelta(hours=9)
    dispatcher = RecordingDispatcher()
    tick(pg_engine, SETTINGS, DEC1, dispatcher, POLICY)
    tick(pg_engine, SETTINGS, nine, dispatcher, POLICY)
    assert len(dispatcher.seen) == 1
    tick(pg_engine, SETTINGS, nine + timedelta(minutes=2), dispatcher, POLICY)
    assert len(dispatcher.seen) == 1  # not yet: a worker may still be on it
    report = tick(pg_engine, SETTINGS, nine + timedelta(minutes=6), dispatcher, POLICY)
    assert report.requeued == 1 and dispatcher.seen == [dispatcher.seen[0]] * 2
    assert statuses(pg_engine, Batch) == {BatchStatus.QUEUED: 1}


def test_a_batch_left_sending_is_reconciled_by_the_tick_and_the_rest_resent(
    pg_engine: Engine,
) -> None:
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], ["a@example.org", "b@example.org"])
    add_wave(pg_engine, SETTINGS)
    nine = DEC1 + timedelta(hours=9)
    tick(pg_engine, SETTINGS, DEC1, RecordingDispatcher(), POLICY)
    tick(pg_engine, SETTINGS, nine, RecordingDispatcher(), POLICY)
    # A worker took the batch, sent it, and died before recording the outcome.
    with session_scope(pg_engine) as session:
        session.execute(
            update(Batch).values(status=BatchStatus.SENDING, send_key="k-dead", claimed_at=nine)
        )
        # The event names a's message: planning does not promise an id order.
        first = session.scalar(
            select(Message.id)
            .join(Supporter, Supporter.id == Message.supporter_id)
            .where(Supporter.email == "a@example.org")
        )
        session.add(
            Event(
                provider="sendgrid",
                provider_event_id="e1",
                event_type="delivered",
                message_id=first,
                batch_key="k-dead",
                occurred_at=nine,
            )
        )
    transport = RecordingTransport()
    clock = MovableClock(nine + timedelta(minutes=6))
    report = tick(
        pg_engine,
        SETTINGS,
        clock.at,
        InlineDispatcher(make_sender(pg_engine, SETTINGS, transport, clock)),
        POLICY,
    )
    assert len(report.reconciled) == 1 and report.reconciled[0][1:] == (1, 1)
    assert transport.emails() == ["b@example.org"]
    assert statuses(pg_engine, Message) == {MessageStatus.SENT: 2}


def test_pausing_mid_wave_stops_the_next_batches(pg_engine: Engine) -> None:
    case = add_case(pg_engine, SETTINGS)
    add_supporters(pg_engine, [case], ["tokyo@example.org"], timezone="Asia/Tokyo")
    add_supporters(pg_engine, [case], ["london@example.org"], timezone="Europe/London")
    wave = add_wave(pg_engine, SETTINGS, days=1)
    transport = RecordingTransport()
    clock = MovableClock(DEC1)
    dispatcher = InlineDispatcher(make_sender(pg_engine, SETTINGS, transport, clock))
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    assert transport.emails() == ["tokyo@example.org"]
    pause(pg_engine, "case-email")
    clock.advance(hours=9)
    tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    assert transport.emails() == ["tokyo@example.org"]
    assert wave_status(pg_engine, wave)[0] == WaveStatus.PAUSED
    clock.advance(hours=3)  # London's window closed while paused: missed, not sent late
    report = tick(pg_engine, SETTINGS, clock.at, dispatcher, POLICY)
    assert report.expired == 1 and transport.emails() == ["tokyo@example.org"]


def test_the_reminder_goes_only_to_those_who_have_not_acted(pg_engine: Engine) -> None:
    case = add_case(pg_engine, SETTINGS)
    acted, _ = add_supporters(pg_engine, [case], ["acted@example.org", "idle@example.org"])
    add_wave(pg_engine, SETTINGS, days=1)
    reminder_start = DEC1 + timedelta(days=9)
    add_wave(
        pg_engine,
        SETTINGS,
        "human-rights-day",
        kind=WaveKind.ACTION_REMINDER,
        audience=AudienceRule.NOT_ACTED,
        starts_at=reminder_start,
        days=1,
    )
    transport = RecordingTransport()
    clock = MovableClock(DEC1)
    dispatcher = InlineDispatcher(make_sender(pg_engine, SETTINGS, transport, clock))
    _run(pg_engine, clock, 12, dispatcher)
    assert sorted(transport.emails()) == ["acted@example.org", "idle@example.org"]
    with session_scope(pg_engine) as session:
        session.add(
            Action(supporter_id=acted, case_id=case, kind="clicked", source="sendgrid", acting=True)
        )
    clock.at = reminder_start
    _run(pg_engine, clock, 12, dispatcher)
    assert sorted(transport.emails()) == [
        "acted@example.org",
        "idle@example.org",
        "idle@example.org",
    ]
    assert [b.subject for b in transport.sent][-1] == "Stand with Nassima"
