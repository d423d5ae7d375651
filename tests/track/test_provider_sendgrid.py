"""SendGrid events in the project's vocabulary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sender.core.addresses import email_hash, normalise_email
from sender.core.errors import InvalidInput
from sender.core.vocabulary import EventType, RejectionKind
from sender.track.actions import event_key
from sender.track.event_store import parse_batch
from sender.track.providers.base import Rejection
from sender.track.providers.sendgrid import (
    CONTENT_ID_PREFIX,
    LONG_ID_PREFIX,
    MAX_EVENT_ID,
    PROVIDER,
    SENDGRID_TYPES,
    event_id,
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
    assert missing_fields(stored_fields(raw_event)) == ["timestamp"]
    assert PROVIDER.stored_event(raw_event, 4) == Rejection(
        RejectionKind.MISSING_TIMESTAMP, "event 4: missing or invalid timestamp"
    )
    assert PROVIDER.stored_event({"timestamp": 1}, 2) == Rejection(
        RejectionKind.MISSING_TYPE, "event 2: missing or invalid event"
    )


def test_opens_and_bounces_keep_their_detail() -> None:
    machine = translate({"event": "open", "sg_machine_open": True})
    human = translate({"event": "open", "sg_machine_open": "true"})
    assert machine.machine_open and not human.machine_open
    assert translate({"event": "bounce", "type": "bounce"}).hard_bounce
    assert not translate({"event": "bounce", "type": "blocked"}).hard_bounce


@pytest.mark.parametrize(
    "value",
    [True, "yesterday", "", "1606000000x", float("nan"), float("inf"), -1, 10**15, None, [1]],
)
def test_odd_timestamps_become_missing(value: object) -> None:
    assert translate({"timestamp": value}).occurred_at is None


SECOND = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1_700_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, SECOND),
        # Float seconds: SendGrid's reference shows integers, older integrations floats.
        (1_700_000_000.25, SECOND + timedelta(milliseconds=250)),
        # A string: seen from integrations that re-post events (issue 12).
        ("1700000000", SECOND),
        (" 1700000000.5 ", SECOND + timedelta(milliseconds=500)),
        # Milliseconds, as JavaScript's Date.now() gives them.
        (1_700_000_000_123, SECOND + timedelta(milliseconds=123)),
        ("1700000000123", SECOND + timedelta(milliseconds=123)),
        ("2023-11-14T22:13:20Z", SECOND),
        ("2023-11-14T23:13:20+01:00", SECOND),
    ],
)
def test_timestamps_in_seconds_milliseconds_floats_and_strings(
    value: object, expected: datetime
) -> None:
    occurred = translate({"event": "open", "timestamp": value}).occurred_at
    assert occurred is not None
    assert abs(occurred - expected) < timedelta(milliseconds=1)
    assert PROVIDER.stored_event({"event": "open", "timestamp": value}, 0) == stored_fields(
        {"event": "open", "timestamp": value}
    )


def test_an_id_up_to_the_column_width_is_kept_as_sent() -> None:
    given = "x" * MAX_EVENT_ID
    assert event_id({"sg_event_id": given}) == given


def test_a_long_id_is_hashed_to_a_stable_key_that_fits_the_action_key() -> None:
    # SendGrid's docs: ids "can exceed 100 characters"; no upper bound is given.
    long_id = "Wm9vTG9uZ0lk" * 30  # 360 characters
    key = event_id({"sg_event_id": long_id, "event": "open"})
    assert key == event_id({"sg_event_id": long_id, "event": "click"})  # the id alone counts
    assert key != event_id({"sg_event_id": long_id[:-1]})
    assert key.startswith(LONG_ID_PREFIX) and len(key) <= MAX_EVENT_ID
    assert len(event_key(PROVIDER, key)) <= 160  # actions.dedupe_key is String(160)


def test_an_event_without_id_gets_one_from_its_content_whatever_the_key_order() -> None:
    # Older payloads carry no sg_event_id (SendGrid's troubleshooting page posts
    # such events in its own curl example).
    legacy = {"email": "a@example.org", "timestamp": 1_337_197_600, "event": "processed"}
    reordered = dict(reversed(list(legacy.items())))
    key = event_id(legacy)
    assert key.startswith(CONTENT_ID_PREFIX) and len(key) <= MAX_EVENT_ID
    assert event_id(reordered) == key
    assert event_id({**legacy, "sg_event_id": ""}) != key  # the content differs
    assert event_id({**legacy, "timestamp": 1_337_197_601}) != key
    assert translate(legacy).provider_event_id == key
    assert event_id({**legacy, "sg_event_id": 7}) == event_id({**legacy, "sg_event_id": 7})


def test_the_made_up_id_survives_a_round_trip_through_storage() -> None:
    # Processing recomputes the id from the stored raw event: it must not change.
    legacy = {"event": "open", "timestamp": 1.5e9, "n": 2**70, "t": "é\u00e9", "z": [1, {"b": 2}]}
    (incoming,) = parse_batch(PROVIDER, json.dumps([legacy]).encode()).events
    assert translate(incoming.raw).provider_event_id == incoming.fields.provider_event_id


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
    (event,) = parse_batch(PROVIDER, body).events
    assert json.loads(event.raw_json)["n"] == number
