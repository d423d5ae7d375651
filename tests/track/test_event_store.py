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
from sender.core.models import Event
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
    [
        (b"{}", "JSON array"),
        (b"[1]", "event 0: must be a JSON object"),
        (body(sg(1), {"event": "open"}), "event 1: missing or invalid sg_event_id, timestamp"),
        (b"[NaN]", "not valid JSON"),
        (body(sg(1, note="a\u0000b")), "NUL character"),
    ],
)
def test_a_bad_batch_is_refused_whole(payload: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_batch(PROVIDER, payload)


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
