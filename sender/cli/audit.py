"""`campaign audit`: read the audit log (admin), as a table or as CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from sender.cli.common import campaign_id, console, current_actor, fitted_tables, open_database
from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.staff import audit
from sender.staff.actions import What

HELP = "Who changed what, when and from where: newest first (admin)."

TABLE_COLUMNS = ("at (UTC)", "actor", "action", "outcome", "target", "campaign", "before → after")


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"


def audit_command(
    since: Annotated[
        str | None, typer.Option(help="2026-12-01, an ISO 8601 instant, or an age: 24h, 7d.")
    ] = None,
    who: Annotated[
        str | None, typer.Option(metavar="EMAIL", help="Only this actor (or os:USER, system).")
    ] = None,
    what: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PREFIX", help="Only these actions, e.g. wave or staff.add; repeatable."
        ),
    ] = None,
    campaign: Annotated[
        str | None, typer.Option(metavar="SLUG", help="Only rows about this campaign.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 200,
    output: Annotated[Format, typer.Option("--format", help="table or csv")] = Format.TABLE,
) -> None:
    engine = open_database()
    audit.check(engine, current_actor(), What.AUDIT_VIEW, "audit log")
    start = audit.parse_since(since, datetime.now(UTC)) if since else None
    only = campaign_id(engine, campaign) if campaign else None
    with session_scope(engine) as session:
        found = audit.entries(
            session, since=start, who=who, what=what or (), campaign_id=only, limit=limit
        )
    if output is Format.CSV:
        typer.echo(to_csv(list(audit.COLUMNS), audit.as_rows(found)), nl=False)
        return
    if not found:
        console.print("no audit rows match")
        return
    for part in fitted_tables("Audit log", list(TABLE_COLUMNS), _rows(found), keep=2):
        console.print(part)


def _rows(found: list[audit.Entry]) -> list[list[str]]:
    """The table's short form; `--format csv` has every column, detail included."""
    return [
        [
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor,
            e.action,
            e.outcome,
            e.target,
            "" if e.campaign_id is None else str(e.campaign_id),
            " → ".join(x for x in (e.before, e.after) if x) or (e.detail or ""),
        ]
        for e in found
    ]
