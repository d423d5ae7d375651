"""The event store: a webhook batch parsed whole, stored once per provider event id, in one
statement, under the provider it came from; on both databases (two insert paths)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from sender.core.errors import InvalidInput
from sender.core.models import Event, RejectedEvent
from sender.track.event_store import parse_batch, store_events
from sender.track.providers.sendgrid import PROVIDER

NOW = datetime(2020, 12, 1, 9, 0, tzinfo=UTC)


def sg(n: int, kind: str = "delivered", **extra: Any) -> dict[str, Any]:
    return {
        "email": f"p{n}@example.org",
        "timestamp": 1_606_800_000 + n,
        "event": kind,
        "sg_event_id": f"ev-{n}",
        **extra,
    }


def body(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


def stored(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        query = select(
            Event.provider, Event.provider_event_id, Event.event_type, Event.raw_type, Event.raw
        ).order_by(Event.provider_event_id)
        return list(connection.execute(query))


def test_a_retried_batch_is_stored_once(any_engine: Engine) -> None:
    batch = parse_batch(PROVIDER, body(sg(1), sg(2, "open")))
    first = store_events(any_engine, PROVIDER, batch, NOW)
    again = store_events(any_engine, PROVIDER, parse_batch(PROVIDER, body(sg(2), sg(3))), NOW)
    assert (first.received, first.stored, first.duplicates) == (2, 2, 0)
    assert (again.received, again.stored, again.duplicates) == (2, 1, 1)
    rows = stored(any_engine)
    assert [r.provider_event_id for r in rows] == ["ev-1", "ev-2", "ev-3"]
    assert rows[1].event_type == "opened"  # the first copy is kept, not overwritten


def test_a_duplicate_inside_one_batch_is_stored_once(any_engine: Engine) -> None:
    result = store_events(any_engine, PROVIDER, parse_batch(PROVIDER, body(sg(1), sg(1))), NOW)
    assert (result.received, result.stored) == (2, 1)


def test_rows_carry_the_provider_they_came_through(any_engine: Engine) -> None:
    other = replace(PROVIDER, name="other", action_key_prefix="ot")
    store_events(any_engine, other, parse_batch(other, body(sg(1))), NOW)
    store_events(any_engine, PROVIDER, parse_batch(PROVIDER, body(sg(2))), NOW)
    assert [r.provider for r in stored(any_engine)] == ["other", PROVIDER.name]


def test_an_unknown_event_is_stored_as_unknown_with_its_raw_form(any_engine: Engine) -> None:
    odd = sg(1, "sub_account_created", detail={"nested": [1, 2]})
    store_events(any_engine, PROVIDER, parse_batch(PROVIDER, body(odd)), NOW)
    (row,) = stored(any_engine)
    assert (row.event_type, row.raw_type, row.raw) == ("unknown", "sub_account_created", odd)


def test_an_empty_batch_touches_nothing(any_engine: Engine) -> None:
    result = store_events(any_engine, PROVIDER, parse_batch(PROVIDER, b"[]"), NOW)
    assert (result.received, result.stored) == (0, 0)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [(b"{}", "JSON array"), (b"[NaN]", "not valid JSON"), (b"[1,", "not valid JSON")],
)
def test_a_body_that_is_not_a_json_array_is_refused_whole(payload: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_batch(PROVIDER, payload)


def kept(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        query = select(
            RejectedEvent.position, RejectedEvent.kind, RejectedEvent.reason, RejectedEvent.raw
        ).order_by(RejectedEvent.position)
        return list(connection.execute(query))


def test_each_odd_event_is_kept_with_its_reason_and_the_rest_is_stored(
    any_engine: Engine,
) -> None:
    batch = [
        sg(1),
        1,
        {"sg_event_id": "no-type", "timestamp": 1_606_800_000},
        sg(2, timestamp="yesterday"),
        sg(3, note="a\u0000b"),
        sg(4, note="\ud800"),
        sg(5, "unsubscribe"),
    ]
    raw = json.dumps(batch).encode()
    result = store_events(any_engine, PROVIDER, parse_batch(PROVIDER, raw), NOW)
    assert (result.received, result.stored, result.rejected, result.duplicates) == (7, 2, 5, 0)
    assert [r.provider_event_id for r in stored(any_engine)] == ["ev-1", "ev-5"]
    rows = kept(any_engine)
    assert [(r.position, r.kind) for r in rows] == [
        (1, "not_an_object"),
        (2, "missing_type"),
        (3, "missing_timestamp"),
        (4, "invalid_text"),
        (5, "invalid_text"),
    ]
    assert rows[0].reason == "event 1: must be a JSON object"
    assert rows[1].reason == "event 2: missing or invalid event"
    assert rows[2].reason == "event 3: missing or invalid timestamp"
    assert rows[3].reason == "event 4: contains a NUL character"
    assert rows[4].reason == "event 5: contains invalid Unicode"
    # Kept whole: the raw text reads back as the event that came in.
    assert [json.loads(r.raw) for r in rows] == [batch[n] for n in (1, 2, 3, 4, 5)]
    # A redelivered copy keeps nothing twice.
    again = store_events(any_engine, PROVIDER, parse_batch(PROVIDER, raw), NOW)
    assert (again.stored, again.rejected, again.duplicates) == (0, 5, 2)
    assert len(kept(any_engine)) == 5
    assert len(stored(any_engine)) == 2


def test_a_batch_of_only_odd_events_keeps_them_all(any_engine: Engine) -> None:
    result = store_events(any_engine, PROVIDER, parse_batch(PROVIDER, b'[1, "x", null]'), NOW)
    assert (result.received, result.stored, result.rejected) == (3, 0, 3)
    assert [r.raw for r in kept(any_engine)] == ["1", '"x"', "null"]
    assert stored(any_engine) == []


def test_sqlite_stores_a_batch_in_one_statement(sqlite_engine: Engine) -> None:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(sqlite_engine, "before_cursor_execute", record)
    try:
        store_events(sqlite_engine, PROVIDER, parse_batch(PROVIDER, body(sg(1), sg(2))), NOW)
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", record)
    assert sum(s.lstrip().upper().startswith("INSERT") for s in statements) == 1


@contextmanager
def insert_statements_counted(engine: Engine) -> Iterator[Engine]:
    """A statement-level trigger on events: it fires once per INSERT statement, whatever
    the number of rows, and a sequence (outside transactions) keeps the count."""
    setup = [
        "CREATE SEQUENCE test_event_inserts",
        "CREATE FUNCTION test_count_insert() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM nextval('test_event_inserts'); RETURN NULL; END $$",
        "CREATE TRIGGER test_count_inserts AFTER INSERT ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION test_count_insert()",
    ]
    with engine.begin() as connection:
        for statement in setup:
            connection.execute(text(statement))
    try:
        yield engine
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER test_count_inserts ON events"))
            connection.execute(text("DROP FUNCTION test_count_insert()"))
            connection.execute(text("DROP SEQUENCE test_event_inserts"))


def test_postgresql_stores_a_batch_in_one_statement(pg_engine: Engine) -> None:
    events = [sg(n) for n in range(1, 1501)]  # SendGrid's batch size
    with insert_statements_counted(pg_engine):
        result = store_events(pg_engine, PROVIDER, parse_batch(PROVIDER, body(*events)), NOW)
        with pg_engine.connect() as connection:
            counted = connection.scalar(
                text(
                    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM test_event_inserts"
                )
            )
    assert (result.stored, counted) == (1500, 1)
    assert {r.provider for r in stored(pg_engine)} == {PROVIDER.name}
