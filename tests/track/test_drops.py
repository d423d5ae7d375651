"""Dropped events told apart by SendGrid's reason; deferred events recorded, never suppressing.

The reasons are SendGrid's (Event Webhook reference, "dropped"; django-anymail's SendGrid
webhook tests carry "Bounced Address" and "Invalid"); the payloads are written here.
"""

from __future__ import annotations

import random

import pytest
from events_fixtures import T0, ingest, seed, sg_event
from sqlalchemy import Engine, select

from sender.core.addresses import email_hash
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.models import Event, Message, Supporter, Suppression
from sender.core.vocabulary import EventType, SuppressionReason
from sender.devtools.local_sendgrid.webhooks import Scenario, events_for
from sender.track.actions import process_pending_events
from sender.track.providers.sendgrid import translate


def _run(engine: Engine) -> int:
    report = process_pending_events(engine, 5000, Settings(secret_key="t"), MovableClock(T0))
    return report.suppressed


def _state(engine: Engine, who: int) -> tuple[str | None, str, list[tuple[str, str | None]]]:
    """(suppression reason, supporter status, [(message status, skip reason)...])."""
    h = email_hash(f"p{who}@example.org")
    with engine.connect() as c:
        reason = c.scalar(select(Suppression.reason).where(Suppression.email_hash == h))
        supporter = c.execute(
            select(Supporter.id, Supporter.status).where(Supporter.email_hash == h)
        ).one()
        messages = c.execute(
            select(Message.status, Message.skip_reason)
            .where(Message.supporter_id == supporter.id)
            .order_by(Message.id)
        ).all()
    return reason, str(supporter.status), [(m.status, m.skip_reason) for m in messages]


UNTOUCHED = ("subscribed", [("sent", None), ("planned", None)])


@pytest.mark.parametrize(
    ("reason", "suppression", "status", "planned"),
    [
        ("Bounced Address", "bounced", "bounced", ("planned", None)),
        ("Invalid", "invalid", "bounced", ("planned", None)),
        # The supporter asked SendGrid to stop: their planned mail goes, as on an unsubscribe.
        ("Unsubscribed Address", "unsubscribed", "unsubscribed", ("cancelled", "unsubscribed")),
        ("Spam Reporting Address", "complained", "complained", ("cancelled", "complained")),
    ],
)
def test_a_drop_about_the_address_suppresses_it_as_its_reason_says(
    any_engine: Engine,
    reason: str,
    suppression: str,
    status: str,
    planned: tuple[str, str | None],
) -> None:
    w = seed(any_engine, people=2)
    ingest(any_engine, [sg_event(w, 0, "dropped", 1, reason=reason)])
    assert _run(any_engine) == 1
    # The message was not failed: the address is the cause, and it is suppressed.
    assert _state(any_engine, 0) == (suppression, status, [("sent", None), planned])
    assert _state(any_engine, 1) == (None, *UNTOUCHED)  # nobody else touched


@pytest.mark.parametrize(
    "reason",
    [
        "Recipient List over Package Quota",
        "Spam Content",
        "Invalid SMTPAPI header",
        "Something SendGrid adds next year",
    ],
)
def test_a_drop_about_our_account_suppresses_nobody_and_fails_the_message(
    any_engine: Engine, reason: str
) -> None:
    w = seed(any_engine, people=2)
    ingest(any_engine, [sg_event(w, 0, "dropped", 1, reason=reason)])
    assert _run(any_engine) == 0
    assert _state(any_engine, 0) == (
        None,
        "subscribed",
        [("failed", f"dropped: {reason}"), ("planned", None)],  # the later wave still goes
    )
    assert _state(any_engine, 1) == (None, *UNTOUCHED)
    with any_engine.connect() as c:  # the event itself is kept, raw reason and all
        raw = c.scalar(select(Event.raw).where(Event.provider_event_id == "e-dropped-0-1"))
    assert raw is not None and raw["reason"] == reason


def test_a_quota_drop_of_a_whole_wave_suppresses_nobody(any_engine: Engine) -> None:
    w = seed(any_engine, people=4)
    quota = "Recipient List over Package Quota"
    ingest(any_engine, [sg_event(w, n, "dropped", n + 1, reason=quota) for n in range(4)])
    assert _run(any_engine) == 0
    with any_engine.connect() as c:
        assert c.scalar(select(Suppression.id)) is None
        statuses = set(c.scalars(select(Supporter.status)))
    assert statuses == {"subscribed"}
    for who in range(4):
        assert _state(any_engine, who)[2][1] == ("planned", None)


def test_a_drop_without_a_reason_or_message_changes_nothing_else(any_engine: Engine) -> None:
    w = seed(any_engine, people=2)
    no_message = sg_event(w, 1, "dropped", 2, reason="Spam Content")
    del no_message["message_id"]
    ingest(any_engine, [sg_event(w, 0, "dropped", 1), no_message])
    assert _run(any_engine) == 0
    assert _state(any_engine, 0) == (
        None,
        "subscribed",
        [("failed", "dropped: no reason given"), ("planned", None)],
    )
    assert _state(any_engine, 1) == (None, *UNTOUCHED)  # no message named: none failed


def test_a_drop_never_fails_a_message_that_is_not_sent(any_engine: Engine) -> None:
    # A replayed or misdirected drop naming a planned message: it is left planned.
    w = seed(any_engine, people=1)
    event = {**sg_event(w, 0, "dropped", 1, reason="Spam Content"), "message_id": str(w.planned[0])}
    ingest(any_engine, [event])
    assert _run(any_engine) == 0
    assert _state(any_engine, 0) == (None, *UNTOUCHED)


def test_a_later_address_drop_still_suppresses_after_a_quota_drop(any_engine: Engine) -> None:
    w = seed(any_engine, people=1)
    ingest(
        any_engine,
        [
            sg_event(w, 0, "dropped", 1, reason="Recipient List over Package Quota"),
            sg_event(w, 0, "dropped", 2, reason="Bounced Address"),
        ],
    )
    assert _run(any_engine) == 1
    reason, status, messages = _state(any_engine, 0)
    assert (reason, status) == ("bounced", "bounced")
    assert messages[0][0] == "failed"


def test_deferred_is_recorded_and_never_suppresses(any_engine: Engine) -> None:
    w = seed(any_engine, people=1)
    deferred = {"response": "400 try again later", "attempt": "5"}
    ingest(any_engine, [sg_event(w, 0, "deferred", n, **deferred) for n in range(1, 6)])
    assert _run(any_engine) == 0
    assert _state(any_engine, 0) == (None, *UNTOUCHED)
    with any_engine.connect() as c:
        types = c.scalars(select(Event.event_type)).all()
    assert types == ["deferred"] * 5


def test_the_translator_keeps_reason_and_bounce_classification(any_engine: Engine) -> None:
    w = seed(any_engine, people=1)
    bounce = translate(
        sg_event(w, 0, "bounce", 1, type="bounce", bounce_classification="Invalid Address")
    )
    assert bounce.bounce_classification == "Invalid Address"
    drop = translate(
        sg_event(w, 0, "dropped", 2, reason="  bounced ADDRESS ", bounce_classification="Technical")
    )
    assert drop.event_type is EventType.DROPPED
    assert drop.drop_suppression is SuppressionReason.BOUNCED  # case and spaces ignored
    assert drop.reason == "  bounced ADDRESS "  # kept as SendGrid sent it
    assert drop.bounce_classification == "Technical"
    # Odd values become None, never an error.
    odd = translate(sg_event(w, 0, "dropped", 3, reason=7, bounce_classification=["x"]))
    assert (odd.drop_suppression, odd.reason, odd.bounce_classification) == (None, None, None)
    too_long = translate(sg_event(w, 0, "deferred", 4, bounce_classification="x" * 65))
    assert too_long.bounce_classification is None
    # A reason only counts on a dropped event: a bounce saying "Unsubscribed Address" is a bounce.
    not_drop = translate(sg_event(w, 0, "bounce", 5, type="bounce", reason="Unsubscribed Address"))
    assert not_drop.drop_suppression is None


def test_the_local_server_posts_a_given_drop_reason_and_nothing_else_for_it() -> None:
    recipient = {
        "email": "p0@example.org",
        "sg_message_id": "m0.0",
        "custom_args": {"message_id": "7"},
        "categories": [],
    }
    reason = "Recipient List over Package Quota"
    quota = Scenario.from_json({"drop_rate": 1.0, "drop_reason": reason})
    (event,) = events_for(recipient, quota, random.Random(0))
    assert (event["event"], event["reason"], event["message_id"]) == (
        "dropped",
        "Recipient List over Package Quota",
        "7",
    )
    # Without drops the seeded sequence is what it was: processed, then delivered.
    plain = events_for(recipient, Scenario.from_json({"seed": 1}), random.Random(1))
    assert [e["event"] for e in plain] == ["processed", "delivered"]
    with pytest.raises(ValueError, match="between 0 and 1"):
        Scenario.from_json({"drop_rate": 2})
