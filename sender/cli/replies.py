"""`campaign replies`: the solidarity export, the review list and staff's decisions.

The decisions are sender.track.reply_review's, audited as the workspace's are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine

from sender.campaign.cases import case_by_slug
from sender.cli.common import (
    CampaignOption,
    audited_change,
    campaign_id,
    console,
    current_actor,
    err_console,
    open_database,
)
from sender.core.clock import SystemClock
from sender.core.config import Settings, get_settings
from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.staff.actions import What
from sender.track import reply_review
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


ReplyId = Annotated[int, typer.Argument(help="The reply's id, as `campaign replies review` shows.")]


def _decided(
    engine: Engine,
    reply_id: int,
    what: What,
    campaign: str | None,
    change: Callable[[int | None], reply_review.Decision],
) -> None:
    """Audited against the reply's campaign, else --campaign's (a reply about no case)."""
    scope = reply_review.reply_campaign_id(engine, reply_id)
    if scope is None:
        scope = campaign_id(engine, campaign)
    decision = audited_change(
        engine,
        what,
        f"reply #{reply_id}",
        lambda: change(scope),
        campaign_id=scope,
        detail=reply_review.Decision.audit_detail,
    )
    console.print(f"reply #{reply_id} {decision.audit_detail()}")


@app.command()
def assign(
    reply_id: ReplyId,
    email: Annotated[str, typer.Option("--email", help="The supporter's address.")],
    case: Annotated[
        str | None, typer.Option("--case", help="For a reply naming no case: the case's slug.")
    ] = None,
    campaign: CampaignOption = None,
) -> None:
    """Count a review reply as the supporter's reply to its case."""
    engine, by = open_database(), current_actor().name
    _decided(
        engine,
        reply_id,
        What.REPLY_ASSIGN,
        campaign,
        lambda scope: reply_review.assign_reply(
            engine, reply_id, email, by, SystemClock().now(), campaign_id=scope, case_slug=case
        ),
    )


@app.command()
def dismiss(
    reply_id: ReplyId,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")],
    campaign: CampaignOption = None,
) -> None:
    """Take a reply off the review list, keeping why."""
    engine, by = open_database(), current_actor().name
    _decided(
        engine,
        reply_id,
        What.REPLY_DISMISS,
        campaign,
        lambda _: reply_review.dismiss_reply(engine, reply_id, reason, by, SystemClock().now()),
    )


@app.command()
def unsubscribe(reply_id: ReplyId, campaign: CampaignOption = None) -> None:
    """Unsubscribe a review reply's sender (a STOP the parser could not trust, say)."""
    engine, by = open_database(), current_actor().name
    _decided(
        engine,
        reply_id,
        What.REPLY_UNSUBSCRIBE,
        campaign,
        lambda _: reply_review.unsubscribe_sender(engine, reply_id, by, SystemClock().now()),
    )


@app.command()
def delivered(
    reply_ids: Annotated[list[int], typer.Argument(help="The messages' reply ids.")],
    case: Annotated[str, typer.Option("--case", help="The case's slug.")],
    campaign: CampaignOption = None,
) -> None:
    """Mark solidarity messages of a case delivered to its case team."""
    engine, by = open_database(), current_actor().name
    with session_scope(engine) as session:
        found = case_by_slug(session, case, campaign)
        case_id, scope = found.id, found.campaign_id
    done = audited_change(
        engine,
        What.REPLY_DELIVERED,
        f"case {case}",
        lambda: reply_review.mark_delivered(engine, case_id, reply_ids, by, SystemClock().now()),
        campaign_id=scope,
        detail=reply_review.Delivered.audit_detail,
    )
    console.print(f"{len(done.reply_ids)} messages marked delivered")
