"""The CLI on real PostgreSQL with staff accounts: one per role, and what the audit log holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from audit_fixtures import audit_rows as audit_rows  # re-exported for the CLI tests
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from sender.cli import app
from sender.core.db import session_scope
from sender.core.models import Base
from sender.core.staff_models import AuditEntry
from sender.staff import accounts
from sender.staff.roles import Role

GOOD_PASSWORD = "violet-tractor-sings-at-midnight"
VIEWER = "viewer@example.org"
CAMPAIGNER = "campaigner@example.org"
ADMIN = "admin@example.org"
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def add_staff(engine: Engine, email: str, role: Role, campaigns: Sequence[str] = ()) -> None:
    with session_scope(engine) as session:
        accounts.add_account(session, email, role, GOOD_PASSWORD, NOW, campaigns)


def add_one_per_role(engine: Engine) -> None:
    add_staff(engine, VIEWER, Role.VIEWER)
    add_staff(engine, CAMPAIGNER, Role.CAMPAIGNER)
    add_staff(engine, ADMIN, Role.ADMIN)


def invoke(
    runner: CliRunner, *args: str, stdin: str | None = None, columns: int | None = None
) -> Result:
    env = None if columns is None else {"COLUMNS": str(columns)}
    return runner.invoke(app, list(args), input=stdin, env=env)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log: equal snapshots, nothing changed."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name == AuditEntry.__tablename__:
                continue
            rows = connection.execute(select(table)).all()
            tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return tables
