"""The `campaign` command: one sub-module per noun, registered here."""

from __future__ import annotations

import sys

import typer

from sender.cli import db as db_cli
from sender.cli.common import console
from sender.errors import CampaignError

app = typer.Typer(
    name="campaign",
    help="Plan, send and measure letter-writing campaign emails.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_cli.app, name="db")


def main() -> None:
    try:
        app()
    except CampaignError as error:
        console.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
