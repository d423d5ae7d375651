"""The `campaign` command: one sub-module per noun, registered here."""

from __future__ import annotations

import sys

import typer

from sender.cli import assign as assign_cli
from sender.cli import audit as audit_cli
from sender.cli import campaigns as campaigns_cli
from sender.cli import case_control as case_control_cli
from sender.cli import cases as cases_cli
from sender.cli import db as db_cli
from sender.cli import demo as demo_cli
from sender.cli import doctor as doctor_cli
from sender.cli import plan as plan_cli
from sender.cli import preview as preview_cli
from sender.cli import replies as replies_cli
from sender.cli import report as report_cli
from sender.cli import secret as secret_cli
from sender.cli import serve as serve_cli
from sender.cli import staff as staff_cli
from sender.cli import status as status_cli
from sender.cli import supporters as supporters_cli
from sender.cli import suppressions as suppressions_cli
from sender.cli import wave as wave_cli
from sender.cli.common import AsOption, act_as, console
from sender.core.errors import CampaignError
from sender.ops.logs import configure_logging

app = typer.Typer(
    name="campaign",
    help="Plan, send and measure letter-writing campaign emails.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _acting(acting: AsOption = None) -> None:
    """Plan, send and measure letter-writing campaign emails."""
    # Resolved before the command, so even a read needs an enabled account with --as.
    act_as(acting)


app.command("init", help=campaigns_cli.INIT_HELP)(campaigns_cli.init_command)
app.add_typer(campaigns_cli.app, name="campaigns")
app.add_typer(db_cli.app, name="db")
app.command("demo", help=demo_cli.HELP)(demo_cli.demo_command)
app.add_typer(wave_cli.app, name="wave")
app.add_typer(plan_cli.app, name="plan")
app.add_typer(case_control_cli.app, name="case")
app.command("tick")(wave_cli.tick_command)
app.command("run")(wave_cli.run_command)
app.add_typer(supporters_cli.app, name="supporters")
app.command("preview", help=preview_cli.HELP)(preview_cli.preview_command)
app.add_typer(cases_cli.app, name="cases")
app.command("assign", help=assign_cli.HELP)(assign_cli.assign_command)
app.command("report", help=report_cli.HELP)(report_cli.report_command)
app.add_typer(replies_cli.app, name="replies")
app.command("serve", help=serve_cli.HELP)(serve_cli.serve_command)
app.command("secret", help=secret_cli.HELP)(secret_cli.secret_command)
app.command("status", help=status_cli.HELP)(status_cli.status_command)
app.command("doctor", help=doctor_cli.HELP)(doctor_cli.doctor_command)
app.add_typer(staff_cli.app, name="staff")
app.add_typer(suppressions_cli.app, name="suppressions")
app.command("audit", help=audit_cli.HELP)(audit_cli.audit_command)


def main() -> None:
    configure_logging(stream=sys.stderr)  # stdout stays for command output
    try:
        app()
    except CampaignError as error:
        console.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
