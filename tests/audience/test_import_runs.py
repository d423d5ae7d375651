"""Workspace import runs: the saved upload, the run's record, its outcome and its audit row."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_fixtures import audit_rows
from sqlalchemy import Engine

from audience.audience_fixtures import HEADER, count
from sender.audience.import_runs import (
    check_filename,
    read_run,
    rejected_path,
    run_import,
    save_upload,
    start_run,
    upload_path,
)
from sender.core.errors import InvalidInput, NotFound
from sender.core.vocabulary import ImportState
from sender.devtools.crm_export import write_crm_export
from sender.staff.audit import Actor
from sender.staff.roles import Role

ACTOR = Actor("omar@example.org", Role.CAMPAIGNER, "198.51.100.7")


def queued(engine: Engine, folder: Path, text: str) -> int:
    saved = save_upload([text.encode()], folder, 10_000)
    return start_run(engine, saved, "crm.csv", ACTOR)


def test_a_run_imports_records_its_counts_and_is_audited(
    any_engine: Engine, tmp_path: Path
) -> None:
    rows = f"{HEADER}\nana@example.org,Ana,,PT,pt,,yes\nbroken,,,,,,\n"
    run_id = queued(any_engine, tmp_path, rows)
    assert read_run(any_engine, run_id).status is ImportState.QUEUED
    run = run_import(any_engine, tmp_path, run_id, ACTOR)
    assert (run.status, run.rows, run.imported, dict(run.rejected)) == (
        ImportState.DONE,
        2,
        1,
        {"invalid_email": 1},
    )
    assert run.percent == 100 and count(any_engine) == 1
    assert not upload_path(tmp_path, run_id).exists()
    assert "broken" in rejected_path(tmp_path, run_id).read_text()
    (entry,) = audit_rows(any_engine, "supporters.import")
    assert (entry.actor, entry.outcome) == (ACTOR.name, "done")
    # A redelivered task finds the run over and imports nothing twice.
    assert run_import(any_engine, tmp_path, run_id, ACTOR).finished_at == run.finished_at
    assert len(audit_rows(any_engine, "supporters.import")) == 1


def test_a_generated_crm_export_is_counted_row_for_row(pg_engine: Engine, tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    summary = write_crm_export(source, 3_000, seed=4)
    saved = save_upload([source.read_bytes()], tmp_path / "up", 10**8)
    run_id = start_run(pg_engine, saved, "export.csv", ACTOR)
    run = run_import(pg_engine, tmp_path / "up", run_id, ACTOR)
    assert run.status is ImportState.DONE and run.rows == summary.rows
    assert run.bytes_read == run.bytes_total == source.stat().st_size
    assert run.imported == summary.valid_unique
    assert run.rejected.get("invalid_email", 0) == summary.invalid_emails


def test_a_run_that_fails_keeps_nothing_and_says_why(any_engine: Engine, tmp_path: Path) -> None:
    run_id = queued(any_engine, tmp_path, f"{HEADER}\nana@example.org,Ana,,PT,pt,,yes\n")
    upload_path(tmp_path, run_id).unlink()  # the file went missing before the worker ran
    run = run_import(any_engine, tmp_path, run_id, ACTOR)
    assert run.status is ImportState.FAILED and run.problem
    assert count(any_engine) == 0
    (entry,) = audit_rows(any_engine, "supporters.import")
    assert entry.outcome == "failed"


@pytest.mark.parametrize(
    ("chunks", "says"),
    [
        ([], "empty"),
        ([b"x" * 600, b"y" * 600], "limit of 1 KB"),
        ([b"\x00\x01\x02" * 10], "binary data"),
        ([b"name,country\nAna,PT\n"], "no email column"),
    ],
)
def test_a_bad_upload_leaves_no_file(tmp_path: Path, chunks: list[bytes], says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        save_upload(chunks, tmp_path, 1024)
    assert list(tmp_path.iterdir()) == []


def test_only_csv_names_are_taken() -> None:
    assert check_filename("C:\\Users\\me\\export.CSV") == "export.CSV"
    assert check_filename("../../etc/list.tsv") == "list.tsv"
    for bad in ("photo.png", "list.csv.exe", ""):
        with pytest.raises(InvalidInput, match="CSV"):
            check_filename(bad)


def test_an_unknown_run_is_not_found(any_engine: Engine) -> None:
    with pytest.raises(NotFound):
        read_run(any_engine, 12345)


def test_the_celery_task_runs_the_import_as_the_uploader(
    pg_engine: Engine, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    from sender.tasks import import_supporters_task

    folder = tmp_path / "shared-uploads"
    env.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    env.setenv("UPLOAD_DIR", str(folder))
    run_id = queued(pg_engine, folder, f"{HEADER}\nana@example.org,Ana,,PT,pt,,yes\n")
    assert import_supporters_task(run_id, ACTOR.name, ACTOR.role.value, ACTOR.address) == "done"
    assert count(pg_engine) == 1
    (entry,) = audit_rows(pg_engine, "supporters.import")
    assert (entry.actor, entry.actor_role, entry.address) == (
        ACTOR.name,
        "campaigner",
        ACTOR.address,
    )
