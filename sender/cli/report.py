"""`campaign report`: sends, deliveries, opens, clicks and actions per case, wave, language, day."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from sender.cli.common import (
    CampaignOption,
    campaign_slug,
    console,
    current_actor,
    err_console,
    fitted_tables,
    open_database,
)
from sender.report.access import check_readable
from sender.report.campaigns import compare_campaigns
from sender.report.charts import write_chart
from sender.report.tables import By, View, build_view, report_view, variant_view
from sender.report.totals import Dimension, build_report
from sender.report.variants import as_json, wave_tests

HELP = "Show campaign results per case, wave, language or day."


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def report_command(
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    by: Annotated[
        By, typer.Option("--by", help="Group rows by (variant: each subject test's variants).")
    ] = By.CASE,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also write a PNG bar chart here.")
    ] = None,
    campaign: CampaignOption = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare", metavar="A,B", help="Campaigns side by side, e.g. w4r-2020,w4r-2026."
        ),
    ] = None,
) -> None:
    engine = open_database()
    # `--as` an account limited to some campaigns reads only theirs, as in the workspace.
    compared = compare is not None and by is not By.VARIANT
    slugs = _slugs(compare or "") if compared else [campaign_slug(engine, campaign)]
    check_readable(engine, current_actor(), slugs)
    if by is By.VARIANT:
        print_variants(engine, slugs[0], format)
        return
    if compared:
        if format is Format.JSON:
            typer.echo(json.dumps(compare_campaigns(engine, slugs, Dimension(by)), indent=2))
        else:
            _print_view(build_view(engine, by, None, slugs), format)
        return
    report = build_report(engine, Dimension(by), slugs[0])
    if format is Format.JSON:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_view(report_view(report), format)
    if chart is not None:
        write_chart(report, chart)
        # stderr: stdout may be CSV or JSON piped elsewhere
        err_console.print(f"chart written to {chart}")


def print_variants(engine: Any, slug: str | None, format: Format) -> None:
    tests = wave_tests(engine, slug)
    if format is Format.JSON:
        typer.echo(json.dumps([as_json(t) for t in tests], indent=2))
        return
    _print_view(variant_view(slug, tests), format)


def _print_view(view: View, format: Format) -> None:
    """The tables sender.report.tables made, as the workspace page shows them, or its CSV."""
    if format is Format.CSV:
        typer.echo(view.csv(), nl=False)
        return
    for table in view.tables:
        for part in fitted_tables(table.title, table.headings(), table.shown(), keep=table.keep):
            console.print(part)
        if table.note:
            console.print(table.note)
    for note in view.notes:
        console.print(note)


def _slugs(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
