"""`campaign case pause|resume|resolve SLUG`: one case's status, and the per-case kill switch.

The case file and the list of cases are `campaign cases load|list` (sender.cli.cases).
"""

from __future__ import annotations

import typer

from sender.campaign.cases import set_case_status
from sender.cli.common import CampaignOption, console, open_database
from sender.core.vocabulary import CaseStatus

app = typer.Typer(help="Stop, restart or close every email about one case.", no_args_is_help=True)


def _set(slug: str, status: CaseStatus, campaign: str | None) -> None:
    case = set_case_status(open_database(), slug, status, campaign)
    console.print(f"case {case.slug} {case.status}")


@app.command()
def pause(slug: str, campaign: CampaignOption = None) -> None:
    """Stop at once: unsent batches of this case wait, re-checked right before sending."""
    _set(slug, CaseStatus.PAUSED, campaign)


@app.command()
def resume(slug: str, campaign: CampaignOption = None) -> None:
    """Send this case's emails again."""
    _set(slug, CaseStatus.ACTIVE, campaign)


@app.command()
def resolve(slug: str, campaign: CampaignOption = None) -> None:
    """The case is over (e.g. the person was freed): no further wave writes about it."""
    _set(slug, CaseStatus.RESOLVED, campaign)
