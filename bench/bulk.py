"""Bulk rows for the benchmarks' set-up: COPY on PostgreSQL, executemany on SQLite.

Set-up is not what the benchmarks time, but at a million rows the ORM would
take longer than the thing measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection


def write_rows(
    connection: Connection, table: str, columns: str, rows: Iterable[tuple[object, ...]]
) -> None:
    """Insert `rows` (values in the order of `columns`) inside the caller's transaction."""
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.cursor()
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # sqlite3 stores datetimes as the ISO text the models read back.
    marks = ", ".join("?" * len(columns.split(",")))
    plain = [
        tuple(value.isoformat() if isinstance(value, datetime) else value for value in row)
        for row in rows
    ]
    connection.exec_driver_sql(f"INSERT INTO {table} ({columns}) VALUES ({marks})", plain)
