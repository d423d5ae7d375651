"""`campaign supporters ...` end to end on the embedded SQLite default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sender.cli import app
from sender.core.config import get_settings, reset_settings
from sender.core.db import get_engine, session_scope
from sender.core.models import Supporter
from sender.devtools.crm_export import write_crm_export

HEADER = "Email Address,First Name,Last Name,Country,Consent"


@pytest.fixture(autouse=True)
def own_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # get_engine caches by URL: the default relative "sqlite:///campaign.db"
    # would reuse pooled connections to an earlier test's file.
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'campaign.db'}")
    reset_settings()


def supporter_count() -> int:
    with session_scope(get_engine(get_settings().database_url)) as session:
        return int(session.scalar(select(func.count()).select_from(Supporter)) or 0)


def test_import_prints_summary_and_writes_errors(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"{HEADER}\na@example.org,A,A,GB,yes\nbroken,B,B,GB,yes\n", encoding="utf-8")
    result = runner.invoke(app, ["supporters", "import", str(path), "--errors", "bad.csv"])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "rejected: invalid_email" in result.output
    assert "line 3: invalid_email" in result.output
    assert (tmp_path / "bad.csv").read_text(encoding="utf-8").count("invalid_email") == 1
    assert supporter_count() == 1
    again = runner.invoke(app, ["supporters", "import", str(path)])
    assert again.exit_code == 0
    assert "unchanged" in again.output and "--errors" in again.output


def test_import_of_a_non_csv_exits_2_and_imports_nothing(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(500))
    result = runner.invoke(app, ["supporters", "import", str(path)])
    assert result.exit_code == 2
    assert "PNG image, not a CSV file" in result.output
    assert supporter_count() == 0


def test_import_of_a_missing_file_exits_2(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["supporters", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_large_import_shows_progress_and_counts(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    summary = write_crm_export(tmp_path / "big.csv", 30_000, seed=5)
    assert (tmp_path / "big.csv").stat().st_size > 2_000_000
    result = runner.invoke(app, ["supporters", "import", str(tmp_path / "big.csv")])
    assert result.exit_code == 0, result.output
    assert f"{summary.valid_unique:,}" in result.output
    assert supporter_count() == summary.valid_unique
    counted = runner.invoke(app, ["supporters", "count"])
    assert counted.exit_code == 0 and "subscribed" in counted.output


def test_forget_then_reimport_is_refused(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"{HEADER}\nzara@example.org,Zara,H,JO,yes\n", encoding="utf-8")
    assert runner.invoke(app, ["supporters", "import", str(path)]).exit_code == 0
    forgot = runner.invoke(app, ["supporters", "forget", "Zara@Example.org"])
    assert forgot.exit_code == 0 and "forgotten" in forgot.output
    again = runner.invoke(app, ["supporters", "import", str(path)])
    assert "rejected: suppressed" in again.output
    unknown = runner.invoke(app, ["supporters", "forget", "nobody@example.org"])
    assert unknown.exit_code == 2
    assert "no supporter has that address" in unknown.output  # not repeated: it is logged


def test_import_command_runs_with_prompt_thread_switches(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    import sys

    import sender.cli.supporters as command
    from sender.core.speedups import SWITCH_INTERVAL

    seen: list[float] = []
    real = command.import_supporters

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(sys.getswitchinterval())
        return real(*args, **kwargs)

    env.setattr(command, "import_supporters", watched)
    before = sys.getswitchinterval()
    path = tmp_path / "list.csv"
    path.write_text(f"{HEADER}\na@example.org,A,A,GB,yes\n", encoding="utf-8")
    assert runner.invoke(app, ["supporters", "import", str(path)]).exit_code == 0
    assert seen == [pytest.approx(SWITCH_INTERVAL)]
    assert sys.getswitchinterval() == pytest.approx(before, abs=1e-6)


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink", "partial"])
def test_errors_pointing_at_the_input_is_refused_and_the_export_kept(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path, how: str
) -> None:
    """Attack by accident: `--errors export.csv` would truncate the export before reading it."""
    path = tmp_path / "export.csv"
    content = f"{HEADER}\na@example.org,A,A,GB,yes\nbroken,B,B,GB,yes\n"
    path.write_text(content, encoding="utf-8")
    target = {
        "same": str(path),
        "relative": "export.csv",  # the env fixture runs in tmp_path
        "symlink": str(tmp_path / "link.csv"),
        "hardlink": str(tmp_path / "hard.csv"),
        "partial": str(tmp_path / "export"),  # its partial file would be export.partial
    }[how]
    if how == "symlink":
        (tmp_path / "link.csv").symlink_to(path)
    if how == "hardlink":
        (tmp_path / "hard.csv").hardlink_to(path)
    if how == "partial":
        path.rename(tmp_path / "export.partial")
        path = tmp_path / "export.partial"
    result = runner.invoke(app, ["supporters", "import", str(path), "--errors", target])
    assert result.exit_code == 2, result.output
    assert "would overwrite the file being imported" in " ".join(result.output.split())
    assert path.read_text(encoding="utf-8") == content
    assert supporter_count() == 0
