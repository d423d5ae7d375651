"""`campaign db`: schema migrations."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sender.cli.common import audited_change, console, open_database
from sender.core import db
from sender.core.app_role import grant_app_role
from sender.core.config import get_settings
from sender.staff.actions import What

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply every pending migration."""
    engine = db.get_engine(get_settings().database_url)
    before = db.current_revision(engine)
    db.upgrade(engine)
    after = db.current_revision(engine)
    console.print(f"database at revision {after}" + (" (unchanged)" if before == after else ""))


@app.command()
def current() -> None:
    """Show the applied and the expected revision."""
    engine = db.get_engine(get_settings().database_url)
    console.print(f"applied: {db.current_revision(engine) or 'none'}  code: {db.head_revision()}")


@app.command("app-role")
def app_role(
    name: Annotated[str, typer.Argument(help="The login role the application connects as.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Set its password from stdin's first line.")
    ] = False,
) -> None:
    """PostgreSQL: create or refresh the application's least-privilege role (after upgrade too).

    Rows of every table, but the audit log only read and appended to.
    """
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    engine = open_database()
    role = audited_change(
        engine,
        What.DB_APP_ROLE,
        f"role {name}",
        lambda: grant_app_role(engine, name, password),
        detail=lambda r: (
            f"{'created' if r.created else 'existing'}; {r.tables} tables, audit_log insert-only"
            + ("; password set" if password is not None else "")
        ),
    )
    verb = "created" if role.created else "updated"
    console.print(
        f"role {role.name} {verb}: read and write on {role.tables} tables,"
        " audit_log read and append only; run this again after `campaign db upgrade`"
    )
