"""POST /webhooks/<provider>/events, as SendGrid posts it to /webhooks/sendgrid/events:
refusals store nothing, good batches are stored once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from events_fixtures import seed, sg_event
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
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
from sender.core.models import Action, Event, Message, RejectedEvent, Supporter, Suppression
from sender.devtools.services import free_port
from sender.track.actions import has_pending_events
from sender.track.providers import sendgrid
from sender.track.providers.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["client", "signer"]

HOUR = 3600


def rejected_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(RejectedEvent)) or 0)


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
        (body_of("delivered"), "JSON array"),
    ],
)
def test_bodies_that_are_not_a_json_array_are_refused_whole(
    body: bytes, message: str, client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    response = post(client, signer, body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert stored_count(any_engine) == 0
    assert rejected_count(any_engine) == 0
    # The valid part of the batch is not lost: SendGrid's retry of a fixed batch lands.
    assert post(client, signer, body_of(GOOD)).status_code == 200
    assert stored_count(any_engine) == 3


# --- per-event tolerance: odd events kept, the rest stored, 2xx (issue 12) -----------


def _without(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in keys}


def test_odd_events_are_kept_and_the_unsubscribe_beside_them_applies_at_once(
    client: FlaskClient, signer: Signer, any_engine: Engine
) -> None:
    w = seed(any_engine, people=3)
    unsubscribe = sg_event(w, 0, "unsubscribe", 1)
    # Shapes from SendGrid's Event Webhook reference (an array of objects with `event`,
    # `timestamp`, `sg_event_id`); the odd ones are what issue 12 lists as arriving:
    legacy = _without(sg_event(w, 1, "delivered", 2), "sg_event_id")  # older payloads
    long_id = {**sg_event(w, 1, "open", 3, sg_machine_open=False), "sg_event_id": "L" * 180}
    string_ts = {**sg_event(w, 2, "delivered", 4), "timestamp": "1606813204"}
    ms_ts = {**sg_event(w, 2, "open", 5, sg_machine_open=True), "timestamp": 1_606_813_205_000}
    odd = [
        "delivered",  # not an object
        _without(sg_event(w, 2, "bounce", 6), "event"),  # no type
        {**sg_event(w, 2, "bounce", 7), "timestamp": "yesterday"},  # no usable timestamp
        {**sg_event(w, 2, "bounce", 8), "reason": "nul \u0000 byte"},  # jsonb refuses NUL
        {**sg_event(w, 2, "bounce", 9), "reason": "\ud800"},  # a lone surrogate
    ]
    batch = [odd[0], unsubscribe, legacy, long_id, odd[1], string_ts, ms_ts, *odd[2:]]
    body = json.dumps(batch).encode("utf-8", "surrogatepass")
    response = post(client, signer, body)
    assert response.status_code == 200
    assert response.get_json() == {"received": 10, "stored": 5, "rejected": 5}
    with any_engine.connect() as connection:
        events = connection.execute(select(Event.raw_type, Event.provider_event_id)).all()
        kept = connection.execute(
            select(RejectedEvent.kind, RejectedEvent.reason).order_by(RejectedEvent.position)
        ).all()
        status = connection.scalar(select(Supporter.status).where(Supporter.id == w.supporters[0]))
        suppressed = connection.execute(select(Suppression.email_hash, Suppression.reason)).all()
        actions = connection.execute(select(Action.kind, Action.dedupe_key)).all()
    assert sorted(e.raw_type for e in events) == [
        "delivered",
        "delivered",
        "open",
        "open",
        "unsubscribe",
    ]
    ids = {e.provider_event_id for e in events}
    assert sendgrid.event_id(legacy) in ids and sendgrid.event_id(long_id) in ids
    assert [k.kind for k in kept] == [
        "not_an_object",
        "missing_type",
        "missing_timestamp",
        "invalid_text",
        "invalid_text",
    ]
    assert [k.reason.split(":")[0] for k in kept] == [f"event {n}" for n in (0, 4, 7, 8, 9)]
    assert status == "unsubscribed"
    assert suppressed == [(email_hash("p0@example.org"), "unsubscribed")]
    # Odd events never become actions; the two opens do, once each.
    assert sorted(a.kind for a in actions) == ["opened", "opened_machine"]
    # SendGrid delivers at least once: the same batch again changes nothing.
    again = post(client, signer, body)
    assert again.get_json() == {"received": 10, "stored": 0, "rejected": 5}
    assert stored_count(any_engine) == 5
    assert rejected_count(any_engine) == 5
    with any_engine.connect() as connection:
        assert len(connection.execute(select(Action.id)).all()) == 2
        assert len(connection.execute(select(Suppression.id)).all()) == 1


def test_a_batch_the_database_cannot_take_is_503_so_sendgrid_retries(
    signer: Signer, tmp_path: Path, any_engine: Engine
) -> None:
    from sender.core import db

    path = tmp_path / "gone.db"
    gone = db.get_engine(f"sqlite:///{path}")  # never migrated: no events table
    app = app_for(gone, signer)
    body = body_of(GOOD)
    response = app.test_client().post(URL, data=body, headers=signer.headers(body))
    assert response.status_code == 503
    assert "retry" in response.get_json()["error"]
    # The same batch, retried once the database is back, lands whole.
    retried = app_for(any_engine, signer).test_client()
    assert retried.post(URL, data=body, headers=signer.headers(body)).get_json() == {
        "received": 3,
        "stored": 3,
    }


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


def test_a_batch_stored_while_redis_is_down_is_200_and_waits_for_the_tick(
    any_engine: Engine, signer: Signer
) -> None:
    # A port nothing listens on: the processing task cannot be queued.
    app = app_for(any_engine, signer, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body = body_of(GOOD)
    with app.test_client() as down:
        response = post(down, signer, body)
        again = post(down, signer, body)  # SendGrid's retry, had we answered 5xx
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"received": 3, "stored": 3}
    assert again.get_json() == {"received": 3, "stored": 0}
    with any_engine.connect() as connection:
        pending = connection.scalars(select(Event.processed_at)).all()
    assert pending == [None, None, None]  # stored once, left for the tick's sweep
    assert has_pending_events(any_engine)
