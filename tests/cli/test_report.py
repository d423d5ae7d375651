"""`campaign report`: table, CSV (formula-safe), JSON and a PNG chart."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cli_tables as tables
import pytest
from doctor_fixtures import NOW, add_campaign
from events_fixtures import ingest, seed, sg_event
from sqlalchemy import Engine, update
from typer.testing import CliRunner
from web_fixtures import GOOD_PASSWORD, audit_rows

from sender.cli import app
from sender.cli.common import console
from sender.core import db
from sender.core.config import Settings, reset_settings
from sender.core.models import Case
from sender.report.totals import Dimension, build_report
from sender.staff.accounts import add_account
from sender.staff.actions import What
from sender.staff.roles import Role
from sender.track.actions import process_pending_events

LIMITED = "limited.viewer@rights.ngo"


@pytest.fixture
def campaign_db(env: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'campaign.db'}"
    engine = db.get_engine(url)
    db.upgrade(engine)
    w = seed(engine)
    ingest(
        engine,
        [
            sg_event(w, 0, "delivered", 1),
            sg_event(w, 1, "click", 2, url="https://act.example.org/a/x"),
        ],
    )
    process_pending_events(engine, 100, Settings(secret_key="t"))
    with engine.begin() as c:  # a case name a spreadsheet would run as a formula
        c.execute(update(Case).values(person="=cmd|' /C calc'!A0"))
    env.setenv("DATABASE_URL", url)
    reset_settings()
    return engine


def test_table(campaign_db: Engine, runner: CliRunner) -> None:
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert "Campaign results by case" in result.output
    lines = result.output.splitlines()
    assert any(line.startswith("│ all") for line in lines)
    assert any(line.startswith("│ jani") for line in lines)


@pytest.mark.parametrize("width", [80, 120])
def test_table_shows_every_header_and_figure_whole(
    campaign_db: Engine, runner: CliRunner, env: pytest.MonkeyPatch, width: int
) -> None:
    env.setattr(console, "width", width)
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert all(len(line) <= width for line in result.output.splitlines())
    report = build_report(campaign_db, Dimension.CASE)
    metrics = [str(m) for m in report["metrics"]]
    assert tables.headers(result.output) == ["case", *(m.replace("_", " ") for m in metrics)]
    expected = [_figure(report["totals"][m]) for m in metrics]
    assert tables.row(result.output, "all") == expected


def _figure(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if isinstance(value, float) else f"{value:,}"


def test_csv_is_formula_safe(campaign_db: Engine, runner: CliRunner) -> None:
    result = runner.invoke(app, ["report", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0][:4] == ["case", "label", "sends", "deliveries"]
    assert rows[1][1].startswith("'jani (=cmd") or rows[1][1].startswith("jani (=cmd")
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    assert rows[-1][0] == "all" and rows[-1][2] == "3"


def test_json_and_chart(campaign_db: Engine, runner: CliRunner, tmp_path: Path) -> None:
    chart = tmp_path / "cases.png"
    result = runner.invoke(
        app, ["report", "--format", "json", "--by", "language", "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["by"] == "language"
    assert {r["key"] for r in report["rows"]} == {"en", "es"}
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unwritable_chart_is_one_line_error(
    campaign_db: Engine, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["report", "--chart", str(tmp_path / "missing" / "x.png")])
    assert result.exit_code != 0
    assert "cannot write chart" in str(result.exception)


def test_an_account_limited_to_another_campaign_reads_only_its_own(
    campaign_db: Engine, runner: CliRunner
) -> None:
    """`--as` narrows reading as the workspace does: the refusal is recorded, nothing printed."""
    add_campaign(campaign_db, "w4r-2026")
    with db.session_scope(campaign_db) as session:
        add_account(session, LIMITED, Role.VIEWER, GOOD_PASSWORD, NOW, ["w4r-2026"])
    for args in (
        ["report", "--campaign", "w4r"],
        ["report", "--compare", "w4r,w4r-2026"],
        ["report", "--by", "variant", "--campaign", "w4r"],
    ):
        refused = runner.invoke(app, ["--as", LIMITED, *args])
        assert refused.exit_code != 0, args
        assert "may not act on this campaign" in str(refused.exception), args
        assert "jani" not in refused.output
    rows = audit_rows(campaign_db, What.REPORT_VIEW.value)
    assert [(r.outcome, r.target) for r in rows] == [("refused", "report w4r")] * 3
    own = runner.invoke(app, ["--as", LIMITED, "report", "--campaign", "w4r-2026"])
    assert own.exit_code == 0, own.output
    assert "Campaign results by case" in own.output
    # Without --as the command is the OS user's: every campaign, as before.
    assert runner.invoke(app, ["report", "--campaign", "w4r"]).exit_code == 0
