"""The importer's repository: staging tables and set-based upserts, per dialect.

Rows are validated in Python and reach the database a chunk at a time: bulk
loaded into a temporary staging table (COPY on PostgreSQL, executemany on
SQLite), then checked and merged into `supporters` with a handful of
statements per chunk instead of one round trip per row. A second temporary
table remembers every address already staged, so duplicates across chunks are
found by the database and the importer's memory stays flat.

Statements are assembled from the constant column names below only (hence the
S608 waivers); every value travels as a bound parameter or through COPY.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, bindparam, text
from sqlalchemy.exc import DBAPIError

from sender.core.models import UTCDateTime
from sender.core.vocabulary import SupporterStatus

# Order of the values in each staged row.
STAGE_COLUMNS = (
    "line",
    "email",
    "email_hash",
    "first_name",
    "last_name",
    "country",
    "language",
    "language_default",
    "timezone",
    "timezone_default",
    "consent",
    "case_preference",
)
# Supporter columns an import may change; a value the file leaves empty keeps
# what the database holds.
MERGED = (
    "first_name",
    "last_name",
    "country",
    "language",
    "timezone",
    "consent",
    "case_preference",
)

IMPORT_CACHE_KIB = -32_768  # negative: KiB, per SQLite's PRAGMA cache_size
TEMP_BUFFERS_MB = 160  # PostgreSQL backend memory for the import's temporary tables

StagedRow = tuple[
    int,
    str,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str,
    str | None,
    str,
    bool | None,
    str | None,
]


@dataclass(frozen=True)
class ChunkOutcome:
    new: int
    changed: int
    same: int


@dataclass(frozen=True)
class ChunkResult:
    """What the database found and did with one chunk."""

    duplicates: tuple[tuple[int, int], ...]  # (line, first line) seen in an earlier chunk
    suppressed: tuple[int, ...]  # lines refused: suppressed or forgotten addresses
    outcome: ChunkOutcome


class ImportStage:
    """Temporary tables on one connection, for the length of one import transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self._distinct = "IS DISTINCT FROM" if self.postgres else "IS NOT"
        self._cache_size: int | None = None

    def create(self) -> None:
        boolean = "BOOLEAN" if self.postgres else "INTEGER"
        # PostgreSQL drops them with the transaction; SQLite keeps temp tables
        # for the connection's life, so drop() must run on every exit.
        suffix = " ON COMMIT DROP" if self.postgres else ""
        self.drop()
        if not self.postgres:
            # The unique indexes take random keys (hashes): a bigger page cache
            # than SQLite's 2 MB default saves a quarter of the CPU on large
            # files while keeping the process well under 200 MB. Restored in drop().
            self._cache_size = self._sql("PRAGMA cache_size").scalar()
            self._sql(f"PRAGMA cache_size = {IMPORT_CACHE_KIB}")
        if self.postgres:
            # Each chunk meets the supporters table through its unique index:
            # a few thousand probes. Rows inserted earlier in this transaction
            # have no statistics yet, and the planner then prefers hashing the
            # whole table for every chunk, which grows quadratically.
            self._sql("SET LOCAL enable_hashjoin = off")
            self._sql("SET LOCAL enable_mergejoin = off")
            self._grow_temp_buffers()
        # Same collation as the supporters keys it is joined with (see models.HashText).
        key = 'TEXT COLLATE "C"' if self.postgres else "TEXT"
        self._sql(
            f"CREATE TEMP TABLE import_chunk (line INTEGER, email {key}, email_hash {key}, "
            "first_name TEXT, last_name TEXT, country TEXT, language TEXT, "
            "language_default TEXT, timezone TEXT, timezone_default TEXT, "
            f"consent {boolean}, case_preference TEXT){suffix}"
        )
        # The addresses already staged, the import's only growing index. PostgreSQL
        # keys it by the 32-byte digest (bytea compares bytes; text would go
        # through the locale's collation on every probe); SQLite keeps it in a
        # single b-tree (WITHOUT ROWID) instead of a table plus an index.
        if self.postgres:
            seen = "(digest BYTEA PRIMARY KEY, line INTEGER) ON COMMIT DROP"
        else:
            seen = "(digest TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID"
        self._sql(f"CREATE TEMP TABLE import_seen {seen}")

    def _grow_temp_buffers(self) -> None:
        # The table of addresses seen grows to ~100 MB at a million rows; in
        # PostgreSQL's default 8 MB of temporary buffers every probe and insert
        # then evicts pages to temp files. The size can only change before the
        # session first uses a temporary table (an error after), hence the
        # savepoint: a pooled connection that already used one keeps its size.
        savepoint = self.connection.begin_nested()
        try:
            self._sql(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS_MB}MB'")
        except DBAPIError:
            savepoint.rollback()
        else:
            savepoint.commit()

    def drop(self) -> None:
        if not self.postgres:
            self._sql("DROP TABLE IF EXISTS temp.import_chunk")
            self._sql("DROP TABLE IF EXISTS temp.import_seen")
            if self._cache_size is not None:
                self._sql(f"PRAGMA cache_size = {int(self._cache_size)}")
                self._cache_size = None

    def merge_chunk(
        self, rows: Sequence[StagedRow], source: str | None, now: datetime
    ) -> ChunkResult:
        """Stage, check and merge one chunk: every statement a chunk needs, in order.

        The importer runs this on its database thread; the caller must not use
        the connection until it returns.
        """
        self.load(rows)
        duplicates = tuple(self.take_earlier_duplicates())
        suppressed = tuple(self.take_suppressed())
        staged = len(rows) - len(duplicates) - len(suppressed)
        # Inserting first and counting what went in replaces a separate join
        # that sorted the chunk into new and existing addresses; a chunk of new
        # addresses only (a first import) then needs no UPDATE at all.
        new = self.insert_new(source, now) if staged else 0
        changed = self.update_changed(now) if new < staged else 0
        return ChunkResult(
            duplicates, suppressed, ChunkOutcome(new, changed, staged - new - changed)
        )

    def load(self, rows: Sequence[StagedRow]) -> None:
        """Replace the chunk table's contents with these rows."""
        names = ", ".join(STAGE_COLUMNS)
        if self.postgres:
            self._sql("TRUNCATE import_chunk")
            cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY import_chunk ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # Temporary tables get no autovacuum statistics: without them the
            # planner may hash-join the whole supporters table for every chunk.
            # Only the join key matters; sampling every column cost twice as much.
            self._sql("ANALYZE import_chunk (email_hash)")
            return
        self._sql("DELETE FROM import_chunk")
        marks = ", ".join("?" for _ in STAGE_COLUMNS)
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(
            f"INSERT INTO import_chunk ({names}) VALUES ({marks})",  # noqa: S608
            rows,
        )

    def take_earlier_duplicates(self) -> list[tuple[int, int]]:
        """(line, first line) of rows whose address an earlier chunk already had."""
        digest = "decode(c.email_hash, 'hex')" if self.postgres else "c.email_hash"
        found = self._sql(
            f"SELECT c.line, s.line FROM import_chunk c JOIN import_seen s ON s.digest = {digest}"  # noqa: S608
        ).all()
        duplicates = [(int(row[0]), int(row[1])) for row in found]
        self._drop_lines([line for line, _ in duplicates])
        columns = f"{digest}, line"
        self._sql(
            f"INSERT INTO import_seen (digest, line) SELECT {columns} FROM import_chunk c "  # noqa: S608
            "ORDER BY c.email_hash"
        )
        return duplicates

    def take_suppressed(self) -> list[int]:
        """Lines whose address is suppressed or forgotten: never (re)subscribed by an import."""
        condition = (
            "EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = import_chunk.email_hash) "
            "OR EXISTS (SELECT 1 FROM supporters s WHERE s.email_hash = import_chunk.email_hash "
            "AND s.status = :forgotten)"
        )
        params = {"forgotten": SupporterStatus.FORGOTTEN.value}
        lines = [
            int(line)
            for (line,) in self._sql(f"SELECT line FROM import_chunk WHERE {condition}", params)  # noqa: S608
        ]
        self._drop_lines(lines)
        return lines

    def _drop_lines(self, lines: list[int]) -> None:
        # By line number, from the small chunk table: a DELETE written as a
        # semi-join against import_seen could scan that growing table per chunk.
        if lines:
            statement = text("DELETE FROM import_chunk WHERE line IN :lines").bindparams(
                bindparam("lines", expanding=True)
            )
            self.connection.execute(statement, {"lines": lines})

    def _changed(self, supporter: str) -> str:
        return " OR ".join(
            f"COALESCE(c.{name}, {supporter}.{name}) {self._distinct} {supporter}.{name}"
            for name in MERGED
        )

    def insert_new(self, source: str | None, now: datetime) -> int:
        """Insert the chunk's addresses that are not supporters yet; how many there were."""
        # WHERE true: SQLite needs it to parse ON CONFLICT after INSERT ... SELECT.
        # In key order, the unique index's leaves are visited in turn instead of
        # at random (hashes): ~10 % less backend CPU at 500,000 rows.
        insert = text(
            "INSERT INTO supporters (email, email_hash, first_name, last_name, country, "
            "language, timezone, consent, status, case_preference, source, created_at, updated_at) "
            "SELECT c.email, c.email_hash, c.first_name, c.last_name, c.country, "
            "COALESCE(c.language, c.language_default), COALESCE(c.timezone, c.timezone_default), "
            "COALESCE(c.consent, FALSE), :status, c.case_preference, :source, :now, :now "
            "FROM import_chunk AS c WHERE true ORDER BY c.email_hash "
            "ON CONFLICT (email_hash) DO NOTHING"
        ).bindparams(bindparam("now", type_=UTCDateTime()))
        params = {"status": SupporterStatus.SUBSCRIBED.value, "source": source, "now": now}
        return int(self.connection.execute(insert, params).rowcount)

    def update_changed(self, now: datetime) -> int:
        """Update supporters the chunk changes; how many. Rows insert_new() just wrote match
        the chunk already, so they are neither touched nor counted."""
        assignments = ", ".join(
            f"{name} = COALESCE(c.{name}, supporters.{name})" for name in MERGED
        )
        update = text(
            f"UPDATE supporters SET {assignments}, updated_at = :now FROM import_chunk AS c "  # noqa: S608
            f"WHERE c.email_hash = supporters.email_hash AND ({self._changed('supporters')})"
        ).bindparams(bindparam("now", type_=UTCDateTime()))
        return int(self.connection.execute(update, {"now": now}).rowcount)

    def _sql(
        self, statement: str, params: Mapping[str, Any] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        return self.connection.execute(text(statement), params or {})
