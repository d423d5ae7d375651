"""Engine, sessions and schema migrations.

SQLite is the embedded default: on it, commands bring the schema up to date
themselves. On PostgreSQL the schema is changed only by `campaign db upgrade`,
so that a fleet of workers never races to migrate a production database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from sender.core.errors import SchemaOutOfDate

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Let people write `postgresql://` and still get the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return _absolute_sqlite(url)


def _absolute_sqlite(url: str) -> str:
    # Engines are cached by URL: a relative SQLite path must name the file of the
    # directory it was given in, not whichever directory the first caller used.
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or ":memory:" in url:
        return url
    return prefix + str(Path(url[len(prefix) :]).resolve())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web app read while a wave writes; busy_timeout rides out
    # short write locks instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # PostgreSQL's md5(text), which a subject test's seeded draw orders by.
    dbapi_connection.create_function("md5", 1, _md5, deterministic=True)


def _md5(text: str | None) -> str | None:
    return None if text is None else hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def get_engine(url: str) -> Engine:
    return _engine(normalise_url(url))


@lru_cache(maxsize=16)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine) -> None:
    """Bring SQLite up to date; on other databases say what to run."""
    if current_revision(engine) == head_revision():
        return
    if is_sqlite(engine):
        upgrade(engine)
        return
    raise SchemaOutOfDate(
        f"the database schema is not up to date (at {current_revision(engine) or 'nothing'}, "
        f"code needs {head_revision()}): run `campaign db upgrade`"
    )


def rowcount(result: object) -> int:
    """Rows an INSERT or UPDATE touched (``preserve_rowcount`` for INSERT ... SELECT)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
