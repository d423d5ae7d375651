"""Planning (sender.send.planner.plan_wave): who gets a message, in which batch."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sending_fixtures import CASE_TEXT, DEC1, add_case, add_supporters, add_wave, by_email
from sqlalchemy import Engine, select

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Batch, Case, Message, Suppression
from sender.core.vocabulary import (
    AudienceRule,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveKind,
    WaveStatus,
)
from sender.send.planner import plan_wave

SETTINGS = Settings(secret_key="test")


def _planned(engine: Engine) -> dict[str, int]:
    """email -> case id of each planned message."""
    return by_email(engine, Message.case_id)


def test_planning_checks_every_eligibility_rule(any_engine: Engine) -> None:
    case = add_case(any_engine, SETTINGS)
    paused = add_case(any_engine, SETTINGS, "paused")
    add_supporters(any_engine, [case], ["ok@example.org"])
    add_supporters(any_engine, [case], ["gone@example.org"], status=SupporterStatus.UNSUBSCRIBED)
    add_supporters(any_engine, [case], ["noconsent@example.org"], consent=False)
    add_supporters(any_engine, [case], ["suppressed@example.org"])
    add_supporters(any_engine, [paused], ["pausedcase@example.org"])
    with session_scope(any_engine) as session:
        session.add(Suppression(email_hash=email_hash("suppressed@example.org"), reason="bounced"))
        found = session.get(Case, paused)
        assert found is not None
        found.status = CaseStatus.PAUSED
    wave = add_wave(any_engine, SETTINGS)
    result = plan_wave(any_engine, SETTINGS, wave, DEC1)
    assert result is not None and result.messages == 1
    assert set(_planned(any_engine)) == {"ok@example.org"}
    assert plan_wave(any_engine, SETTINGS, wave, DEC1) is None  # planned once only


def test_reminders_leave_out_those_who_acted_and_the_recently_mailed(any_engine: Engine) -> None:
    case = add_case(any_engine, SETTINGS)
    acted, opened, silent, recent = add_supporters(
        any_engine,
        [case],
        ["acted@example.org", "opened@example.org", "silent@example.org", "recent@example.org"],
    )
    first = add_wave(any_engine, SETTINGS, "first", status=WaveStatus.DONE)
    with session_scope(any_engine) as session:
        session.add(Action(supporter_id=acted, case_id=case, kind="letter_sent", source="link"))
        session.add(Action(supporter_id=opened, case_id=case, kind="opened", source="sendgrid"))
        session.add(
            Message(
                wave_id=first,
                supporter_id=recent,
                case_id=case,
                language="en",
                status=MessageStatus.SENT,
                sent_at=DEC1 + timedelta(days=9, hours=12),
            )
        )
    start = DEC1 + timedelta(days=10)
    reminder = add_wave(
        any_engine,
        SETTINGS,
        "reminder",
        kind=WaveKind.ACTION_REMINDER,
        audience=AudienceRule.NOT_ACTED,
        starts_at=start,
    )
    plan_wave(any_engine, SETTINGS, reminder, start)
    assert set(_planned(any_engine)) == {
        "opened@example.org",
        "silent@example.org",
        "recent@example.org",
    }
    with session_scope(any_engine) as session:
        in_reminder = session.scalars(
            select(Message.supporter_id).where(Message.wave_id == reminder)
        ).all()
    assert set(in_reminder) == {opened, silent}  # recent: frequency cap (48 h)
    openers = add_wave(
        any_engine,
        SETTINGS,
        "openers",
        kind=WaveKind.LAST_CHANCE,
        audience=AudienceRule.OPENED_NOT_ACTED,
        starts_at=start + timedelta(days=5),
    )
    plan_wave(any_engine, SETTINGS, openers, start + timedelta(days=5))
    with session_scope(any_engine) as session:
        in_openers = session.scalars(
            select(Message.supporter_id).where(Message.wave_id == openers)
        ).all()
    assert list(in_openers) == [opened]


def test_one_message_per_supporter_for_the_first_assigned_active_case(any_engine: Engine) -> None:
    first = add_case(any_engine, SETTINGS, "first")
    second = add_case(any_engine, SETTINGS, "second")
    add_supporters(any_engine, [first, second], ["both@example.org"])
    add_supporters(any_engine, [second, first], ["reverse@example.org"])
    wave = add_wave(any_engine, SETTINGS)
    plan_wave(any_engine, SETTINGS, wave, DEC1)
    assert _planned(any_engine) == {"both@example.org": first, "reverse@example.org": second}


def test_a_wave_launched_after_its_start_is_planned_from_now_not_into_closed_windows(
    any_engine: Engine,
) -> None:
    """Started 23:26 with a window open all day, launched 00:26: today's window, not
    yesterday's (which shut at 23:59), or every batch would miss its slot at once."""
    case = add_case(any_engine, SETTINGS)
    add_supporters(any_engine, [case], ["london@example.org"], timezone="Europe/London")
    add_supporters(any_engine, [case], ["morning@example.org"], timezone="UTC")
    started = DEC1 - timedelta(minutes=34)  # 30 November, 23:26 UTC
    late = add_wave(any_engine, SETTINGS, starts_at=started, window=(time(0), time(23, 59)))
    now = DEC1 + timedelta(minutes=26)
    plan_wave(any_engine, SETTINGS, late, now)
    with session_scope(any_engine) as session:
        slots = session.execute(select(Batch.send_after, Batch.send_before)).all()
    assert slots and all(after == now and before > now for after, before in slots)
    assert {before for _, before in slots} == {DEC1 + timedelta(hours=23, minutes=59)}


def test_a_window_that_shut_before_the_launch_sends_in_the_next_one(any_engine: Engine) -> None:
    """Started at 10:00 in a 09:00–11:00 window, launched at noon: tomorrow at nine."""
    case = add_case(any_engine, SETTINGS)
    add_supporters(any_engine, [case], ["london@example.org"], timezone="Europe/London")
    wave = add_wave(any_engine, SETTINGS, starts_at=DEC1 + timedelta(hours=10), days=3)
    plan_wave(any_engine, SETTINGS, wave, DEC1 + timedelta(hours=12))
    with session_scope(any_engine) as session:
        slots = session.execute(select(Batch.send_after, Batch.send_before)).all()
    assert slots == [(DEC1 + timedelta(days=1, hours=9), DEC1 + timedelta(days=1, hours=11))]


def test_batches_group_by_variant_and_slot_and_hold_at_most_the_batch_size(
    any_engine: Engine,
) -> None:
    text = CASE_TEXT["en"]
    case = add_case(any_engine, SETTINGS, content={"en": text, "es": text, "fr": text})
    add_supporters(any_engine, [case], [f"en{i}@example.org" for i in range(5)])
    add_supporters(any_engine, [case], [f"es{i}@example.org" for i in range(2)], language="es")
    add_supporters(any_engine, [case], [f"fr{i}@example.org" for i in range(2)], language="fr")
    add_supporters(any_engine, [case], ["tokyo@example.org"], timezone="Asia/Tokyo")
    wave = add_wave(any_engine, SETTINGS)
    with session_scope(any_engine) as session:
        from sender.core.models import Wave

        row = session.get(Wave, wave)
        assert row is not None
        row.subjects = {
            "en": "Hello",
            "es": "Hola",
        }  # no French subject: French readers get English
    small = Settings(secret_key="test", batch_size=2)
    result = plan_wave(any_engine, small, wave, DEC1)
    assert result is not None and (result.messages, result.zones) == (10, 2)
    with session_scope(any_engine) as session:
        batches = session.execute(
            select(Batch.language, Batch.send_after, Batch.size).order_by(Batch.id)
        ).all()
        unlinked = session.scalars(select(Message.id).where(Message.batch_id.is_(None))).all()
    assert unlinked == []
    assert all(size <= 2 for _, _, size in batches)
    sizes: dict[tuple[str, datetime], int] = {}
    for language, after, size in batches:
        sizes[(language, after)] = sizes.get((language, after), 0) + size
    nine_utc = DEC1 + timedelta(hours=9)
    assert sizes == {("en", nine_utc): 7, ("es", nine_utc): 2, ("en", DEC1): 1}
