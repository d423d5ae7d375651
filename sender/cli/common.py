"""What every command needs: the console, settings and an up-to-date database."""

from __future__ import annotations

from rich.console import Console
from sqlalchemy import Engine

from sender.core import db
from sender.core.config import Settings, get_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def open_database(settings: Settings | None = None) -> Engine:
    """The configured database, migrated on SQLite or refused when out of date."""
    engine = db.get_engine((settings or get_settings()).database_url)
    db.ensure_schema(engine)
    return engine
