"""`campaign suppressions add|remove EMAIL`: staff's own do-not-email list (admin).

Suppressions are kept by address hash (sender.track.suppressions); the audit row
names the hash's first characters, never the address.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine, select

from sender.cli.common import audited_change, console, open_database
from sender.core.addresses import email_hash, normalise_email
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Suppression
from sender.core.vocabulary import SuppressionReason
from sender.staff.actions import What
from sender.track import suppressions
from sender.track.suppressions import Suppressed

app = typer.Typer(help="Addresses never to email: add or lift a manual one.", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(metavar="EMAIL", help="The address.")]
HASH_SHOWN = 12  # enough to tell rows apart, too little to look an address up by


def _digest(email: str) -> str:
    return email_hash(normalise_email(email))


def _target(digest: str) -> str:
    return f"address sha256:{digest[:HASH_SHOWN]}"


def _state(engine: Engine, digest: str) -> str:
    with session_scope(engine) as session:
        reason = session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))
    return "not suppressed" if reason is None else f"suppressed ({reason})"


@app.command()
def add(
    email: EmailArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why, in a few words (kept in the log).")],
) -> None:
    """Never email this address again, until `suppressions remove`."""
    why = reason.strip()
    if not why:
        raise InvalidInput("--reason must say why the address is suppressed")
    digest = _digest(email)
    engine = open_database()

    def change() -> bool:
        item = Suppressed(digest, SuppressionReason.MANUAL)
        with session_scope(engine) as session:
            return suppressions.add(session, item, f"staff: {why}"[:64], SystemClock().now())

    created = audited_change(
        engine,
        What.SUPPRESS,
        _target(digest),
        change,
        before=_state(engine, digest),
        after=lambda _: _state(engine, digest),
        detail=lambda _: f"reason: {why}",
    )
    console.print("address suppressed" if created else "the address was already suppressed")


@app.command()
def remove(email: EmailArgument) -> None:
    """Lift a manual suppression (an unsubscribe, complaint, bounce or erasure stays)."""
    digest = _digest(email)
    engine = open_database()

    def change() -> bool:
        with session_scope(engine) as session:
            return suppressions.remove_manual(session, digest)

    removed = audited_change(
        engine,
        What.UNSUPPRESS,
        _target(digest),
        change,
        before=_state(engine, digest),
        after=lambda _: _state(engine, digest),
    )
    console.print("suppression lifted" if removed else "the address was not suppressed")
