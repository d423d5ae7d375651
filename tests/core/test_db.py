from pathlib import Path

from alembic import command
from sqlalchemy import Engine, create_engine, inspect

from sender.core import db
from sender.core.errors import SchemaOutOfDate


def test_migrations_match_models_on_postgresql(pg_engine: Engine) -> None:
    # Raises if the models hold a change no migration carries.
    command.check(db.alembic_config(pg_engine))


def test_migrations_match_models_on_sqlite(sqlite_engine: Engine) -> None:
    command.check(db.alembic_config(sqlite_engine))
    assert db.current_revision(sqlite_engine) == db.head_revision()


def test_sqlite_is_migrated_on_first_use(tmp_path: Path) -> None:
    engine = db.get_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    db.ensure_schema(engine)
    assert "supporters" in inspect(engine).get_table_names()


def test_postgresql_out_of_date_says_what_to_run(pg_url: str) -> None:
    empty = pg_url.rsplit("/", 1)[0] + "/postgres"
    engine = create_engine(empty)
    try:
        db.ensure_schema(engine)
    except SchemaOutOfDate as error:
        assert "campaign db upgrade" in str(error)
    else:
        raise AssertionError("an unmigrated PostgreSQL database was accepted")


def test_postgres_scheme_gets_psycopg_driver() -> None:
    assert db.normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
