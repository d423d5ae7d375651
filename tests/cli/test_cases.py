from __future__ import annotations

from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign
from typer.testing import CliRunner

from sender.campaign.cases import list_cases
from sender.cli import app
from sender.cli.common import open_database
from sender.core.config import get_settings, reset_settings
from sender.core.db import get_engine
from sender.core.errors import InvalidInput, NotFound

CASES_FILE = Path(__file__).parent.parent.parent / "audiences" / "w4r-2020" / "cases.yaml"


@pytest.fixture(autouse=True)
def own_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # An absolute URL: get_engine caches by URL, and a relative one would keep
    # pointing at the previous test's file through pooled connections.
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'campaign.db'}")
    reset_settings()
    add_2020_campaign(open_database())


def test_load_prints_created_then_unchanged(runner: CliRunner, env: pytest.MonkeyPatch) -> None:
    first = runner.invoke(app, ["cases", "load", str(CASES_FILE)])
    assert first.exit_code == 0, first.output
    assert "created" in first.output and "7  idris-khattak" in first.output
    second = runner.invoke(app, ["cases", "load", str(CASES_FILE)])
    assert second.exit_code == 0
    assert "unchanged" in second.output and "7  idris-khattak" in second.output
    assert len(list_cases(get_engine(get_settings().database_url))) == 7


def test_list_and_pause(runner: CliRunner, env: pytest.MonkeyPatch) -> None:
    runner.invoke(app, ["cases", "load", str(CASES_FILE)])
    paused = runner.invoke(app, ["case", "pause", "jani-silva"])
    assert paused.exit_code == 0 and "case jani-silva paused" in paused.output
    listed = runner.invoke(app, ["cases", "list"])
    assert listed.exit_code == 0
    # The terminal may be narrow: the slug column is never cut, the rest may be.
    line = next(row for row in listed.output.splitlines() if "jani-silva" in row)
    assert "nassima-al-sada" in listed.output and " SA " in listed.output
    jani = next(
        c for c in list_cases(get_engine(get_settings().database_url)) if c.slug == "jani-silva"
    )
    assert jani.status == "paused" and jani.action_url is None and "CO" in line


def test_bad_file_is_a_campaign_error_and_loads_nothing(
    runner: CliRunner, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        CASES_FILE.read_text(encoding="utf-8").replace("status: active", "status: stopped", 1)
    )
    result = runner.invoke(app, ["cases", "load", str(bad)])
    assert isinstance(result.exception, InvalidInput)
    assert "case 'idris-khattak': bad status 'stopped'" in str(result.exception)
    assert list_cases(get_engine(get_settings().database_url)) == ()


def test_one_case_is_paused_resumed_and_resolved_under_case(
    runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    runner.invoke(app, ["cases", "load", str(CASES_FILE)])
    for command, status in (("pause", "paused"), ("resume", "active"), ("resolve", "resolved")):
        result = runner.invoke(app, ["case", command, "jani-silva"])
        assert result.exit_code == 0 and f"case jani-silva {status}" in result.output
    statuses = {c.slug: c.status for c in list_cases(get_engine(get_settings().database_url))}
    assert statuses["jani-silva"] == "resolved" and statuses["nassima-al-sada"] == "active"
    # One path per job: the old `cases status` is gone, and unknown slugs are one line.
    assert runner.invoke(app, ["cases", "status", "jani-silva", "paused"]).exit_code != 0
    unknown = runner.invoke(app, ["case", "pause", "nobody"])
    assert isinstance(unknown.exception, NotFound)
    assert "no case with slug 'nobody' in campaign 'w4r-2020'" in str(unknown.exception)
