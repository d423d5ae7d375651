"""`campaign cases load|list`: the cases file and the cases it loaded.

One case's status (pause, resume, resolve) is `campaign case` (sender.cli.case_control).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from sender.campaign.cases import list_cases, load_cases
from sender.cli.common import CampaignOption, audited_change, campaign_id, console, open_database
from sender.staff.actions import What

app = typer.Typer(help="Cases supporters write for.", no_args_is_help=True)


@app.command()
def load(
    path: Annotated[
        Path, typer.Argument(help="A cases YAML file, e.g. audiences/w4r-2020/cases.yaml")
    ],
    campaign: CampaignOption = None,
) -> None:
    """Create or update the file's cases (safe to run again; nothing is deleted)."""
    engine = open_database()
    report = audited_change(
        engine,
        What.CASES_LOAD,
        path.name,
        lambda: load_cases(engine, path, campaign),
        campaign_id=campaign_id(engine, campaign),
        detail=lambda r: (
            f"file {path.name}: {len(r.created)} created, {len(r.updated)} updated,"
            f" {len(r.unchanged)} unchanged"
        ),
    )
    table = Table("outcome", "cases", title=f"cases from {path}")
    for label, slugs in (
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("not in file (kept)", report.not_in_file),
    ):
        table.add_row(label, f"{len(slugs)}  {' '.join(slugs)}".rstrip())
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]note:[/] {warning}")


@app.command("list")
def list_(campaign: CampaignOption = None) -> None:
    """Show every case with its status, languages and exclusions."""
    cases = list_cases(open_database(), campaign)
    # Staff copy slugs into other commands: never wrap or cut them.
    slug = Column("slug", no_wrap=True, min_width=max((len(c.slug) for c in cases), default=4))
    table = Table(slug, "person", "country", "status", "languages", "excluded", "action page")
    for case in cases:
        table.add_row(
            case.slug,
            case.person,
            case.country,
            case.status,
            " ".join(case.languages),
            " ".join(case.excluded_countries) or "-",
            case.action_url or "built-in",
        )
    console.print(table)
