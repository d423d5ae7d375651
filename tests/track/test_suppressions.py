"""Events that must stop mail: suppressions, supporter status, cancelled messages."""

from __future__ import annotations

import pytest
from events_fixtures import T0, ingest, seed, sg_event
from sqlalchemy import Engine, select

from sender.core.addresses import email_hash
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Message, Supporter, Suppression
from sender.core.vocabulary import SuppressionReason
from sender.track import suppressions
from sender.track.actions import process_pending_events
from sender.track.suppressions import Suppressed


def _run(engine: Engine) -> int:
    report = process_pending_events(engine, 5000, Settings(secret_key="t"), MovableClock(T0))
    return report.suppressed


def _state(engine: Engine, who: int) -> tuple[str | None, str, list[str]]:
    h = email_hash(f"p{who}@example.org")
    with engine.connect() as c:
        reason = c.scalar(select(Suppression.reason).where(Suppression.email_hash == h))
        status = c.scalar(select(Supporter.status).where(Supporter.email_hash == h))
        supporter = c.scalar(select(Supporter.id).where(Supporter.email_hash == h))
        messages = c.scalars(
            select(Message.status).where(Message.supporter_id == supporter).order_by(Message.id)
        ).all()
    return reason, str(status), list(messages)


def test_each_kind_of_stop(any_engine: Engine) -> None:
    w = seed(any_engine, people=5)
    ingest(
        any_engine,
        [
            sg_event(w, 0, "bounce", 1, type="bounce"),
            sg_event(w, 1, "dropped", 2, reason="Bounced Address"),
            sg_event(w, 2, "spamreport", 3),
            sg_event(w, 3, "unsubscribe", 4),
            sg_event(w, 4, "group_unsubscribe", 5, asm_group_id=1),
        ],
    )
    assert _run(any_engine) == 5
    assert _state(any_engine, 0) == ("bounced", "bounced", ["sent", "planned"])
    assert _state(any_engine, 1) == ("bounced", "bounced", ["sent", "planned"])
    assert _state(any_engine, 2) == ("complained", "complained", ["sent", "cancelled"])
    assert _state(any_engine, 3) == ("unsubscribed", "unsubscribed", ["sent", "cancelled"])
    assert _state(any_engine, 4) == ("unsubscribed", "unsubscribed", ["sent", "cancelled"])


def test_soft_bounces_suppress_only_three_in_a_row(any_engine: Engine) -> None:
    w = seed(any_engine, people=2)
    blocked = {"type": "blocked"}
    # p0: two blocked, a delivery resets, then two more: not suppressed.
    ingest(
        any_engine,
        [sg_event(w, 0, "bounce", n, **blocked) for n in (1, 2)]
        + [sg_event(w, 0, "delivered", 3)]
        + [sg_event(w, 0, "bounce", n, **blocked) for n in (4, 5)],
    )
    # p1: three blocked across two processing runs: suppressed on the third.
    ingest(any_engine, [sg_event(w, 1, "bounce", n, **blocked) for n in (1, 2)])
    assert _run(any_engine) == 0
    ingest(any_engine, [sg_event(w, 1, "bounce", 3, **blocked)])
    assert _run(any_engine) == 1
    assert _state(any_engine, 0) == (None, "subscribed", ["sent", "planned"])
    assert _state(any_engine, 1) == ("bounced", "bounced", ["sent", "planned"])


def test_complaint_beats_bounce_and_repeats_change_nothing(any_engine: Engine) -> None:
    w = seed(any_engine, people=1)
    ingest(
        any_engine, [sg_event(w, 0, "spamreport", 1), sg_event(w, 0, "bounce", 2, type="bounce")]
    )
    assert _run(any_engine) == 1  # the first reason is kept
    assert _state(any_engine, 0) == ("complained", "complained", ["sent", "cancelled"])
    ingest(any_engine, [sg_event(w, 0, "unsubscribe", 3)])
    assert _run(any_engine) == 0
    assert _state(any_engine, 0) == ("complained", "complained", ["sent", "cancelled"])


def test_suppression_by_hash_without_a_supporter(any_engine: Engine) -> None:
    w = seed(any_engine, people=1)
    event = {**sg_event(w, 0, "spamreport", 1), "email": "stranger@example.org"}
    for key in ("message_id", "supporter_id"):
        event.pop(key)
    ingest(any_engine, [event])
    assert _run(any_engine) == 1
    assert _state(any_engine, 0)[1] == "subscribed"
    stranger = email_hash("stranger@example.org")
    with any_engine.connect() as c:
        suppressed = c.execute(
            select(Suppression.reason, Suppression.source).where(Suppression.email_hash == stranger)
        ).one()
    assert tuple(suppressed) == ("complained", "sendgrid")  # the provider that reported it


def test_a_manual_suppression_keeps_the_status_and_only_it_can_be_lifted(
    any_engine: Engine,
) -> None:
    seed(any_engine, people=2)
    manual, bounced = email_hash("p0@example.org"), email_hash("p1@example.org")
    with session_scope(any_engine) as session:
        assert suppressions.add(session, Suppressed(manual, SuppressionReason.MANUAL), "staff", T0)
        suppressions.add(session, Suppressed(bounced, SuppressionReason.BOUNCED), "event", T0)
    assert _state(any_engine, 0)[:2] == ("manual", "subscribed")
    with pytest.raises(InvalidInput, match="suppressed as bounced"), session_scope(any_engine) as s:
        suppressions.remove_manual(s, bounced)
    assert _state(any_engine, 1)[:2] == ("bounced", "bounced")
    with session_scope(any_engine) as session:
        assert suppressions.remove_manual(session, manual)
        assert not suppressions.remove_manual(session, email_hash("nobody@example.org"))
    assert _state(any_engine, 0)[:2] == (None, "subscribed")
