"""Migration 0002 on a database written by `campaign demo` before it (revision 0001).

tests/core/fixtures/demo-0001.sql.gz is `sqlite3 campaign.db .dump` of
`campaign demo --supporters 300` run at commit 3f7838d, the last commit at 0001.
"""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, column, create_engine, func, select, text
from sqlalchemy import table as sa_table
from sqlalchemy.engine import make_url

from sender.campaign.folder import read_folder
from sender.campaign.registry import Outcome, create_from_folder
from sender.core import db
from sender.core.models import Base, Campaign, Message, Reply, Wave
from sender.core.vocabulary import CampaignStatus, MessageStatus
from sender.ops import counts
from sender.report.totals import build_report

DUMP = Path(__file__).parent / "fixtures" / "demo-0001.sql.gz"
ROOT = Path(__file__).resolve().parents[2]


def _demo_sqlite(path: Path) -> Engine:
    connection = sqlite3.connect(path)
    connection.executescript(gzip.decompress(DUMP.read_bytes()).decode("utf-8"))
    connection.close()
    return db.get_engine(f"sqlite:///{path}")


def _row_counts(engine: Engine, names: set[str] | None = None) -> dict[str, int]:
    """Rows per table: the models' tables, or those named."""
    wanted = names if names is not None else {t.name for t in Base.metadata.sorted_tables}
    with engine.connect() as connection:
        return {
            name: int(connection.scalar(select(func.count()).select_from(sa_table(name))) or 0)
            for name in sorted(wanted - {"alembic_version"})
        }


@pytest.fixture
def pg_0001(pg_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A PostgreSQL database at 0001 holding the demo's rows, copied from the dump."""
    url = make_url(pg_url)
    name = f"{url.database}_upgrade"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.get_engine(url.set(database=name).render_as_string(hide_password=False))
    db.upgrade(engine, "0001")
    _copy_rows(_demo_sqlite(tmp_path / "demo.db"), engine)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _copy_rows(source: Engine, target: Engine) -> None:
    """Rows through the models' column types, limited to the columns 0001 had."""
    copied = []
    # In the order of the keys the target (at 0001) has: later revisions dropped some.
    at_0001 = MetaData()
    at_0001.reflect(target)
    order = [
        Base.metadata.tables[t.name]
        for t in at_0001.sorted_tables
        if t.name in Base.metadata.tables
    ]
    with source.connect() as reading, target.begin() as writing:
        for table in order:
            have = {row[1] for row in reading.execute(text(f"PRAGMA table_info({table.name})"))}
            columns = [c for c in table.columns if c.name in have]
            if not columns:
                continue  # a table of a later revision
            copied.append(table)
            rows = [dict(r._mapping) for r in reading.execute(select(*columns))]
            # A bare table: the models' Python-side defaults would add 0002's columns.
            bare = sa_table(table.name, *(column(c.name, c.type) for c in columns))
            if rows:
                writing.execute(bare.insert(), rows)
        for table in copied:
            if "id" in table.columns and table.columns["id"].autoincrement is not False:
                # The copied ids were explicit: move each sequence past them.
                sequence = func.pg_get_serial_sequence(table.name, "id")
                top = select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery()
                writing.execute(
                    select(func.setval(sequence, top, False)).where(sequence.isnot(None))
                )


def _check_upgrade(engine: Engine) -> None:
    assert db.current_revision(engine) == "0001"
    before = _row_counts_0001(engine)
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    after = _row_counts(engine)
    assert {name: after[name] for name in before} == before
    with db.session_scope(engine) as session:
        (campaign,) = session.scalars(select(Campaign)).all()
        assert campaign.slug == "w4r-2020"
        assert campaign.status == CampaignStatus.OPEN
        assert campaign.languages == ["en", "es", "fr", "ar"]
        assert campaign.updated_at == campaign.created_at
        sent = session.scalar(select(func.count()).where(Message.status == MessageStatus.SENT))
    assert sent and sent > 0
    with db.session_scope(engine) as session:  # 0010: the batches' tallies counted once
        waves = list(session.scalars(select(Wave.id)))
        tallied = counts.message_counts(session, waves)
        assert tallied and tallied == counts.message_counts_scan(session, waves)
    with db.session_scope(engine) as session:  # 0008: older replies read as undecided
        replies = session.scalars(select(Reply)).all()
        assert replies and all(r.reviewed_at is r.delivered_at is None for r in replies)
    report = build_report(engine)
    assert report["totals"]["sends"] == sent
    assert build_report(engine, campaign="w4r-2020")["totals"] == report["totals"]
    # The 2020 folder describes the upgraded campaign: creating it changes nothing. Its
    # case email has since become a subject test; the old database sent that wave
    # without one, and a launched wave keeps what it was sent as.
    again = create_from_folder(engine, read_folder(ROOT / "audiences" / "w4r-2020"))
    assert again.outcome is Outcome.UNCHANGED
    assert len(again.cases.unchanged) == 7 and again.waves is not None
    assert again.waves.unchanged == ("human-rights-day-reminder", "last-chance")
    assert again.waves.kept == ("case-email",)
    assert _row_counts(engine) == after


def _row_counts_0001(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return _row_counts(engine, set(engine.dialect.get_table_names(connection)))


def test_demo_database_upgrades_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade(_demo_sqlite(tmp_path / "demo.db"))


def test_demo_database_upgrades_on_postgresql(pg_0001: Engine) -> None:
    assert _row_counts(pg_0001, {"messages"})["messages"] > 0
    _check_upgrade(pg_0001)
