"""POST /webhooks/<provider>/events, as SendGrid posts it to /webhooks/sendgrid/events:
refusals store nothing, good batches are stored once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from events_fixtures import seed, sg_event
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from webhook_fixtures import (
    URL,
    Signer,
    app_for,
    body_of,
    client,
    event,
    signer,
    stored_count,
)

from sender.core.addresses import email_hash
from sender.core.models import Action, Event, Message, Suppression
from sender.track.providers import sendgrid
from sender.track.providers.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["client", "signer"]

HOUR = 3600
GOOD = [event(1), event(2, "open", sg_machine_open=False), event(3, "bounce", type="bounce")]


def post(client: FlaskClient, signer: Signer, body: bytes, **kw: Any) -> Any:
    return client.post(URL, data=body, headers=signer.headers(body, **kw))


def test_good_batch_is_stored_and_processed(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    response = post(client, signer, body_of(GOOD))
    assert response.status_code == 200
    assert response.get_json() == {"received": 3, "stored": 3}
    with any_engine.connect() as connection:
        rows = connection.execute(select(Event.event_type, Event.processed_at)).all()
        opens = connection.scalars(select(Action.kind)).all()
    assert sorted(r.event_type for r in rows) == ["bounced", "delivered", "opened"]
    assert all(r.processed_at is not None for r in rows)  # inline: no Redis configured
    assert opens == ["opened"]


def test_same_batch_five_times_is_stored_once(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    body = body_of(GOOD)
    answers = [post(client, signer, body).get_json()["stored"] for _ in range(5)]
    assert answers == [3, 0, 0, 0, 0]
    assert stored_count(any_engine) == 3
    with any_engine.connect() as connection:
        assert len(connection.scalars(select(Action.id)).all()) == 1


def test_duplicates_inside_one_batch_are_stored_once(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    response = post(client, signer, body_of([event(1), event(1), event(2)]))
    assert response.get_json() == {"received": 3, "stored": 2}
    assert stored_count(any_engine) == 2


def test_a_provider_the_registry_does_not_know_is_404_and_stores_nothing(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    body = body_of(GOOD)
    response = client.post("/webhooks/mailgun/events", data=body, headers=signer.headers(body))
    assert response.status_code == 404
    assert stored_count(any_engine) == 0


def test_events_are_stored_under_the_provider_of_the_url(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    assert post(client, signer, body_of(GOOD)).status_code == 200
    with any_engine.connect() as connection:
        assert set(connection.scalars(select(Event.provider))) == {sendgrid.NAME}
        assert set(connection.scalars(select(Action.source))) == {sendgrid.NAME}


def test_unknown_event_type_is_kept(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    body = body_of([event(7, "brand_new_thing", extra_field={"a": 1})])
    assert post(client, signer, body).status_code == 200
    with any_engine.connect() as connection:
        row = connection.execute(select(Event.event_type, Event.raw_type, Event.raw)).one()
    assert (row.event_type, row.raw_type) == ("unknown", "brand_new_thing")
    assert row.raw["extra_field"] == {"a": 1}


def test_custom_args_are_stored_in_columns(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    args = {"message_id": "11", "wave_id": "12", "case_id": "13", "supporter_id": "14"}
    body = body_of([event(1, "processed", send_key="batch-abc", **args)])
    assert post(client, signer, body).status_code == 200
    with any_engine.connect() as connection:
        row = connection.execute(select(Event)).one()
    assert (row.message_id, row.wave_id, row.case_id, row.supporter_id) == (11, 12, 13, 14)
    assert (row.batch_key, row.event_type) == ("batch-abc", "queued")
    assert row.email_hash is not None and len(row.email_hash) == 64


# --- refusals: 403, nothing stored -------------------------------------------------


def _tampered(body: bytes) -> bytes:
    return body.replace(b"person1@", b"person9@")


@pytest.mark.parametrize(
    "case",
    [
        "altered_body",
        "altered_old_body",
        "forged_signature",
        "wrong_key",
        "stale",
        "future",
        "no_signature",
        "no_timestamp",
        "no_headers",
        "garbage_signature",
        "odd_timestamp",
    ],
)
def test_refused_requests_store_nothing(
    case: str, client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    body = body_of(GOOD)
    headers = signer.headers(body)
    now = int(time.time())
    if case == "altered_body":
        body = _tampered(body)
    elif case == "forged_signature":
        headers[SIGNATURE_HEADER] = signer.headers(b"[]")[SIGNATURE_HEADER]
    elif case == "wrong_key":
        headers = Signer.generate().headers(body)
    elif case == "stale":
        headers = signer.headers(body, timestamp=now - 25 * HOUR)
    elif case == "future":
        headers = signer.headers(body, timestamp=now + HOUR)
    elif case == "altered_old_body":
        headers = signer.headers(body, timestamp=now - 23 * HOUR)
        body = _tampered(body)
    elif case == "no_signature":
        del headers[SIGNATURE_HEADER]
    elif case == "no_timestamp":
        del headers[TIMESTAMP_HEADER]
    elif case == "no_headers":
        headers = {"Content-Type": "application/json"}
    elif case == "garbage_signature":
        headers[SIGNATURE_HEADER] = "not base64 at all!"
    elif case == "odd_timestamp":
        headers[TIMESTAMP_HEADER] = headers[TIMESTAMP_HEADER] + ".5"
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"error": "signature refused"}
    assert stored_count(any_engine) == 0


def test_timestamp_inside_tolerance_is_accepted(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    response = post(client, signer, body_of(GOOD), timestamp=int(time.time()) - 590)
    assert response.status_code == 200
    assert stored_count(any_engine) == 3


def test_batch_signed_23_hours_ago_is_accepted_and_stored(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    # SendGrid retries for 24 h: the last retries of an outage arrive this old.
    response = post(client, signer, body_of(GOOD), timestamp=int(time.time()) - 23 * HOUR)
    assert response.status_code == 200
    assert response.get_json() == {"received": 3, "stored": 3}
    assert stored_count(any_engine) == 3


def test_25_hours_is_refused_and_a_fresh_copy_still_lands(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    body = body_of(GOOD)
    old = post(client, signer, body, timestamp=int(time.time()) - 25 * HOUR)
    assert old.status_code == 403
    assert stored_count(any_engine) == 0
    assert post(client, signer, body).get_json() == {"received": 3, "stored": 3}


def test_replayed_old_signed_batch_changes_nothing(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    # An outage's batch, signed 20 h ago, delivered twice (SendGrid's retry and a
    # replay by anyone who kept the request): each event once, each action once.
    w = seed(any_engine, people=2)
    batch = [
        sg_event(w, 0, "unsubscribe", 1),
        sg_event(w, 1, "open", 2, sg_machine_open=False),
        sg_event(w, 1, "delivered", 3),
    ]
    body = body_of(batch)
    headers = signer.headers(body, timestamp=int(time.time()) - 20 * HOUR)
    answers = [client.post(URL, data=body, headers=headers).get_json() for _ in range(2)]
    assert answers == [{"received": 3, "stored": 3}, {"received": 3, "stored": 0}]
    assert stored_count(any_engine) == 3
    with any_engine.connect() as connection:
        actions = connection.execute(select(Action.kind, Action.supporter_id)).all()
        suppressed = connection.execute(select(Suppression.email_hash, Suppression.reason)).all()
        planned = connection.scalars(
            select(Message.status).where(Message.id.in_(w.planned)).order_by(Message.id)
        ).all()
    assert sorted(a.kind for a in actions) == ["opened"]
    assert [(s.email_hash, s.reason) for s in suppressed] == [
        (email_hash("p0@example.org"), "unsubscribed")
    ]
    assert list(planned) == ["cancelled", "planned"]  # p1's later mail is untouched


def test_unconfigured_key_refuses_everything(sqlite_engine: Engine, signer: Signer) -> None:
    app = app_for(sqlite_engine, signer)
    app.extensions["campaign.settings"] = app.extensions["campaign.settings"].model_copy(
        update={"sendgrid_webhook_public_key": None}
    )
    body = body_of(GOOD)
    response = app.test_client().post(URL, data=body, headers=signer.headers(body))
    assert response.status_code == 403
    assert stored_count(sqlite_engine) == 0


# --- bad bodies: 400/413, nothing partly stored ------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'[{"event": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[NaN]", "not valid JSON"),
        (body_of({"events": GOOD}), "JSON array"),
        (body_of([*GOOD, "delivered"]), "event 3: must be a JSON object"),
        (
            body_of([*GOOD, {k: v for k, v in event(4).items() if k != "sg_event_id"}]),
            "sg_event_id",
        ),
        (body_of([*GOOD, {k: v for k, v in event(4).items() if k != "event"}]), "event"),
        (body_of([*GOOD, {**event(4), "timestamp": "yesterday"}]), "timestamp"),
        (body_of([*GOOD, {**event(4), "sg_event_id": "x" * 129}]), "sg_event_id"),
        (body_of([*GOOD, {**event(4), "reason": "nul \u0000 byte"}]), "NUL"),
        (body_of([*GOOD, {**event(4), "reason": "\ud800"}]), "Unicode"),
    ],
)
def test_bad_bodies_are_refused_whole(
    body: bytes, message: str, client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    response = post(client, signer, body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert stored_count(any_engine) == 0
    # The valid part of the batch is not lost: SendGrid's retry of a fixed batch lands.
    assert post(client, signer, body_of(GOOD)).status_code == 200
    assert stored_count(any_engine) == 3


def test_ten_megabyte_body_is_refused(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    padding = "x" * 1000
    events = [event(n, reason=padding) for n in range(10_500)]
    body = body_of(events)
    assert len(body) > 10_000_000
    response = post(client, signer, body)
    assert response.status_code == 413
    assert stored_count(any_engine) == 0
    assert post(client, signer, body_of(events[:50])).get_json()["stored"] == 50


def test_sendgrid_sized_batch_is_accepted(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    events = [event(n, reason="y" * 300) for n in range(2000)]
    body = body_of(events)
    assert 700_000 < len(body) < 1_000_000
    assert post(client, signer, body).get_json() == {"received": 2000, "stored": 2000}
    assert stored_count(any_engine) == 2000


def test_values_the_fast_parser_refuses_are_still_judged_by_json_itself(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    # orjson refuses integers past 64 bits; they are valid JSON and are kept raw.
    huge = 2**70
    body = body_of([*GOOD, {**event(4), "asm_group_id": huge}])
    assert post(client, signer, body).get_json() == {"received": 4, "stored": 4}
    with any_engine.connect() as connection:
        raws = connection.scalars(select(Event.raw)).all()
    assert any(raw.get("asm_group_id") == huge for raw in raws)


def test_nesting_past_the_fast_parsers_limit_is_refused_whole(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = (
        body_of(GOOD)[:-1]
        + b',{"event":"open","sg_event_id":"d","timestamp":1,"x":'
        + (deep.encode() + b"}]")
    )
    response = post(client, signer, body)
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["error"]
    assert stored_count(any_engine) == 0
    assert post(client, signer, body_of(GOOD)).get_json()["stored"] == 3


# --- fuzz: signed, random shapes and values -> never a 500 ---------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["open", "click", "bounce", "spamreport", "dropped"]) | _scalars,
        "sg_event_id": st.text(min_size=0, max_size=140) | _scalars,
        "timestamp": st.integers(-10, 10**13) | st.floats() | _scalars,
        "email": st.emails() | _scalars,
        "message_id": st.integers(-5, 2**40).map(str) | _scalars,
        "case_id": _scalars,
        "send_key": _scalars,
        "url": _scalars,
        "sg_machine_open": _scalars,
        "type": st.sampled_from(["bounce", "blocked"]) | _scalars,
        "extra": _json,
    },
)
_payload = st.lists(_event_like, max_size=5) | _json


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sender.core import db

    engine = db.get_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    db.upgrade(engine)
    fuzz_signer = Signer.generate()
    return app_for(engine, fuzz_signer).test_client(), fuzz_signer


@settings(
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(payload=_payload)
def test_fuzzed_signed_payloads_never_fail(fuzz_client: Any, payload: Any) -> None:
    test_client, fuzz_signer = fuzz_client
    body = json.dumps(payload, allow_nan=True).encode("utf-8", "surrogatepass")
    response = test_client.post(URL, data=body, headers=fuzz_signer.headers(body))
    assert response.status_code in (200, 400), response.get_data(as_text=True)
