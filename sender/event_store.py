"""Durable, deduplicated storage of raw provider events.

A webhook batch is parsed once, checked whole, then stored in one statement:
either every new event of the batch is stored or none is. SendGrid delivers
each event at least once (often several times), so storage is idempotent on
`sg_event_id` (INSERT ... ON CONFLICT DO NOTHING). On PostgreSQL the rows are
COPYed into a temporary staging table first: far faster than INSERT VALUES.

Required per event (else the whole batch is refused): a JSON object with
`event` (string, ≤ 64 chars), `sg_event_id` (string, ≤ 128 chars) and
`timestamp` (Unix seconds, number). Everything else is optional and kept raw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sender.errors import InvalidInput
from sender.events import NormalisedEvent, require_complete, translate
from sender.models import Event

_COLUMNS = (
    "provider",
    "provider_event_id",
    "event_type",
    "raw_type",
    "email_hash",
    "message_id",
    "supporter_id",
    "case_id",
    "wave_id",
    "batch_key",
    "occurred_at",
    "received_at",
    "raw",
)
_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS event_staging (
    provider text, provider_event_id text, event_type text, raw_type text, email_hash text,
    message_id integer, supporter_id integer, case_id integer, wave_id integer,
    batch_key text, occurred_at timestamptz, received_at timestamptz, raw jsonb
) ON COMMIT DELETE ROWS
"""
_COLUMN_LIST = ", ".join(_COLUMNS)
# Fixed column names only, never input.
_MERGE = (
    f"INSERT INTO events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM event_staging "  # noqa: S608
    "ON CONFLICT (provider_event_id) DO NOTHING"
)


@dataclass(frozen=True)
class IncomingEvent:
    event: NormalisedEvent
    raw_json: str  # the event re-serialised once, as stored


@dataclass(frozen=True)
class StoreResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def parse_batch(body: bytes) -> list[IncomingEvent]:
    """Every event of a webhook body, or InvalidInput naming the first problem."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidInput(f"body is not valid JSON: {error}") from error
    if not isinstance(data, list):
        raise InvalidInput(f"body must be a JSON array of events, not {type(data).__name__}")
    return [_incoming(item, position) for position, item in enumerate(data)]


def _incoming(item: object, position: int) -> IncomingEvent:
    if not isinstance(item, dict):
        raise InvalidInput(f"event {position}: must be a JSON object")
    event = require_complete(translate(item), position)
    raw_json = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    # PostgreSQL's jsonb holds neither NUL characters nor unpaired surrogates.
    if "\\u0000" in raw_json:
        raise InvalidInput(f"event {position}: contains a NUL character")
    try:
        raw_json.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(f"event {position}: contains invalid Unicode") from error
    return IncomingEvent(event, raw_json)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def store_events(
    engine: Engine, batch: Sequence[IncomingEvent], received_at: datetime
) -> StoreResult:
    """Store the events not seen before, all in one transaction; returns how many were new."""
    if not batch:
        return StoreResult(0, 0)
    if engine.dialect.name == "postgresql":
        stored = _copy_and_merge(engine, batch, received_at)
    else:
        stored = _insert_ignoring_duplicates(engine, batch, received_at)
    return StoreResult(received=len(batch), stored=stored)


def _row(item: IncomingEvent, received_at: datetime) -> tuple[Any, ...]:
    e = item.event
    return (
        "sendgrid",
        e.provider_event_id,
        e.event_type.value,
        e.raw_type,
        e.email_hash,
        e.message_id,
        e.supporter_id,
        e.case_id,
        e.wave_id,
        e.batch_key,
        e.occurred_at,
        received_at,
        item.raw_json,
    )


def _copy_and_merge(engine: Engine, batch: Sequence[IncomingEvent], received_at: datetime) -> int:
    with engine.begin() as connection:
        connection.execute(text(_STAGING))
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY event_staging ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for item in batch:
                    copy.write_row(_row(item, received_at))
            cursor.execute(_MERGE)
            stored = int(cursor.rowcount)
        finally:
            cursor.close()
    return stored


def _insert_ignoring_duplicates(
    engine: Engine, batch: Sequence[IncomingEvent], received_at: datetime
) -> int:
    rows = [dict(zip(_COLUMNS, _row(item, received_at), strict=True)) for item in batch]
    for row in rows:
        row["raw"] = json.loads(row["raw"])
    statement = sqlite_insert(Event).on_conflict_do_nothing(index_elements=["provider_event_id"])
    with engine.begin() as connection:
        before = connection.execute(text("SELECT total_changes()")).scalar_one()
        connection.execute(statement, rows)
        after = connection.execute(text("SELECT total_changes()")).scalar_one()
    return int(after) - int(before)
