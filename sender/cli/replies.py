"""`campaign replies`: the solidarity messages export and the review list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine

from sender.cli.common import (
    CampaignOption,
    audited_change,
    console,
    err_console,
    open_database,
)
from sender.core.clock import SystemClock
from sender.core.config import Settings, get_settings
from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.staff.actions import What
from sender.track.inbound import parse_stored_reply
from sender.track.replies import EXPORT_HEADER, review_list, solidarity_messages, unparsed

app = typer.Typer(help="Replies from supporters.", no_args_is_help=True)


@app.command()
def export(
    case: Annotated[str, typer.Option("--case", help="The case's slug.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the CSV here instead of stdout.")
    ] = None,
    campaign: CampaignOption = None,
) -> None:
    """Solidarity messages for one case as CSV (no auto-replies, safe in spreadsheets)."""
    with session_scope(open_database()) as session:
        messages = solidarity_messages(session, case, campaign)
    text = to_csv(EXPORT_HEADER, [message.row() for message in messages])
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot write {out}: {error.strerror}") from error
    err_console.print(f"{len(messages)} messages written to {out}")


@app.command()
def review(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 100,
) -> None:
    """Replies that need a person: unmatched, unreadable, with a note, or matched to read."""
    with session_scope(open_database()) as session:
        items = review_list(session, limit)
    if not items:
        console.print("nothing to review")
        return
    table = Table(
        "id", "received", "status", "from", "SPF", "DKIM", "subject", "problem", title="review list"
    )
    for item in items:
        table.add_row(
            str(item.reply_id),
            item.received_at.strftime("%Y-%m-%d %H:%M"),
            item.status,
            item.from_email or "",
            item.spf,
            item.dkim,
            (item.subject or "")[:60],
            item.problem or "",
            style="red" if item.possibly_spoofed else None,
        )
    console.print(table)


@app.command()
def parse() -> None:
    """Parse replies that were stored but never parsed (a worker or Redis was down)."""
    settings = get_settings()
    engine = open_database(settings)
    outcomes = audited_change(
        engine,
        What.REPLY_PARSE,
        "unparsed replies",
        lambda: _parse_all(engine, settings),
        detail=_outcomes,
    )
    console.print(f"{sum(outcomes.values())} replies parsed" + _outcomes(outcomes, ": "))


def _parse_all(engine: Engine, settings: Settings) -> dict[str, int]:
    """How many stored replies ended in each status."""
    with session_scope(engine) as session:
        pending = unparsed(session)
    outcomes: dict[str, int] = {}
    for reply_id in pending:
        status = parse_stored_reply(engine, settings, reply_id, SystemClock().now())
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def _outcomes(outcomes: dict[str, int], prefix: str = "") -> str:
    summary = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
    return prefix + summary if summary else ""
