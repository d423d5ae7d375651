"""`campaign case pause|resume SLUG`: the per-case kill switch."""

from __future__ import annotations

import typer

from sender.campaign import waves
from sender.cli.common import console, open_database
from sender.core.config import get_settings
from sender.core.vocabulary import CaseStatus

app = typer.Typer(help="Stop or restart every email about one case.", no_args_is_help=True)


@app.command()
def pause(slug: str) -> None:
    """Stop at once: unsent batches of this case wait, re-checked right before sending."""
    settings = get_settings()
    console.print(waves.set_case(open_database(settings), settings, slug, CaseStatus.PAUSED))


@app.command()
def resume(slug: str) -> None:
    settings = get_settings()
    console.print(waves.set_case(open_database(settings), settings, slug, CaseStatus.ACTIVE))
