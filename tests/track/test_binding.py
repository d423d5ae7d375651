"""sender.track.binding: an event binds to a message only when everything agrees."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from events_fixtures import seed, sg_event
from sqlalchemy import Engine
from sqlalchemy import event as sa_event

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.vocabulary import EventType, RejectionKind
from sender.track.binding import ADDRESS_ONLY, SentMessage, bind, sent_messages
from sender.track.providers.base import NormalisedEvent
from sender.track.providers.sendgrid import translate

OURS = "our-installation"
SENT = {
    7: SentMessage(7, 70, 1, 2, "en", email_hash("ana@example.org"), "key-7"),
    8: SentMessage(8, 80, 1, 2, "en", email_hash("ben@example.org"), None),  # batch gone
}
GOOD = NormalisedEvent(
    provider="sendgrid",
    provider_event_id="e1",
    event_type=EventType.UNSUBSCRIBED,
    raw_type="unsubscribe",
    occurred_at=datetime(2020, 12, 1, tzinfo=UTC),
    email_hash=email_hash("ana@example.org"),
    message_id=7,
    supporter_id=70,
    batch_key="key-7",
    installation=OURS,
)


def test_an_event_that_agrees_on_everything_is_bound_to_its_message() -> None:
    assert bind(GOOD, SENT, OURS).message == SENT[7]
    # Mail sent before the installation arg existed still binds by the rest.
    assert bind(replace(GOOD, installation=None), SENT, OURS).message == SENT[7]
    assert bind(replace(GOOD, supporter_id=None), SENT, OURS).message == SENT[7]


@pytest.mark.parametrize(
    ("change", "kind", "reason"),
    [
        ({"installation": "theirs"}, RejectionKind.FOREIGN, "another installation"),
        ({"installation": ""}, RejectionKind.FOREIGN, "another installation"),
        ({"message_id": 9}, RejectionKind.MISMATCHED, "no message we sent"),
        ({"email_hash": email_hash("x@example.org")}, RejectionKind.MISMATCHED, "recipient"),
        ({"email_hash": None}, RejectionKind.MISMATCHED, "recipient"),
        ({"batch_key": "key-8"}, RejectionKind.MISMATCHED, "send_key"),
        ({"batch_key": None}, RejectionKind.MISMATCHED, "send_key"),
        ({"supporter_id": 80}, RejectionKind.MISMATCHED, "supporter_id is not"),
        ({"message_id": None}, RejectionKind.MISMATCHED, "supporter_id without a message_id"),
        (
            {"message_id": 8, "email_hash": email_hash("ben@example.org"), "supporter_id": 80},
            RejectionKind.MISMATCHED,
            "send_key",
        ),
    ],
)
def test_any_disagreement_refuses_the_event(
    change: dict[str, object], kind: RejectionKind, reason: str
) -> None:
    binding = bind(replace(GOOD, **change), SENT, OURS)  # type: ignore[arg-type]
    assert binding.message is None
    assert binding.refusal is not None
    assert binding.refusal.kind is kind and reason in binding.refusal.reason


def test_an_event_naming_nobody_is_about_its_address_only() -> None:
    bare = replace(GOOD, message_id=None, supporter_id=None, batch_key=None, installation=None)
    assert bind(bare, SENT, OURS) is ADDRESS_ONLY


def test_the_installation_arg_is_read_as_sent_and_odd_values_match_nobody() -> None:
    raw = {"event": "open", "timestamp": 1_606_813_200, "email": "a@example.org"}
    assert translate(raw).installation is None
    assert translate({**raw, "installation_id": "abc"}).installation == "abc"
    assert translate({**raw, "installation_id": 5}).installation == "?"
    assert translate({**raw, "installation_id": "x" * 65}).installation == "?"


def test_two_installations_get_different_ids_unless_configured() -> None:
    one, two = Settings(secret_key="a" * 40), Settings(secret_key="b" * 40)
    assert one.installation != two.installation
    assert "a" * 8 not in one.installation  # derived, never the secret itself
    assert Settings(secret_key="a" * 40, installation_id="eu-1").installation == "eu-1"


def test_sent_messages_reads_hash_and_send_key_in_one_query(any_engine: Engine) -> None:
    w = seed(any_engine, people=2)
    events = [translate(sg_event(w, n, "open", n)) for n in range(2)]
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    sa_event.listen(any_engine, "before_cursor_execute", seen)
    try:
        with session_scope(any_engine) as session:
            found = sent_messages(session, [*events, *events])
    finally:
        sa_event.remove(any_engine, "before_cursor_execute", seen)
    assert len([s for s in statements if "FROM messages" in s]) == 1
    assert {m.email_hash for m in found.values()} == {
        email_hash("p0@example.org"),
        email_hash("p1@example.org"),
    }
    assert {m.send_key for m in found.values()} == {w.send_key}
