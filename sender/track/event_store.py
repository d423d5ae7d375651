"""Durable, deduplicated storage of raw provider events.

A webhook batch is parsed once, checked whole, then stored in one statement:
either every new event of the batch is stored or none is. Providers deliver
each event at least once (often several times), so storage is idempotent on
the provider's event id (INSERT ... ON CONFLICT DO NOTHING). On PostgreSQL the batch
goes as one array per column into `INSERT ... SELECT FROM unnest(...)`: one
statement, a dozen parameters, no per-row binding and no staging table.

The body is a JSON array of objects. Each must carry what its provider's
`stored_event` requires (for SendGrid: `event`, `sg_event_id` and `timestamp`),
else the whole batch is refused. Everything else is optional and kept raw.

The request path does only this: one orjson parse, the stored columns per
event (the provider's `stored_event`) and one re-serialisation of each event
for the raw column. Turning events into actions happens later, in a task.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sender.core.errors import InvalidInput
from sender.core.models import Event
from sender.track.providers.base import Provider, StoredFields

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
# Fixed column names and types only, never input: one array parameter per varying column
# and one scalar (the provider's name) for the whole batch.
_UNNEST = (
    "INSERT INTO events (provider, provider_event_id, event_type, raw_type, email_hash, "
    "message_id, supporter_id, case_id, wave_id, batch_key, occurred_at, received_at, raw) "
    "SELECT CAST(%(provider)s AS text), u.id, u.type, u.raw_type, u.hash, u.message, "
    "u.supporter, u.case_id, u.wave, u.batch_key, u.occurred, "
    "CAST(%(received)b AS timestamptz), CAST(u.raw AS jsonb) "
    "FROM unnest(CAST(%(ids)b AS text[]), CAST(%(types)b AS text[]), "
    "CAST(%(raw_types)b AS text[]), CAST(%(hashes)b AS text[]), CAST(%(messages)b AS int[]), "
    "CAST(%(supporters)b AS int[]), "
    "CAST(%(cases)b AS int[]), CAST(%(waves)b AS int[]), CAST(%(batch_keys)b AS text[]), "
    "CAST(%(occurred)b AS timestamptz[]), CAST(%(raws)b AS text[])) "
    "AS u(id, type, raw_type, hash, message, supporter, case_id, wave, batch_key, occurred, raw) "
    "ON CONFLICT (provider_event_id) DO NOTHING"
)
# Every digit becomes "0" and every other byte a space: a C-speed scan for digit runs.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19
_ARRAY_NAMES = (
    "ids",
    "types",
    "raw_types",
    "hashes",
    "messages",
    "supporters",
    "cases",
    "waves",
    "batch_keys",
    "occurred",
)


@dataclass(frozen=True)
class IncomingEvent:
    fields: StoredFields
    raw_json: str  # the event re-serialised once, as stored

    @property
    def raw(self) -> dict[str, Any]:
        # The stdlib: raw_json may hold integers past orjson's 64 bits.
        parsed: dict[str, Any] = json.loads(self.raw_json)
        return parsed


@dataclass(frozen=True)
class StoreResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def parse_batch(provider: Provider, body: bytes) -> list[IncomingEvent]:
    """Every event of a webhook body, or InvalidInput naming the first problem."""
    data = _loads(body)
    if not isinstance(data, list):
        raise InvalidInput(f"body must be a JSON array of events, not {type(data).__name__}")
    stored_event = provider.stored_event
    return [_incoming(stored_event, item, position) for position, item in enumerate(data)]


def _loads(body: bytes) -> Any:
    # orjson reads integers past 64 bits as floats (below -2**63 that is 19 digits);
    # the stdlib keeps them exact. Any run of 19 digits, even inside a string, sends
    # the body to the stdlib.
    if _LONG_DIGIT_RUN not in body.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # orjson is stricter (lone surrogates, deep nesting): the stdlib decides
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidInput(f"body is not valid JSON: {error}") from error


def _incoming(
    stored_event: Callable[[Mapping[str, Any], int], StoredFields], item: object, position: int
) -> IncomingEvent:
    if not isinstance(item, dict):
        raise InvalidInput(f"event {position}: must be a JSON object")
    return IncomingEvent(stored_event(item, position), _raw_json(item, position))


def _raw_json(item: dict[str, Any], position: int) -> str:
    try:
        raw_json = orjson.dumps(item).decode()
    except orjson.JSONEncodeError:
        # Integers past 64 bits (kept as numbers) or lone surrogates (refused below).
        raw_json = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    # PostgreSQL's jsonb holds neither NUL characters nor unpaired surrogates.
    if "\\u0000" in raw_json:
        raise InvalidInput(f"event {position}: contains a NUL character")
    try:
        raw_json.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(f"event {position}: contains invalid Unicode") from error
    return raw_json


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def store_events(
    engine: Engine, provider: Provider, batch: Sequence[IncomingEvent], received_at: datetime
) -> StoreResult:
    """Store the events not seen before, all in one transaction; returns how many were new."""
    if not batch:
        return StoreResult(0, 0)
    if engine.dialect.name == "postgresql":
        stored = _insert_unnest(engine, provider.name, batch, received_at)
    else:
        stored = _insert_ignoring_duplicates(engine, provider.name, batch, received_at)
    return StoreResult(received=len(batch), stored=stored)


def _insert_unnest(
    engine: Engine, provider: str, batch: Sequence[IncomingEvent], received_at: datetime
) -> int:
    # One list per column: zip(*rows) transposes in C.
    columns = list(zip(*(item.fields for item in batch), strict=True))
    params: dict[str, Any] = dict(zip(_ARRAY_NAMES, map(list, columns), strict=True))
    params["raws"] = [item.raw_json for item in batch]
    params["received"] = received_at
    params["provider"] = provider
    with engine.begin() as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            # Binary arrays: text-format array dumping escapes every element in Python.
            cursor.execute(_UNNEST, params)
            stored = int(cursor.rowcount)
        finally:
            cursor.close()
    return stored


def _row(provider: str, item: IncomingEvent, received_at: datetime) -> dict[str, Any]:
    f = item.fields
    values = (provider, *f[:-1], f.occurred_at, received_at, item.raw)
    return dict(zip(_COLUMNS, values, strict=True))


def _insert_ignoring_duplicates(
    engine: Engine, provider: str, batch: Sequence[IncomingEvent], received_at: datetime
) -> int:
    rows = [_row(provider, item, received_at) for item in batch]
    statement = sqlite_insert(Event).on_conflict_do_nothing(index_elements=["provider_event_id"])
    with engine.begin() as connection:
        before = connection.execute(text("SELECT total_changes()")).scalar_one()
        connection.execute(statement, rows)
        after = connection.execute(text("SELECT total_changes()")).scalar_one()
    return int(after) - int(before)
