"""`campaign plan apply FILE`: declare the campaign's waves from a YAML plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sender.campaign.plan_file import load_plan
from sender.campaign.waves import apply_plan
from sender.cli.common import CampaignOption, console, open_database

app = typer.Typer(help="The campaign plan (waves in a YAML file).", no_args_is_help=True)


@app.command()
def apply(
    file: Annotated[Path, typer.Argument(help="plan YAML, e.g. audiences/w4r-2020/plan.yaml")],
    campaign: CampaignOption = None,
) -> None:
    """Create or update the plan's waves; running it again changes nothing."""
    result = apply_plan(open_database(), load_plan(file), campaign)
    for label, names in (
        ("created", result.created),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
        ("kept as launched (plan change ignored)", result.kept),
    ):
        if names:
            console.print(f"{label}: {', '.join(names)}")
