"""`campaign demo`: the whole campaign on embedded defaults, narrated."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from sender.cli.common import console
from sender.demo import DemoSummary, run_demo
from sender.scheduler import TickReport

HELP = "Run a whole Write for Rights campaign locally: import, assign, preview, send, act, report."


class RichNarrator:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        elapsed = time.monotonic() - self.started
        console.rule(f"[bold]{title}[/]  [dim]{elapsed:5.1f}s[/]")

    def tick(self, wave: str, now: datetime, report: TickReport) -> None:
        for line in report.lines():
            console.print(f"  [dim]{now:%d %b %H:%M} UTC[/]  {line}")


def demo_command(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo's database, mail and reports.")
    ] = Path("demo-output"),
    supporters: Annotated[int, typer.Option(help="Supporters in the generated CRM export.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed for the generated data.")] = 2020,
) -> None:
    summary = run_demo(directory.resolve(), RichNarrator(), supporters, seed)
    _print_summary(summary)


def _print_summary(summary: DemoSummary) -> None:
    imported = summary.imported
    console.print(
        f"imported {imported.imported}, updated {imported.updated}, "
        f"unchanged {imported.unchanged}, rejected {imported.rejected_total} "
        f"(see {summary.paths.rejected.name})"
    )
    waves = Table(title="Waves", show_lines=False)
    for column in ("wave", "kind", "planned", "requests", "recipients", "events", "replies"):
        waves.add_column(column, justify="left" if column in ("wave", "kind") else "right")
    for w in summary.waves:
        waves.add_row(w.name, w.kind, str(w.messages_planned), str(w.requests),
                      str(w.recipients), str(w.events), str(w.replies))  # fmt: skip
    console.print(waves)
    report = summary.report
    table = Table(title="Actions per case")
    shown = report["metrics"]
    table.add_column("case")
    for metric in shown:
        table.add_column(metric.replace("_", " "), justify="right")
    for row in [*report["rows"], {"label": "all", "counts": report["totals"]}]:
        table.add_row(row["label"], *(_cell(row["counts"].get(m, 0)) for m in shown))
    console.print(table)
    paths = summary.paths
    console.print(Panel.fit(
        f"database      {paths.database_url}\n"
        f"previews      {paths.previews}/\n"
        f"report        {paths.report_html}\n"
        f"chart         {paths.chart}\n"
        f"rejected rows {paths.rejected}\n"
        f"dashboard     DATABASE_URL={paths.database_url} {summary.dashboard_hint}",
        title="Where to look",
    ))  # fmt: skip


def _cell(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, float) else str(value)
