"""`campaign staff ...`: staff accounts, their roles and campaign limits (admin only).

Every change goes through audited_change, so it is checked against the actor's role
and recorded; the password never reaches the audit log, only the account's summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from sender.cli.common import (
    audited_change,
    console,
    current_actor,
    fitted_tables,
    open_database,
)
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.errors import Forbidden, InvalidInput
from sender.staff import accounts
from sender.staff.accounts import Account
from sender.staff.actions import What
from sender.staff.passwords import password_problem
from sender.staff.roles import Role, at_least, role_named

app = typer.Typer(help="Staff accounts: add, list, disable, roles (admin).", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(metavar="EMAIL", help="The account's address.")]
CampaignsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--campaign",
        metavar="SLUG",
        help="Limit the account to this campaign; repeatable (default: every campaign).",
    ),
]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _password(from_stdin: bool, email: str) -> str:
    """The new password, refused with the rule's own words when it is weak."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"password for {email}", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, email)
    if problem is not None:
        raise InvalidInput(problem)
    return password


AccountChange = Callable[[Session, datetime], Account]


def _now_account(change: AccountChange) -> Account:
    """One account change in its own transaction, at the current time."""
    with session_scope(open_database()) as session:
        return change(session, SystemClock().now())


def _before(email: str) -> str | None:
    with session_scope(open_database()) as session:
        found = accounts.find(session, email)
    return None if found is None else found.summary()


def _summary(account: Account) -> str:
    return account.summary()


@app.command()
def add(
    email: EmailArgument,
    role: Annotated[str, typer.Option("--role", help="viewer, campaigner or admin.")],
    campaign: CampaignsOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an active account; the password is asked twice (or read with --password-stdin)."""
    chosen = role_named(role)

    def change() -> Account:
        password = _password(password_stdin, email)
        with session_scope(open_database()) as session:
            return accounts.add_account(
                session, email, chosen, password, SystemClock().now(), campaign or ()
            )

    account = audited_change(open_database(), What.STAFF_ADD, email, change, after=_summary)
    console.print(f"staff account {account.email} added: {account.summary()}")
    if account.role is Role.ADMIN:
        console.print("next: sign in on the web app and enrol two-factor sign-in")


@app.command("list")
def list_() -> None:
    """Every account: role, campaign limit, two-factor, state and last sign-in."""
    _require_admin("staff list")
    with session_scope(open_database()) as session:
        found = accounts.all_accounts(session)
    if not found:
        console.print("no staff accounts yet: `campaign staff add EMAIL --role admin`")
        return
    headers = ["email", "role", "campaigns", "2FA", "state", "last login (UTC)"]
    rows = [
        [
            a.email,
            a.role.value,
            ",".join(a.campaigns) or "all",
            "on" if a.two_factor else "off",
            "disabled" if a.disabled else "active",
            f"{a.last_login_at:%Y-%m-%d %H:%M}" if a.last_login_at else "never",
        ]
        for a in found
    ]
    for table in fitted_tables("Staff accounts", headers, rows):
        console.print(table)


def _require_admin(command: str) -> None:
    actor = current_actor()
    if not at_least(actor.role, Role.ADMIN):
        raise Forbidden(f"{command} needs the admin role; {actor.name} is {actor.role.value}")


def _change(what: What, email: str, change: AccountChange) -> Account:
    before = _before(email)
    run = partial(_now_account, change)
    return audited_change(open_database(), what, email, run, before=before, after=_summary)


def _reset(email: str) -> AccountChange:
    return lambda session, now: accounts.reset_two_factor(session, email, now)


@app.command()
def disable(email: EmailArgument) -> None:
    """Stop the account signing in; its live sessions end."""
    account = _change(What.STAFF_DISABLE, email, lambda s, now: accounts.disable(s, email, now))
    console.print(f"staff account {account.email} disabled")


@app.command()
def enable(email: EmailArgument) -> None:
    """Let a disabled account sign in again."""
    account = _change(What.STAFF_ENABLE, email, lambda s, now: accounts.enable(s, email, now))
    console.print(f"staff account {account.email} enabled")


@app.command()
def passwd(email: EmailArgument, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; the account's live sessions end."""

    def run() -> Account:
        # Asked after the role check, so a refused actor is never prompted.
        password = _password(password_stdin, email)
        return _now_account(
            lambda session, now: accounts.set_password(session, email, password, now)
        )

    before = _before(email)
    audited_change(open_database(), What.STAFF_PASSWORD, email, run, before=before, after=_summary)
    console.print(f"password of {email} changed; its sessions have ended")


@app.command("reset-2fa")
def reset_2fa(email: EmailArgument) -> None:
    """Forget the account's authenticator and recovery codes; it enrols again at sign-in."""
    account = _change(What.STAFF_RESET_2FA, email, _reset(email))
    console.print(f"two-factor sign-in of {account.email} reset: it enrols again at next sign-in")


@app.command()
def role(
    email: EmailArgument,
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="viewer, campaigner or admin.")],
    campaign: CampaignsOption = None,
    all_campaigns: Annotated[
        bool, typer.Option("--all-campaigns", help="Lift the account's campaign limit.")
    ] = False,
) -> None:
    """Change the role (and with --campaign the campaign limit); live sessions end."""
    if campaign and all_campaigns:
        raise InvalidInput("--campaign and --all-campaigns contradict each other")
    chosen = role_named(new_role)
    limit: list[str] | None = [] if all_campaigns else (campaign or None)

    def change(session: Session, now: datetime) -> Account:
        return accounts.set_role(session, email, chosen, now, limit)

    account = _change(What.STAFF_ROLE, email, change)
    console.print(f"staff account {account.email}: {account.summary()}")
