"""`campaign report`: sends, deliveries, opens, clicks and actions per case, wave, language, day."""

from __future__ import annotations

import json
from dataclasses import astuple
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from sender.cli.common import (
    CampaignOption,
    campaign_slug,
    console,
    err_console,
    fitted_tables,
    open_database,
)
from sender.core.csvsafe import to_csv
from sender.report.campaigns import compare_campaigns
from sender.report.charts import write_chart
from sender.report.totals import Dimension, build_report
from sender.report.variants import FIGURE_KEYS, Figure, as_json, figures, summary, wave_tests

HELP = "Show campaign results per case, wave, language or day."


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class By(StrEnum):
    """The report's dimensions, and a subject test's variants (sender.report.variants)."""

    CASE = Dimension.CASE.value
    WAVE = Dimension.WAVE.value
    LANGUAGE = Dimension.LANGUAGE.value
    DAY = Dimension.DAY.value
    VARIANT = "variant"


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
    if by is By.VARIANT:
        print_variants(engine, campaign_slug(engine, campaign), format)
        return
    if compare is not None:
        _print_comparison(compare_campaigns(engine, _slugs(compare), Dimension(by)), format)
        return
    report = build_report(engine, Dimension(by), campaign_slug(engine, campaign))
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
        if report.get("unattributed"):
            counts = report["unattributed"]["counts"]
            figures = ", ".join(f"{v} {k}" for k, v in counts.items() if v and k != "action_rate")
            console.print(f"not attributable to any campaign (kept out of the totals): {figures}")
    if chart is not None:
        write_chart(report, chart)
        # stderr: stdout may be CSV or JSON piped elsewhere
        err_console.print(f"chart written to {chart}")


def print_variants(engine: Any, slug: str | None, format: Format) -> None:
    tests = wave_tests(engine, slug)
    if format is Format.JSON:
        typer.echo(json.dumps([as_json(t) for t in tests], indent=2))
        return
    headers = ["variant", "part", "sent", "human opens", "machine opens", "human clicks"]
    headers += ["machine clicks", "actions", "rate", "interval"]
    if format is Format.CSV:
        cells = [[t.wave, *astuple(r)] for t in tests for r in figures(t)]
        typer.echo(to_csv(["wave", *FIGURE_KEYS], cells), nl=False)
        return
    if not tests:
        console.print("no wave of this campaign runs a subject test")
    for test in tests:
        rows = [_variant_cells(r) for r in figures(test)]
        for table in fitted_tables(f"wave {test.wave} by variant", headers, rows, keep=2):
            console.print(table)
        console.print(summary(test))


def _variant_cells(row: Figure) -> list[str]:
    counts = [row.sent, row.human_opens, row.machine_opens, row.human_clicks]
    counts += [row.machine_clicks, row.actions]
    return [
        row.variant + (" (winner)" if row.winner else ""),
        row.part,
        *(f"{n:,}" for n in counts),
        f"{row.rate:.1%}",
        f"{row.low:.1%}–{row.high:.1%}",
    ]


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


def _slugs(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _print_comparison(comparison: dict[str, Any], format: Format) -> None:
    if format is Format.JSON:
        typer.echo(json.dumps(comparison, indent=2))
        return
    slugs, metrics = comparison["campaigns"], comparison["metrics"]
    if format is Format.CSV:
        header = [comparison["by"], *(f"{slug} {m}" for slug in slugs for m in metrics)]
        cells = [(row["key"], row["campaigns"]) for row in comparison["rows"]]
        cells.append(("all", comparison["totals"]))
        rows = [[key, *(_compared(c[s], m) for s in slugs for m in metrics)] for key, c in cells]
        typer.echo(to_csv(header, rows), nl=False)
        return
    # A table per figure, the campaigns side by side: it fits 80 columns and
    # reads as a comparison, where one wide table per campaign would not.
    for metric in metrics:
        table = Table(comparison["by"], *slugs, title=f"{metric}, year over year")
        for row in comparison["rows"]:
            table.add_row(row["key"], *(_compared(row["campaigns"][s], metric) for s in slugs))
        table.add_row("all", *(_compared(comparison["totals"][s], metric) for s in slugs))
        console.print(table)


def _compared(cells: dict[str, Any] | None, metric: str) -> str:
    if cells is None:
        return "-"
    value = cells[metric]
    if metric == "action_rate":
        return "-" if value is None else f"{value:.1%}"
    return str(value)
