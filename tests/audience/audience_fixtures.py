"""Files and look-ups shared by the audience tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select

from sender.core.db import session_scope
from sender.core.models import Supporter

HEADER = "email,first_name,last_name,country,language,timezone,consent"


def write(tmp_path: Path, text: str, name: str = "list.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def supporters(engine: Engine) -> dict[str, Supporter]:
    with session_scope(engine) as session:
        rows = session.scalars(select(Supporter)).all()
    return {row.email or f"#{row.id}": row for row in rows}


def count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Supporter)) or 0)
