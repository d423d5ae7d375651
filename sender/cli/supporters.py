"""`campaign supporters`: import CRM exports, erase a supporter, count them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine, func, select

from sender.audience.erasure import ForgetResult, forget_supporter
from sender.audience.import_runs import import_counts
from sender.audience.importer import ImportReport, import_supporters
from sender.cli.common import audited_change, console, open_database
from sender.core.db import session_scope
from sender.core.errors import CampaignError
from sender.core.models import Supporter
from sender.core.speedups import prompt_switches
from sender.staff.actions import What

app = typer.Typer(help="Supporter lists: import, erase, count.", no_args_is_help=True)

# Below this size the bar would only flash.
PROGRESS_FROM_BYTES = 2_000_000


def _fail(error: CampaignError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {error}")
    return typer.Exit(2)


def _summary(report: ImportReport) -> Table:
    table = Table(title=f"Import of {report.path}", show_header=True)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_row("rows read", f"{report.rows:,}")
    table.add_row("[green]imported[/]", f"{report.imported:,}")
    table.add_row("updated", f"{report.updated:,}")
    table.add_row("unchanged", f"{report.unchanged:,}")
    for reason, count in sorted(report.rejected.items()):
        table.add_row(f"[red]rejected: {reason}[/]", f"{count:,}")
    for warning, count in sorted(report.warnings.items()):
        table.add_row(f"[yellow]warning: {warning} (default used)[/]", f"{count:,}")
    if report.blank_lines:
        table.add_row("blank lines skipped", f"{report.blank_lines:,}")
    if report.latin1_lines:
        table.add_row("lines read as Latin-1", f"{report.latin1_lines:,}")
    return table


def _import(
    engine: Engine, file: Path, source: str | None, errors: Path | None, size: int
) -> ImportReport:
    if size < PROGRESS_FROM_BYTES:
        return import_supporters(engine, file, source=source, errors_path=errors)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("importing", total=size)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return import_supporters(engine, file, source=source, errors_path=errors, progress=advance)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV export (UTF-8 or Latin-1; , ; or tab).")],
    source: Annotated[str | None, typer.Option(help="Where the list came from.")] = None,
    errors: Annotated[
        Path | None, typer.Option(help="Write rejected rows, with line and reason, here.")
    ] = None,
) -> None:
    """Import or update supporters from a CRM export; bad rows are reported, not fatal."""
    try:
        engine = open_database()
        size = file.stat().st_size if file.exists() else 0
        # The importer's database thread waits on the GIL after each write: this
        # process wants it back promptly (sender.core.speedups).
        with prompt_switches():
            report = audited_change(
                engine,
                What.IMPORT,
                file.name,
                lambda: _import(engine, file, source, errors, size),
                detail=import_counts,
            )
    except CampaignError as error:
        raise _fail(error) from error
    console.print(_summary(report))
    for rejection in report.examples[:5]:
        console.print(f"  line {rejection.line}: {rejection.reason.value}: {rejection.detail}")
    if report.rejected_total and report.errors_path:
        console.print(f"rejected rows written to {report.errors_path}")
    elif report.rejected_total:
        console.print("use --errors FILE.csv to get every rejected row with its reason")


@app.command()
def forget(email: Annotated[str, typer.Argument(help="The supporter's address.")]) -> None:
    """Erase a supporter's personal data; the address stays suppressed by hash."""
    try:
        engine = open_database()
        result = audited_change(
            engine,
            What.FORGET,
            "supporter",
            lambda: forget_supporter(engine, email),
            after=ForgetResult.audit_after,
            detail=ForgetResult.audit_detail,
        )
    except CampaignError as error:
        raise _fail(error) from error
    note = " (was already forgotten)" if result.already_forgotten else ""
    console.print(f"supporter #{result.supporter_id} forgotten{note}; re-imports will be refused")


@app.command()
def count() -> None:
    """Supporters by status, and how many may be emailed."""
    try:
        engine = open_database()
    except CampaignError as error:
        raise _fail(error) from error
    with session_scope(engine) as session:
        rows = session.execute(
            select(Supporter.status, Supporter.consent, func.count()).group_by(
                Supporter.status, Supporter.consent
            )
        ).all()
    table = Table(show_header=True)
    for name in ("status", "consent", "supporters"):
        table.add_column(name)
    for status, consent, number in sorted(rows, key=lambda r: (str(r[0]), bool(r[1]))):
        table.add_row(str(status), "yes" if consent else "no", f"{number:,}")
    console.print(table)
