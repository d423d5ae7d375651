"""`campaign audit`: read the audit log (admin), as a table or as CSV."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from sender.cli.common import campaign_id, console, current_actor, fitted_tables, open_database
from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.core.errors import Forbidden, InvalidInput
from sender.staff import audit
from sender.staff.roles import Role, at_least

HELP = "Who changed what, when and from where: newest first (admin)."

_AGO = re.compile(r"(\d+)([hd])")
TABLE_COLUMNS = ("at (UTC)", "actor", "action", "outcome", "target", "campaign", "before → after")


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"


def since_instant(text: str, now: datetime) -> datetime:
    """`24h`, `7d` (before now) or a date / ISO 8601 instant (UTC when it names no zone)."""
    ago = _AGO.fullmatch(text.strip().lower())
    if ago:
        number, unit = int(ago.group(1)), ago.group(2)
        return now - (timedelta(hours=number) if unit == "h" else timedelta(days=number))
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--since {text!r}: give a date (2026-12-01), an instant, or an age like 24h or 7d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
    actor = current_actor()
    if not at_least(actor.role, Role.ADMIN):
        raise Forbidden(f"reading the audit log needs the admin role; {actor.name} is {actor.role}")
    engine = open_database()
    start = since_instant(since, datetime.now(UTC)) if since else None
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
