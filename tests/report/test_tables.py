"""sender.report.tables: the workspace page, its CSV and `campaign report` print the same cells."""

from __future__ import annotations

import csv
import html
import io
import re

import cli_tables
import pyotp
import pytest
from flask.testing import FlaskClient
from reports_fixtures import FORMULA, NEW, OLD, two_campaigns
from sqlalchemy import Engine
from typer.testing import CliRunner
from web_fixtures import add_staff, enrol_staff, make_app, sign_in

from sender.cli import app
from sender.core.config import reset_settings
from sender.core.errors import InvalidInput
from sender.report.bars import LIMIT, Bar, Chart, charts, svg
from sender.report.tables import By, Column, Kind, Table, View, build_view, by_named, show
from sender.staff.roles import Role

_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
_CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)


def page_rows(page: str) -> list[list[str]]:
    """The first report table's body rows, as the browser shows their text."""
    table = page.split('data-testid="report-table"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [[html.unescape(c) for c in _CELL.findall(row)] for row in _ROW.findall(body)]


def csv_as_shown(text: str, table: Table) -> list[list[str]]:
    """The CSV's cells formatted as the page formats them, its CSV-only columns left out."""
    columns = [c for c in table.columns if c.in_csv]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [c.key for c in columns]
    shown = []
    for row in rows[1:]:
        cells = []
        for value, column in zip(row, columns, strict=True):
            if not column.shown:
                continue
            if column.kind is Kind.TEXT:
                cells.append(value.removeprefix("'") if value.startswith("'=") else value)
            elif value == "":
                cells.append(show(None, column.kind))
            else:
                number = float(value) if column.kind is Kind.RATE else int(value)
                cells.append(show(number, column.kind))
        shown.append(cells)
    return shown


@pytest.fixture
def reader(pg_engine: Engine) -> FlaskClient:
    two_campaigns(pg_engine)
    account = add_staff(pg_engine, Role.ADMIN, email="ana@example.org")
    client = make_app(pg_engine).test_client()
    code = pyotp.TOTP(enrol_staff(pg_engine, account)).now()
    assert sign_in(client, email="ana@example.org", code=code) == 302
    return client


@pytest.mark.parametrize("by", [By.CASE, By.WAVE, By.LANGUAGE, By.DAY])
def test_the_page_the_csv_and_the_cli_agree(
    pg_engine: Engine, reader: FlaskClient, env: pytest.MonkeyPatch, runner: CliRunner, by: By
) -> None:
    view = build_view(pg_engine, by, NEW)
    table = view.tables[0]
    expected = table.shown()
    page = reader.get(f"/workspace/reports/?campaign={NEW}&by={by.value}").get_data(as_text=True)
    assert page_rows(page) == expected
    download = reader.get(f"/workspace/reports/report.csv?campaign={NEW}&by={by.value}")
    assert download.get_data(as_text=True) == view.csv()
    assert csv_as_shown(view.csv(), table) == expected
    env.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    reset_settings()
    result = runner.invoke(app, ["report", "--campaign", NEW, "--by", by.value])
    assert result.exit_code == 0, result.output
    assert cli_tables.headers(result.output) == table.headings()
    for row in expected:
        assert [row[0], *cli_tables.row(result.output, row[0])] == row


def test_a_comparison_agrees_between_the_page_the_csv_and_the_cli(
    pg_engine: Engine, reader: FlaskClient, env: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    view = build_view(pg_engine, By.CASE, NEW, [OLD])
    page = reader.get(f"/workspace/reports/?campaign={NEW}&compare={OLD}").get_data(as_text=True)
    assert page_rows(page) == view.tables[0].shown()
    assert (
        reader.get(f"/workspace/reports/report.csv?campaign={NEW}&compare={OLD}").get_data(
            as_text=True
        )
        == view.csv()
    )
    env.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    reset_settings()
    result = runner.invoke(app, ["report", "--compare", f"{NEW},{OLD}", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output == view.csv()
    shown = runner.invoke(app, ["report", "--compare", f"{NEW},{OLD}"]).output
    titles = [shown.index(table.title) for table in view.tables]
    for table, start, end in zip(view.tables, titles, [*titles[1:], len(shown)], strict=True):
        part = shown[start:end]
        assert cli_tables.headers(part) == table.headings()
        for row in table.shown():
            assert [row[0], *cli_tables.row(part, row[0])] == row


def test_by_named_lists_the_choices() -> None:
    assert by_named(" Wave ") is By.WAVE
    with pytest.raises(InvalidInput, match="by must be one of case, wave, language, day, variant"):
        by_named("supporter")


def test_the_csv_is_formula_safe_and_keeps_the_total(pg_engine: Engine) -> None:
    two_campaigns(pg_engine)
    rows = list(csv.reader(io.StringIO(build_view(pg_engine, By.WAVE, NEW).csv())))
    assert [r[1] for r in rows if r[1].endswith('x")')] == ["'" + FORMULA]
    assert rows[-1][:2] == ["all", "all"]


def test_a_chart_is_labelled_for_screen_readers_and_escapes_its_text() -> None:
    chart = Chart("sends <by> case", (Bar("a & b", 3.0, "3"), Bar("c", 0.0, "0")))
    drawn = svg(chart, "c1")
    assert 'role="img"' in drawn and 'aria-labelledby="c1-title c1-desc"' in drawn
    assert '<title id="c1-title">sends &lt;by&gt; case</title>' in drawn
    assert "2 bars. a &amp; b: 3; c: 0" in drawn
    assert drawn.count('class="bar-label"') == 2 and drawn.count('class="bar-value"') == 2
    assert "Nothing to draw yet." in svg(Chart("empty", ()), "c2")


def test_a_long_table_draws_its_first_bars_and_says_how_many_more() -> None:
    columns = (Column("label", "day", Kind.TEXT), Column("sends", "sends", charted=True))
    rows = tuple((f"2026-12-{n:02d}", n) for n in range(1, LIMIT + 6))
    ((chart,),) = charts(View("t", By.DAY, ("x",), (Table("by day", columns, rows),)))
    assert len(chart.bars) == LIMIT and chart.left_out == 5
    assert "5 more in the table" in chart.description()
