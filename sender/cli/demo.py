"""`campaign demo`: the whole campaign on embedded defaults, narrated."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from sender.cli.common import console, fitted_tables
from sender.cli.report import Format, print_variants
from sender.core import db
from sender.devtools.demo import DemoSummary, run_demo
from sender.send.scheduler import TickReport

HELP = "Run a whole Write for Rights campaign locally: import, assign, preview, send, act, report."


# Short headers keep the per-case table to few parts on an 80-column terminal.
SHORT_HEADERS = {
    "sends": "sent", "deliveries": "deliv", "bounces": "bounce", "human_opens": "opens",
    "machine_opens": "m.opens", "clicks": "clicks", "machine_clicks": "m.click",
    "letters": "letters",
    "replies": "replies", "acted": "acted", "action_rate": "rate",
}  # fmt: skip


class RichNarrator:
    """Steps as rules, each wave as a progress bar over the simulated hours."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[dim]{task.fields[clock]}"),
            console=console,
        )
        self.task: TaskID | None = None

    def step(self, title: str) -> None:
        elapsed = time.monotonic() - self.started
        # A rule cuts a long title to one line; printed under it, the title wraps whole.
        console.rule(f"[dim]{elapsed:5.1f}s[/]", align="right")
        console.print(f"[bold]{title}[/]")

    def wave_started(self, wave: str) -> None:
        self.progress.start()
        self.task = self.progress.add_task(wave, total=None, clock="")

    def tick(self, wave: str, now: datetime, report: TickReport, sent: int) -> None:
        if self.task is None:
            return
        planned = sum(p.messages for p in report.planned)
        if planned:  # a subject test plans twice: its test share, then the rest
            total = self.progress.tasks[self.task].total or 0
            self.progress.update(self.task, total=total + planned)
        clock = f"campaign time {now:%d %b %H:%M} UTC"
        self.progress.update(self.task, advance=sent, clock=clock)
        for line in report.lines():
            if not line.startswith("released"):  # routine; the bar shows it
                self.progress.console.print(f"  [dim]{now:%d %b %H:%M}[/]  {line}")

    def wave_finished(self, wave: str) -> None:
        self.progress.stop()
        self.task = None


def demo_command(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo's database, mail and reports.")
    ] = Path("demo-output"),
    supporters: Annotated[int, typer.Option(help="Supporters in the generated CRM export.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed for the generated data.")] = 2020,
) -> None:
    # Per-batch log lines would drown the progress bars; warnings still show.
    project_logs = logging.getLogger("sender")
    level = project_logs.level
    project_logs.setLevel(logging.WARNING)
    try:
        summary = run_demo(directory.resolve(), RichNarrator(), supporters, seed)
    finally:
        project_logs.setLevel(level)
    _print_summary(summary)


def _print_summary(summary: DemoSummary) -> None:
    imported = summary.imported
    console.print(
        f"imported {imported.imported}, updated {imported.updated}, "
        f"unchanged {imported.unchanged}, rejected {imported.rejected_total} "
        f"(see {summary.paths.rejected.name})"
    )
    wave_headers = ["wave", "kind", "planned", "requests", "recipients", "events", "replies",
                    "letters"]  # fmt: skip
    wave_rows = [
        [
            w.name,
            w.kind,
            *map(
                str, (w.messages_planned, w.requests, w.recipients, w.events, w.replies, w.letters)
            ),
        ]
        for w in summary.waves
    ]
    for table in fitted_tables("Waves", wave_headers, wave_rows, keep=2):
        console.print(table)
    report = summary.report
    rows = [
        [str(row["label"]).split(" (")[0], *(_cell(row["counts"].get(m, 0)) for m in SHORT_HEADERS)]
        for row in [*report["rows"], {"label": "all", "counts": report["totals"]}]
    ]
    title = "Actions per case (machine opens are mail-privacy proxies, not people)"
    for table in fitted_tables(title, ["case", *SHORT_HEADERS.values()], rows):
        console.print(table)
    paths = summary.paths
    print_variants(db.get_engine(paths.database_url), None, Format.TABLE)
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
