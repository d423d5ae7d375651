"""`campaign init` and `campaign campaigns ...`, as a new user types them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_tables import headers, row
from typer.testing import CliRunner

from sender.cli import app
from sender.core.config import reset_settings

WIDE = {"COLUMNS": "100"}


@pytest.fixture(autouse=True)
def _own_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'campaign.db'}")
    env.delenv("CAMPAIGN", raising=False)
    reset_settings()


def _ok(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, list(args), env={**WIDE, **(env or {})})
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.split())


def test_from_init_to_a_second_campaign_beside_the_first(runner: CliRunner, tmp_path: Path) -> None:
    assert "wrote w4r-2026/campaign.yaml" in _ok(runner, "init", "w4r-2026")
    created = _ok(runner, "campaigns", "create", "w4r-2026")
    assert "campaign w4r-2026: created" in created
    assert "waves created: case-email, reminder, last-chance" in created
    assert "campaign w4r-2026: unchanged" in _ok(runner, "campaigns", "create", "w4r-2026")
    # One open campaign: commands need no --campaign.
    listing = _ok(runner, "wave", "list")
    assert "Waves of w4r-2026" in listing and "case-email │ case_email │ draft" in listing
    shown = _ok(runner, "campaigns", "show")
    assert "name Write for Rights 2026" in shown and "languages en" in shown

    root = Path(__file__).parents[2]
    _ok(runner, "campaigns", "create", str(root / "audiences" / "w4r-2020"))
    listed = _ok(runner, "campaigns", "list")
    assert listed.index("w4r-2020") < listed.index("w4r-2026")
    assert "2020-10-01 to 2021-01-31" in listed

    # Two open campaigns: a command that needs one names them and exits non-zero.
    refused = runner.invoke(app, ["wave", "list"], env=WIDE)
    assert refused.exit_code != 0
    assert "2 campaigns are open (w4r-2020, w4r-2026)" in str(refused.exception)
    by_flag = _ok(runner, "wave", "list", "--campaign", "w4r-2020")
    assert "human-rights-day-reminder" in by_flag
    by_env = _ok(runner, "wave", "list", env={"CAMPAIGN": "w4r-2026"})
    assert "reminder" in by_env and "human-rights-day" not in by_env


def test_close_asks_first_then_stops_the_campaign(runner: CliRunner) -> None:
    _ok(runner, "init", "w4r-2026")
    _ok(runner, "campaigns", "create", "w4r-2026")
    declined = runner.invoke(app, ["campaigns", "close", "w4r-2026"], input="n\n", env=WIDE)
    assert declined.exit_code != 0
    assert "status open" in _ok(runner, "campaigns", "show", "w4r-2026")
    closed = _ok(runner, "campaigns", "close", "w4r-2026", "--yes")
    assert "wave case-email stopped" in closed and "campaign w4r-2026 closed" in closed
    assert "status closed since" in _ok(runner, "campaigns", "show", "w4r-2026")
    launch = runner.invoke(app, ["wave", "launch", "reminder", "--campaign", "w4r-2026"])
    assert "campaign 'w4r-2026' is closed" in str(launch.exception)
    # Without an open campaign, commands say what there is.
    nothing = runner.invoke(app, ["wave", "list"])
    assert "no campaign is open (closed: w4r-2026)" in str(nothing.exception)


def test_a_broken_folder_is_refused_with_file_and_field(runner: CliRunner, tmp_path: Path) -> None:
    _ok(runner, "init", "w4r-2026")
    path = tmp_path / "w4r-2026" / "campaign.yaml"
    path.write_text(path.read_text().replace("languages: [en]", "languages: [en, klingon-x]"))
    result = runner.invoke(app, ["campaigns", "create", "w4r-2026"])
    assert result.exit_code != 0
    assert "campaign.yaml: languages[1]: unknown language 'klingon-x'" in str(result.exception)
    assert "no campaign yet" in " ".join(_ok(runner, "campaigns", "list").split())


def test_wave_list_shows_every_header_and_figure_at_80_columns(runner: CliRunner) -> None:
    _ok(runner, "init", "w4r-2026")
    _ok(runner, "campaigns", "create", "w4r-2026")
    result = runner.invoke(app, ["wave", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "…" not in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    wanted = ["wave", "kind", "status", "starts (UTC)", "planned", "sent", "skipped", "failed"]
    assert headers(result.output) == wanted
    assert row(result.output, "last-chance")[:2] == ["last_chance", "draft"]
    assert row(result.output, "last-chance")[-4:] == ["0", "0", "0", "0"]
