"""Reading the audit log in tests: its rows (oldest first unless asked), of some actions."""

from __future__ import annotations

from sqlalchemy import Engine

from sender.core.db import session_scope
from sender.staff import audit


def audit_rows(engine: Engine, *what: str, newest_first: bool = False) -> list[audit.Entry]:
    with session_scope(engine) as session:
        found = audit.entries(session, what=what, limit=None)
    return found if newest_first else list(reversed(found))
