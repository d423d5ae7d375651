"""What every command needs: the console, settings, an up-to-date database and the actor."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select

from sender.core import db
from sender.core.config import Settings, get_settings
from sender.core.errors import Forbidden, InvalidInput
from sender.core.models import Campaign
from sender.staff import accounts, audit
from sender.staff.actions import What
from sender.staff.audit import Actor

T = TypeVar("T")

# Every command that acts on one campaign takes this; without it, the command
# uses the only open campaign or names the open ones (sender.campaign.campaigns).
CampaignOption = Annotated[
    str | None,
    typer.Option(
        "--campaign",
        envvar="CAMPAIGN",
        metavar="SLUG",
        help="The campaign (default: the only open one).",
    ),
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def open_database(settings: Settings | None = None) -> Engine:
    """The configured database, migrated on SQLite or refused when out of date."""
    engine = db.get_engine((settings or get_settings()).database_url)
    db.ensure_schema(engine)
    return engine


def campaign_slug(engine: Engine, campaign: str | None) -> str:
    """The slug of the campaign a command acts on (see CampaignOption)."""
    from sender.campaign.campaigns import resolve_campaign

    with db.session_scope(engine) as session:
        return resolve_campaign(session, campaign).slug


def fitted_tables(
    title: str,
    headers: list[str],
    rows: list[list[str]],
    width: int | None = None,
    keep: int = 1,
) -> list[Table]:
    """The table split into column groups, each narrow enough to print whole.

    Rich would otherwise squeeze a wide table into the terminal by cutting headers and
    figures to "…". The first `keep` columns (the row's name) repeat in every group, so
    each part still reads on its own.
    """
    limit = width or console.width
    widths = [max(len(h), *(len(r[i]) for r in rows)) + 3 for i, h in enumerate(headers)]
    fixed = 1 + sum(widths[:keep])  # the left border, then the name columns
    groups: list[list[int]] = [[]]
    used = fixed
    for i in range(keep, len(headers)):
        if groups[-1] and used + widths[i] > limit:
            groups.append([])
            used = fixed
        groups[-1].append(i)
        used += widths[i]
    tables = []
    for n, group in enumerate(groups, 1):
        part = title if len(groups) == 1 else f"{title} ({n}/{len(groups)})"
        table = Table(title=part)
        for i in [*range(keep), *group]:
            table.add_column(headers[i], justify="left" if i < keep else "right", no_wrap=True)
        for row in rows:
            table.add_row(*(row[i] for i in [*range(keep), *group]))
        tables.append(table)
    return tables


# Who is acting. The root callback (sender.cli) resolves --as once per command and sets
# it here, so reads and changes both see the same check. (Typer carries its own copy of
# click, whose current context is not public: a context variable is the plain way.)
_acting: ContextVar[Actor | None] = ContextVar("campaign_actor", default=None)
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="CAMPAIGN_AS",
        metavar="EMAIL",
        help="Act as this staff account (its role is checked). Default: the OS user, as admin.",
    ),
]


def acting_as(engine: Engine, email: str | None) -> Actor:
    """The OS user without --as; with it, an existing, enabled staff account."""
    if email is None:
        return audit.os_actor()
    with db.session_scope(engine) as session:
        if not accounts.any_accounts(session):
            raise InvalidInput(
                f"--as {email}: there are no staff accounts yet; add the first one without --as:"
                " `campaign staff add EMAIL --role admin`"
            )
        account = accounts.find(session, email)
    if account is None:
        raise Forbidden(f"--as {email}: no such staff account (`campaign staff list`)")
    if account.disabled:
        raise Forbidden(f"--as {email}: the account is disabled")
    return account.actor(audit.host_name())


def act_as(email: str | None) -> None:
    """Set who this command acts as (the root callback, once per command)."""
    _acting.set(acting_as(open_database(), email) if email else None)


def current_actor() -> Actor:
    return _acting.get() or audit.os_actor()


def campaign_id(engine: Engine, campaign: str | None) -> int:
    """The id of the campaign a command acts on, for the audit row and the campaign limit."""
    from sender.campaign.campaigns import resolve_campaign

    with db.session_scope(engine) as session:
        return resolve_campaign(session, campaign).id


def existing_campaign_id(engine: Engine, slug: str) -> int | None:
    """The id of a campaign that may not exist yet (`campaigns create` makes it)."""
    with db.session_scope(engine) as session:
        return session.scalar(select(Campaign.id).where(Campaign.slug == slug))


def audited_change(
    engine: Engine,
    what: What,
    target: str,
    change: Callable[[], T],
    *,
    campaign_id: int | None = None,
    before: str | None = None,
    after: Callable[[T], str | None] | None = None,
    detail: Callable[[T], str | None] | None = None,
) -> T:
    """Run `change` as the current actor: role checked, outcome in the audit log."""
    return audit.audited(
        engine,
        current_actor(),
        what,
        target,
        change,
        campaign_id=campaign_id,
        before=before,
        after=after,
        detail=detail,
    )
