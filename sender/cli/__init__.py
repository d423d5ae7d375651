"""The `campaign` command: one sub-module per noun, registered here."""

from __future__ import annotations

import sys

import typer

from sender.cli import assign as assign_cli
from sender.cli import cases as cases_cli
from sender.cli import db as db_cli
from sender.cli.common import console
from sender.errors import CampaignError
from sender.logs import configure_logging

app = typer.Typer(
    name="campaign",
    help="Plan, send and measure letter-writing campaign emails.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_cli.app, name="db")
app.add_typer(cases_cli.app, name="cases")
app.command("assign", help=assign_cli.HELP)(assign_cli.assign_command)


def main() -> None:
    configure_logging(stream=sys.stderr)  # stdout stays for command output
    try:
        app()
    except CampaignError as error:
        console.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
