"""`campaign report`: sends, deliveries, opens, clicks and actions per case, wave, language, day."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from sender.cli.common import console, err_console, fitted_tables, open_database
from sender.core.csvsafe import to_csv
from sender.report.charts import write_chart
from sender.report.totals import Dimension, build_report

HELP = "Show campaign results per case, wave, language or day."


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def report_command(
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    by: Annotated[Dimension, typer.Option("--by", help="Group rows by.")] = Dimension.CASE,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also write a PNG bar chart here.")
    ] = None,
) -> None:
    report = build_report(open_database(), by)
    if format is Format.JSON:
        typer.echo(json.dumps(report, indent=2))
    elif format is Format.CSV:
        typer.echo(_csv(report), nl=False)
    else:
        tables = _tables(report)
        if any(report["bounce_totals"].values()):
            tables += _bounce_tables(report)
        for table in tables:
            console.print(table)
    if chart is not None:
        write_chart(report, chart)
        # stderr: stdout may be CSV or JSON piped elsewhere
        err_console.print(f"chart written to {chart}")


def _columns(report: dict[str, Any]) -> list[str]:
    return [str(m) for m in report["metrics"]]


def _csv(report: dict[str, Any]) -> str:
    metrics = _columns(report)
    rows = [
        [row["key"], row["label"], *(row["counts"][m] for m in metrics)] for row in report["rows"]
    ]
    rows.append(["all", "all", *(report["totals"][m] for m in metrics)])
    return to_csv([report["by"], "label", *metrics], rows)


def _tables(report: dict[str, Any]) -> list[Table]:
    metrics = _columns(report)
    headers = [report["by"], *(m.replace("_", " ") for m in metrics)]
    rows = [
        [row["label"], *(_cell(row["counts"][m]) for m in metrics)]
        for row in [*report["rows"], {"label": "all", "counts": report["totals"]}]
    ]
    return fitted_tables(f"Campaign results by {report['by']}", headers, rows)


def _bounce_tables(report: dict[str, Any]) -> list[Table]:
    """Bounces per the provider's classification, for the rows that had any."""
    classes = [str(c) for c in report["bounce_classes"]]
    headers = [report["by"], *(c.replace("_", " ") for c in classes)]
    bounced = [row for row in report["rows"] if any(row["bounces"].values())]
    rows = [
        [row["label"], *(_cell(row["bounces"][c]) for c in classes)]
        for row in [*bounced, {"label": "all", "bounces": report["bounce_totals"]}]
    ]
    return fitted_tables(f"Bounces by classification, by {report['by']}", headers, rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if isinstance(value, float) else f"{value:,}"
