"""SendGrid events in the project's vocabulary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sender.core.addresses import email_hash, normalise_email
from sender.core.errors import InvalidInput
from sender.core.vocabulary import EventType
from sender.track.event_store import parse_batch
from sender.track.providers.sendgrid import (
    PROVIDER,
    SENDGRID_TYPES,
    missing_fields,
    stored_fields,
    translate,
)


@pytest.mark.parametrize(("raw", "normal"), list(SENDGRID_TYPES.items()))
def test_every_known_type_translates(raw: str, normal: EventType) -> None:
    raw_event = {"event": raw, "sg_event_id": "e1", "timestamp": 1_606_000_000}
    event = translate(raw_event)
    assert event.event_type is normal
    assert event.occurred_at == datetime(2020, 11, 21, 23, 6, 40, tzinfo=UTC)
    assert missing_fields(stored_fields(raw_event)) == []


def test_unknown_type_is_kept_not_raised() -> None:
    raw = {"event": "sub_account_created", "sg_event_id": "e2", "timestamp": 1, "x": [1]}
    event = translate(raw)
    assert event.event_type is EventType.UNKNOWN
    assert event.raw_type == "sub_account_created"
    assert event.raw == raw


def test_custom_args_and_email_are_parsed() -> None:
    raw_event = {
        "event": "click",
        "email": " Ana@Example.ORG ",
        "url": "https://act.example.org/a/tok",
        "message_id": "42",
        "wave_id": 7,
        "case_id": "x9",
        "supporter_id": "99999999999",
        "send_key": "k" * 65,
    }
    event = translate(raw_event)
    assert event.email_hash == email_hash("ana@example.org")
    assert (event.message_id, event.wave_id, event.case_id, event.supporter_id) == (
        42,
        7,
        None,
        None,
    )
    assert event.batch_key is None  # too long to be ours
    assert event.url == "https://act.example.org/a/tok"
    assert missing_fields(stored_fields(raw_event)) == ["sg_event_id", "timestamp"]
    with pytest.raises(InvalidInput, match="event 4: missing or invalid sg_event_id, timestamp"):
        PROVIDER.stored_event(raw_event, 4)


def test_opens_and_bounces_keep_their_detail() -> None:
    machine = translate({"event": "open", "sg_machine_open": True})
    human = translate({"event": "open", "sg_machine_open": "true"})
    assert machine.machine_open and not human.machine_open
    assert translate({"event": "bounce", "type": "bounce"}).hard_bounce
    assert not translate({"event": "bounce", "type": "blocked"}).hard_bounce


@pytest.mark.parametrize(
    "value", [True, "1606000000", float("nan"), float("inf"), -1, 10**15, None]
)
def test_odd_timestamps_become_missing(value: object) -> None:
    assert translate({"timestamp": value}).occurred_at is None


def test_bad_email_gives_no_hash() -> None:
    assert translate({"email": "not an address"}).email_hash is None
    assert translate({"email": ["a@b.org"]}).email_hash is None


@settings(max_examples=300, deadline=None)
@given(address=st.emails().map(str.lower))
def test_fast_hash_agrees_with_full_normalisation(address: str) -> None:
    try:
        expected = email_hash(normalise_email(address))
    except InvalidInput:
        return  # the fast path may hash an address validation refuses: it matches nothing
    assert translate({"email": address}).email_hash == expected


@pytest.mark.parametrize("number", [-9999999999999999999, 18446744073709551616, 10**30])
def test_integers_past_64_bits_stay_exact_in_the_raw_event(number: int) -> None:
    raw = {"event": "open", "email": "a@example.org", "sg_event_id": "e1", "timestamp": 1}
    body = json.dumps([{**raw, "n": number}]).encode()
    (event,) = parse_batch(PROVIDER, body)
    assert json.loads(event.raw_json)["n"] == number
