"""What every command needs: the console, settings and an up-to-date database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from sender.core import db
from sender.core.config import Settings, get_settings

# Every command that acts on one campaign takes this; without it, the command
# uses the only open campaign or names the open ones (sender.campaign.campaigns).
CampaignOption = Annotated[
    str | None,
    typer.Option(
        "--campaign",
        envvar="CAMPAIGN",
        metavar="SLUG",
        help="The campaign (default: the only open one).",
    ),
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def open_database(settings: Settings | None = None) -> Engine:
    """The configured database, migrated on SQLite or refused when out of date."""
    engine = db.get_engine((settings or get_settings()).database_url)
    db.ensure_schema(engine)
    return engine


def campaign_slug(engine: Engine, campaign: str | None) -> str:
    """The slug of the campaign a command acts on (see CampaignOption)."""
    from sender.campaign.campaigns import resolve_campaign

    with db.session_scope(engine) as session:
        return resolve_campaign(session, campaign).slug


def fitted_tables(
    title: str,
    headers: list[str],
    rows: list[list[str]],
    width: int | None = None,
    keep: int = 1,
) -> list[Table]:
    """The table split into column groups, each narrow enough to print whole.

    Rich would otherwise squeeze a wide table into the terminal by cutting headers and
    figures to "…". The first `keep` columns (the row's name) repeat in every group, so
    each part still reads on its own.
    """
    limit = width or console.width
    widths = [max(len(h), *(len(r[i]) for r in rows)) + 3 for i, h in enumerate(headers)]
    fixed = 1 + sum(widths[:keep])  # the left border, then the name columns
    groups: list[list[int]] = [[]]
    used = fixed
    for i in range(keep, len(headers)):
        if groups[-1] and used + widths[i] > limit:
            groups.append([])
            used = fixed
        groups[-1].append(i)
        used += widths[i]
    tables = []
    for n, group in enumerate(groups, 1):
        part = title if len(groups) == 1 else f"{title} ({n}/{len(groups)})"
        table = Table(title=part)
        for i in [*range(keep), *group]:
            table.add_column(headers[i], justify="left" if i < keep else "right", no_wrap=True)
        for row in rows:
            table.add_row(*(row[i] for i in [*range(keep), *group]))
        tables.append(table)
    return tables
