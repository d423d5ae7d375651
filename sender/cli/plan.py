"""`campaign plan apply FILE`: declare the campaign's waves from a YAML plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sender.campaign.plan_file import load_plan
from sender.campaign.waves import apply_plan
from sender.cli.common import CampaignOption, audited_change, campaign_id, console, open_database
from sender.core.config import get_settings
from sender.staff.actions import What

app = typer.Typer(help="The campaign plan (waves in a YAML file).", no_args_is_help=True)


@app.command()
def apply(
    file: Annotated[Path, typer.Argument(help="plan YAML, e.g. audiences/w4r-2020/plan.yaml")],
    campaign: CampaignOption = None,
) -> None:
    """Create or update the plan's waves; running it again changes nothing."""
    templates = get_settings().templates_dir
    engine = open_database()
    result = audited_change(
        engine,
        What.PLAN_APPLY,
        file.name,
        lambda: apply_plan(engine, load_plan(file), campaign, templates),
        campaign_id=campaign_id(engine, campaign),
        detail=lambda r: (
            f"file {file.name}: {len(r.created)} created, {len(r.updated)} updated,"
            f" {len(r.unchanged)} unchanged, {len(r.kept)} kept"
        ),
    )
    for label, names in (
        ("created", result.created),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
        ("kept as launched (plan change ignored)", result.kept),
    ):
        if names:
            console.print(f"{label}: {', '.join(names)}")
