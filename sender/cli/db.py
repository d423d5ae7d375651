"""`campaign db`: schema migrations."""

from __future__ import annotations

import typer

from sender.cli.common import console
from sender.core import db
from sender.core.config import get_settings

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
