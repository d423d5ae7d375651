"""A least-privilege PostgreSQL login role for the running application.

Migrations run as the owner of the tables; the web app, the workers and the
scheduler need only to read and write rows. This role may SELECT, INSERT,
UPDATE and DELETE on every table and use the sequences, but on audit_log it
may only SELECT and INSERT, and it may not touch alembic_version's rows: so
even an attacker holding the application's password cannot rewrite the
record of what was done (the triggers of migration 0004 are a second wall).

Tables a later migration adds get no rights until this runs again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, text

from sender.core.errors import InvalidInput

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
APPEND_ONLY = ("audit_log",)
READ_ONLY = ("alembic_version",)


@dataclass(frozen=True)
class AppRole:
    name: str
    created: bool  # False: it existed, and its rights were set again
    tables: int


def check_name(name: str) -> str:
    """A plain lower-case identifier: it is spliced into SQL, so nothing else passes."""
    if not _NAME.fullmatch(name) or name.startswith("pg_"):
        raise InvalidInput(
            f"role name {name!r}: use lower-case letters, digits and _ (at most 63, not pg_...)"
        )
    return name


def grant_app_role(engine: Engine, name: str, password: str | None = None) -> AppRole:
    """Create the login role when missing, then grant exactly the application's rights."""
    if engine.dialect.name != "postgresql":
        raise InvalidInput("an application role needs PostgreSQL (SQLite has no roles)")
    role = f'"{check_name(name)}"'
    with engine.begin() as connection:
        found = connection.execute(
            text("SELECT rolsuper, rolname = current_user FROM pg_roles WHERE rolname = :n"),
            {"n": name},
        ).first()
        if found is not None and (found[0] or found[1]):
            raise InvalidInput(
                f"role {name} is a superuser or the tables' owner: grants cannot limit it;"
                " name a new role"
            )
        exists = found is not None
        if not exists:
            connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        if password is not None:
            # Bound values are not allowed in utility statements: quote it as a literal.
            literal = connection.scalar(text("SELECT quote_literal(:p)"), {"p": password})
            connection.execute(text(f"ALTER ROLE {role} PASSWORD {literal}"))
        database = connection.scalar(text("SELECT quote_ident(current_database())"))
        schema = connection.scalar(text("SELECT quote_ident(current_schema())"))
        tables = connection.scalar(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        )
        for statement in (
            f"GRANT CONNECT ON DATABASE {database} TO {role}",
            f"GRANT USAGE ON SCHEMA {schema} TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
            *(f"REVOKE UPDATE, DELETE, TRUNCATE ON {t} FROM {role}" for t in APPEND_ONLY),
            *(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {t} FROM {role}" for t in READ_ONLY),
        ):
            connection.execute(text(statement))
    return AppRole(name, not exists, int(tables or 0))
