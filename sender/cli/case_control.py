"""`campaign case pause|resume|resolve SLUG`: one case's status, and the per-case kill switch.

The case file and the list of cases are `campaign cases load|list` (sender.cli.cases).
"""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from sender.campaign.cases import case_by_slug, set_case_status
from sender.cli.common import CampaignOption, audited_change, campaign_id, console, open_database
from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.vocabulary import CaseStatus
from sender.staff.actions import What

app = typer.Typer(help="Stop, restart or close every email about one case.", no_args_is_help=True)


def _set(slug: str, status: CaseStatus, what: What, campaign: str | None) -> None:
    engine = open_database()
    case = audited_change(
        engine,
        what,
        f"case {slug}",
        lambda: set_case_status(engine, slug, status, campaign),
        campaign_id=campaign_id(engine, campaign),
        before=_status(engine, slug, campaign),
        after=lambda c: f"status={c.status}",
    )
    console.print(f"case {case.slug} {case.status}")


def _status(engine: Engine, slug: str, campaign: str | None) -> str | None:
    """The status before the change; None when the case does not exist (the change says why)."""
    try:
        with session_scope(engine) as session:
            return f"status={case_by_slug(session, slug, campaign).status}"
    except NotFound:
        return None


@app.command()
def pause(slug: str, campaign: CampaignOption = None) -> None:
    """Stop at once: unsent batches of this case wait, re-checked right before sending."""
    _set(slug, CaseStatus.PAUSED, What.CASE_PAUSE, campaign)


@app.command()
def resume(slug: str, campaign: CampaignOption = None) -> None:
    """Send this case's emails again."""
    _set(slug, CaseStatus.ACTIVE, What.CASE_RESUME, campaign)


@app.command()
def resolve(slug: str, campaign: CampaignOption = None) -> None:
    """The case is over (e.g. the person was freed): only good-news waves write about it."""
    _set(slug, CaseStatus.RESOLVED, What.CASE_RESOLVE, campaign)
