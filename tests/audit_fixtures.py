"""Reading the audit log in tests: the rows, oldest first, optionally of one action."""

from __future__ import annotations

from sqlalchemy import Engine

from sender.core.db import session_scope
from sender.staff import audit


def audit_trail(engine: Engine, what: str | None = None) -> list[audit.Entry]:
    with session_scope(engine) as session:
        found = audit.entries(session, what=[what] if what else (), limit=None)
    return list(reversed(found))
