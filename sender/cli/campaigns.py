"""`campaign init DIR` and `campaign campaigns create|list|show|close`.

A campaign is a folder of data (sender.campaign.folder); these commands write
a starter folder and store folders in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sender.campaign.folder import read_folder
from sender.campaign.registry import (
    CampaignView,
    CreateReport,
    campaign_view,
    campaign_views,
    close_campaign,
    create_from_folder,
)
from sender.campaign.starter import write_starter
from sender.cli.common import (
    audited_change,
    campaign_id,
    campaign_slug,
    console,
    existing_campaign_id,
    open_database,
)
from sender.core.config import get_settings
from sender.staff.actions import What

app = typer.Typer(help="Campaigns: create from a folder, list, show, close.", no_args_is_help=True)

INIT_HELP = "Write a starter campaign folder (campaign.yaml, cases.yaml, plan.yaml) to edit."


def init_command(
    folder: Annotated[Path, typer.Argument(help="The new folder, e.g. audiences/w4r-2026.")],
    slug: Annotated[
        str | None, typer.Option(help="The campaign's short name (default: the folder's name).")
    ] = None,
) -> None:
    written = write_starter(folder, slug or folder.name, datetime.now(UTC))
    for path in written:
        console.print(f"wrote {path}")
    console.print(
        f"next: edit the three files, then `campaign campaigns create {folder}`"
        " (safe to run again after every edit)"
    )


@app.command()
def create(
    folder: Annotated[Path, typer.Argument(help="A campaign folder (see `campaign init`).")],
) -> None:
    """Store the folder's campaign, cases and waves; run it again after an edit."""
    templates = get_settings().templates_dir
    engine = open_database()
    found = read_folder(folder)
    slug = found.settings.slug
    report = audited_change(
        engine,
        What.CAMPAIGN_CREATE,
        slug,
        lambda: create_from_folder(engine, found, templates),
        campaign_id=existing_campaign_id(engine, slug),
        after=lambda r: f"campaign {r.outcome}",
        detail=lambda r: f"folder {folder.name}: {_counts(r)}",
    )
    _print_create(report)


def _counts(report: CreateReport) -> str:
    """How many cases and waves the folder created or changed, for the audit row."""
    cases = report.cases
    parts = [f"cases {len(cases.created)} created, {len(cases.updated)} updated"]
    if report.waves is not None:
        waves = report.waves
        parts.append(f"waves {len(waves.created)} created, {len(waves.updated)} updated")
    return "; ".join(parts)


def _print_create(report: CreateReport) -> None:
    console.print(f"campaign {report.slug}: {report.outcome}")
    for label, slugs in (
        ("created", report.cases.created),
        ("updated", report.cases.updated),
        ("unchanged", report.cases.unchanged),
        ("not in the folder (kept)", report.cases.not_in_file),
    ):
        if slugs:
            console.print(f"cases {label}: {', '.join(slugs)}")
    if report.waves is not None:
        for label, names in (
            ("created", report.waves.created),
            ("updated", report.waves.updated),
            ("unchanged", report.waves.unchanged),
            ("kept as launched (plan change ignored)", report.waves.kept),
        ):
            if names:
                console.print(f"waves {label}: {', '.join(names)}")
    for warning in report.cases.warnings:
        console.print(f"[yellow]note:[/] {warning}")


@app.command("list")
def list_() -> None:
    """Every campaign: open ones first send, closed ones are read-only."""
    views = campaign_views(open_database())
    if not views:
        console.print("no campaign yet: `campaign init DIR`, then `campaign campaigns create DIR`")
        return
    table = Table("slug", "status", "window (UTC)", "languages", "cases", "waves")
    for view in views:
        table.add_row(
            view.slug,
            view.status,
            _window(view),
            " ".join(view.languages),
            str(view.cases),
            _waves(view),
        )
    console.print(table)


@app.command()
def show(
    slug: Annotated[str | None, typer.Argument(help="Default: the only open campaign.")] = None,
) -> None:
    """One campaign's settings and counts."""
    engine = open_database()
    view = campaign_view(engine, campaign_slug(engine, slug))
    lines = [
        ("name", view.name),
        ("status", view.status + (f" since {view.closed_at:%Y-%m-%d}" if view.closed_at else "")),
        ("window", f"{_window(view)} (UTC; the campaign's time zone is {view.timezone})"),
        ("from", view.sender),
        ("replies to", view.reply_domain or "the installation's INBOUND_DOMAIN"),
        ("languages", " ".join(view.languages)),
        ("cases", str(view.cases)),
        ("assignments", str(view.assigned)),
        ("waves", _waves(view)),
    ]
    console.print(f"[bold]{view.slug}[/]")
    for label, value in lines:
        console.print(f"  {label:<12} {value}")


@app.command()
def close(
    slug: Annotated[str, typer.Argument(help="The campaign to close.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop every unfinished wave, then make the campaign read-only. It cannot be reopened."""
    if not yes:
        typer.confirm(f"close {slug}: stop its waves for good and make it read-only?", abort=True)
    engine = open_database()
    lines = audited_change(
        engine,
        What.CAMPAIGN_CLOSE,
        slug,
        lambda: close_campaign(engine, slug, datetime.now(UTC)),
        campaign_id=campaign_id(engine, slug),
        before=f"status={campaign_view(engine, slug).status}",
        after=lambda _: "status=closed",
        detail=lambda lines: f"{len(lines) - 1} waves stopped",
    )
    for line in lines:
        console.print(line)


def _window(view: CampaignView) -> str:
    """First and last day: the stored end is the first instant after the campaign."""
    last = view.window_end - timedelta(microseconds=1)
    return f"{view.window_start:%Y-%m-%d} to {last:%Y-%m-%d}"


def _waves(view: CampaignView) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(view.waves.items())) or "none"
