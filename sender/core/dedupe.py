"""Rows inserted at most once, keyed by a unique column.

Webhooks are retried and links clicked twice; `INSERT ... ON CONFLICT DO
NOTHING` makes the second copy a no-op on both supported databases without
a savepoint or a read-then-write race.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.orm import Session

from sender.core.models import Base
from sender.core.upsert import insert_for


def insert_once(session: Session, model: type[Base], key: str, values: dict[str, Any]) -> bool:
    """Insert `values` unless a row with the same `key` column exists; True when inserted."""
    statement = (
        insert_for(session, model).values(**values).on_conflict_do_nothing(index_elements=[key])
    )
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)
