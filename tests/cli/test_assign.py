from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import insert
from typer.testing import CliRunner

from sender.cli import app
from sender.cli.common import open_database
from sender.core.config import reset_settings
from sender.core.errors import InvalidInput
from sender.core.models import Supporter

CASES_FILE = Path(__file__).parent.parent.parent / "audiences" / "w4r-2020" / "cases.yaml"


def _supporters(count: int, country: str) -> None:
    rows = [
        {
            "email": f"{country}{n}@example.org",
            "email_hash": hashlib.sha256(f"{country}{n}".encode()).hexdigest(),
            "country": country,
        }
        for n in range(count)
    ]
    with open_database().begin() as connection:
        connection.execute(insert(Supporter), rows)


@pytest.fixture(autouse=True)
def own_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # An absolute URL: get_engine caches by URL, and a relative one would keep
    # pointing at the previous test's file through pooled connections.
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'campaign.db'}")
    reset_settings()
    add_2020_campaign(open_database())


def test_assign_prints_per_case_table_and_unassignable(
    runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["cases", "load", str(CASES_FILE)]).exit_code == 0
    _supporters(60, "US")
    _supporters(10, "SA")
    result = runner.invoke(app, ["assign", "--strategy", "balanced"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "70 assignments created for 70 supporters; unassignable: 0" in result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if "│ " in line}
    assert set(rows) >= {"idris-khattak", "nassima-al-sada", "family-detention-us"}
    assert "10" in rows["nassima-al-sada"] and "14.29%" in rows["nassima-al-sada"]

    again = runner.invoke(app, ["assign"])
    assert "0 assignments created for 0 supporters" in again.output
    redo = runner.invoke(app, ["assign", "--reassign", "--seed", "4", "--cases-per-supporter", "2"])
    assert "140 assignments created for 70 supporters, 70 replaced" in redo.output


def test_unknown_strategy_is_refused(runner: CliRunner, env: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["assign", "--strategy", "random"])
    assert result.exit_code == 2 and "random" in result.output


def test_assign_before_cases_are_loaded_says_what_to_do(
    runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["assign"])
    assert isinstance(result.exception, InvalidInput)
    assert "campaign cases load" in str(result.exception)
