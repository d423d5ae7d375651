"""Imports started from the workspace: the upload on disk, the run in the background.

The file is streamed to `upload_dir` in chunks (never held in memory), checked
for a readable header before anything is queued, and imported by
sender.audience.importer in a Celery worker or a thread. The run's progress
and outcome live in models.ImportRun, so a page can poll it and a reload finds
it again. Only counts are stored: the rejected rows stay in a file beside the
upload, written formula-safe by the importer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import Engine, select, update

from sender.audience.csv_reader import read_layout
from sender.audience.importer import ImportReport, Progress, import_supporters
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import ImportRun
from sender.core.vocabulary import ImportState
from sender.staff import audit
from sender.staff.actions import What
from sender.staff.audit import Actor

MAX_FILENAME = 200
CSV_SUFFIXES = (".csv", ".txt", ".tsv")


@dataclass(frozen=True)
class RunView:
    run_id: int
    filename: str
    status: ImportState
    bytes_total: int
    bytes_read: int
    rows: int
    imported: int
    updated: int
    unchanged: int
    rejected: Mapping[str, int]
    problem: str | None
    finished_at: datetime | None

    @property
    def percent(self) -> int:
        if self.status is ImportState.DONE:
            return 100
        return min(99, self.bytes_read * 100 // self.bytes_total) if self.bytes_total else 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def finished(self) -> bool:
        return self.status in (ImportState.DONE, ImportState.FAILED)


def upload_path(folder: Path, run_id: int) -> Path:
    return folder / f"import-{run_id}.csv"


def rejected_path(folder: Path, run_id: int) -> Path:
    return folder / f"import-{run_id}.rejected.csv"


def check_filename(name: str) -> str:
    """The name as shown and audited: its last part, refused unless it looks like a CSV."""
    shown = Path(name.replace("\\", "/")).name.strip()[:MAX_FILENAME]
    if not shown.lower().endswith(CSV_SUFFIXES):
        raise InvalidInput("the file must be a CSV export (.csv, .tsv or .txt)")
    return shown


def save_upload(chunks: Iterable[bytes], folder: Path, limit: int) -> Path:
    """Write the chunks to a new file in `folder`; refuse (keeping nothing) past `limit` bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="upload-", suffix=".partial", dir=folder)
    path, written = Path(name), 0
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise InvalidInput(f"the file is larger than the limit of {_size(limit)}")
                out.write(chunk)
        if written == 0:
            raise InvalidInput("the file is empty")
        read_layout(path)  # not a CSV with an email column: refused before anything is queued
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _size(limit: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if limit >= factor:
            return f"{limit / factor:g} {unit}"
    return f"{limit} bytes"


def start_run(engine: Engine, saved: Path, filename: str, actor: Actor) -> int:
    """Record a queued run and move the saved upload to its name; the run's id."""
    with session_scope(engine) as session:
        run = ImportRun(
            filename=filename,
            started_by=actor.name,
            status=ImportState.QUEUED.value,
            bytes_total=saved.stat().st_size,
            bytes_read=0,
            rows=0,
            imported=0,
            updated=0,
            unchanged=0,
            rejected={},
        )
        session.add(run)
        session.flush()
        run_id = run.id
    saved.replace(upload_path(saved.parent, run_id))
    return run_id


def _set(engine: Engine, run_id: int, **values: object) -> None:
    with session_scope(engine) as session:
        session.execute(update(ImportRun).where(ImportRun.id == run_id).values(**values))


def _progress_writer(engine: Engine, run_id: int) -> Progress | None:
    # SQLite has one writer: the import's own transaction holds it until the end.
    if engine.dialect.name == "sqlite":
        return None

    def write(done: int, total: int) -> None:
        _set(engine, run_id, bytes_read=done, bytes_total=total)

    return write


def import_counts(report: ImportReport) -> str:
    """Counts per outcome for the audit row: never a supporter's data."""
    rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(report.rejected.items()))
    return (
        f"{report.rows} rows: {report.imported} imported, {report.updated} updated,"
        f" {report.unchanged} unchanged, {report.rejected_total} rejected"
        + (f" ({rejected})" if rejected else "")
    )


def run_import(engine: Engine, folder: Path, run_id: int, actor: Actor) -> RunView:
    """Import the run's upload as `actor` (audited), recording progress and the outcome."""
    run = read_run(engine, run_id)
    if run.status is not ImportState.QUEUED:
        return run  # a redelivered task: the run is someone else's or over
    _set(engine, run_id, status=ImportState.RUNNING.value)
    source = upload_path(folder, run_id)
    try:
        report = audit.audited(
            engine,
            actor,
            What.IMPORT,
            run.filename,
            lambda: import_supporters(
                engine,
                source,
                source=f"workspace: {run.filename}"[:100],
                errors_path=rejected_path(folder, run_id),
                progress=_progress_writer(engine, run_id),
            ),
            detail=import_counts,
        )
    except Exception as error:  # any failure ends the run and is shown on its page
        _set(
            engine,
            run_id,
            status=ImportState.FAILED.value,
            problem=str(error)[:2000],
            finished_at=SystemClock().now(),
        )
    else:
        _set(
            engine,
            run_id,
            status=ImportState.DONE.value,
            bytes_read=run.bytes_total,
            rows=report.rows,
            imported=report.imported,
            updated=report.updated,
            unchanged=report.unchanged,
            rejected=dict(report.rejected),
            finished_at=SystemClock().now(),
        )
    finally:
        source.unlink(missing_ok=True)
    return read_run(engine, run_id)


def recent_runs(engine: Engine, limit: int = 10) -> list[RunView]:
    """The latest imports, newest first: a page left mid-import is found again here."""
    with session_scope(engine) as session:
        found = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit))
        return [_view(run) for run in found]


def read_run(engine: Engine, run_id: int) -> RunView:
    with session_scope(engine) as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            raise NotFound(f"no import #{run_id}")
        return _view(run)


def _view(run: ImportRun) -> RunView:
    return RunView(
        run.id,
        run.filename,
        ImportState(run.status),
        run.bytes_total,
        run.bytes_read,
        run.rows,
        run.imported,
        run.updated,
        run.unchanged,
        MappingProxyType({str(k): int(v) for k, v in run.rejected.items()}),
        run.problem,
        run.finished_at,
    )
