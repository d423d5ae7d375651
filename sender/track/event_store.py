"""Durable, deduplicated storage of raw provider events.

A webhook batch is parsed once, then stored in one transaction. Providers deliver
each event at least once (often several times), so storage is idempotent on
the provider's event id (INSERT ... ON CONFLICT DO NOTHING). On PostgreSQL the batch
goes as one array per column into `INSERT ... SELECT FROM unnest(...)`: one
statement, a dozen parameters, no per-row binding and no staging table.

The body is a JSON array. Only a body that is not one is refused whole. Each
item is judged alone (issue 12): an object that has what its provider's
`stored_event` requires (for SendGrid: `event` and a usable `timestamp`; the id
is made up when missing) is stored as an event; anything else (not an object,
no type, no timestamp, text jsonb cannot hold) is kept raw with the reason in
`rejected_events` (sender.track.rejected_events), in the same transaction.
One odd event therefore never costs the unsubscribes that share its batch.

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
from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sender.core.errors import InvalidInput
from sender.core.models import Event
from sender.core.vocabulary import RejectionKind
from sender.track.providers.base import Provider, Rejection, StoredFields
from sender.track.rejected_events import RejectedItem, rejected_item, store_rejected

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
class ParsedBatch:
    """A webhook body judged event by event: what is stored and what is kept raw."""

    events: list[IncomingEvent]
    rejected: list[RejectedItem]

    @property
    def received(self) -> int:
        return len(self.events) + len(self.rejected)


@dataclass(frozen=True)
class StoreResult:
    received: int
    stored: int
    rejected: int = 0  # items of the batch kept raw instead (redelivered copies included)

    @property
    def duplicates(self) -> int:
        return self.received - self.stored - self.rejected


_NOT_AN_OBJECT = Rejection(RejectionKind.NOT_AN_OBJECT, "must be a JSON object")


def parse_batch(provider: Provider, body: bytes) -> ParsedBatch:
    """Every item of a webhook body, as an event or as a rejection; InvalidInput only
    when the body is not a JSON array."""
    data = _loads(body)
    if not isinstance(data, list):
        raise InvalidInput(f"body must be a JSON array of events, not {type(data).__name__}")
    stored_event = provider.stored_event
    events: list[IncomingEvent] = []
    rejected: list[RejectedItem] = []
    for position, item in enumerate(data):
        outcome = _incoming(stored_event, item, position)
        if isinstance(outcome, IncomingEvent):
            events.append(outcome)
        else:
            rejected.append(outcome)
    return ParsedBatch(events, rejected)


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
    stored_event: Callable[[Mapping[str, Any], int], StoredFields | Rejection],
    item: object,
    position: int,
) -> IncomingEvent | RejectedItem:
    if not isinstance(item, dict):
        return rejected_item(item, position, _NOT_AN_OBJECT.numbered(position))
    fields = stored_event(item, position)
    if isinstance(fields, Rejection):
        return rejected_item(item, position, fields)
    raw_json = _raw_json(item)
    if isinstance(raw_json, Rejection):
        return rejected_item(item, position, raw_json.numbered(position))
    return IncomingEvent(fields, raw_json)


def _raw_json(item: dict[str, Any]) -> str | Rejection:
    try:
        raw_json = orjson.dumps(item).decode()
    except orjson.JSONEncodeError:
        # Integers past 64 bits (kept as numbers) or lone surrogates (refused below).
        raw_json = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    # PostgreSQL's jsonb holds neither NUL characters nor unpaired surrogates.
    if "\\u0000" in raw_json:
        return Rejection(RejectionKind.INVALID_TEXT, "contains a NUL character")
    try:
        raw_json.encode("utf-8")
    except UnicodeEncodeError:
        return Rejection(RejectionKind.INVALID_TEXT, "contains invalid Unicode")
    return raw_json


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def store_events(
    engine: Engine, provider: Provider, batch: ParsedBatch, received_at: datetime
) -> StoreResult:
    """Store the events not seen before and keep the rejected items, in one transaction;
    returns how many events were new."""
    events, rejected = batch.events, batch.rejected
    if not events and not rejected:
        return StoreResult(0, 0)
    with engine.begin() as connection:
        if not events:
            stored = 0
        elif engine.dialect.name == "postgresql":
            stored = _insert_unnest(connection, provider.name, events, received_at)
        else:
            stored = _insert_ignoring_duplicates(connection, provider.name, events, received_at)
        store_rejected(connection, provider.name, rejected, received_at)
    return StoreResult(received=batch.received, stored=stored, rejected=len(rejected))


def _insert_unnest(
    connection: Connection, provider: str, batch: Sequence[IncomingEvent], received_at: datetime
) -> int:
    # One list per column: zip(*rows) transposes in C.
    columns = list(zip(*(item.fields for item in batch), strict=True))
    params: dict[str, Any] = dict(zip(_ARRAY_NAMES, map(list, columns), strict=True))
    params["raws"] = [item.raw_json for item in batch]
    params["received"] = received_at
    params["provider"] = provider
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
    connection: Connection, provider: str, batch: Sequence[IncomingEvent], received_at: datetime
) -> int:
    rows = [_row(provider, item, received_at) for item in batch]
    statement = sqlite_insert(Event).on_conflict_do_nothing(index_elements=["provider_event_id"])
    before = connection.execute(text("SELECT total_changes()")).scalar_one()
    connection.execute(statement, rows)
    after = connection.execute(text("SELECT total_changes()")).scalar_one()
    return int(after) - int(before)
