"""`campaign suppressions add|remove EMAIL`: staff's own do-not-email list (admin).

Suppressions are kept by address hash (sender.track.manual_suppressions); the
audit row names the hash's first characters, never the address.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sender.cli.common import audited_change, console, open_database
from sender.core.clock import SystemClock
from sender.staff.actions import What
from sender.track import manual_suppressions as manual

app = typer.Typer(help="Addresses never to email: add or lift a manual one.", no_args_is_help=True)

EmailArgument = Annotated[str, typer.Argument(metavar="EMAIL", help="The address.")]


@app.command()
def add(
    email: EmailArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why, in a few words (kept in the log).")],
) -> None:
    """Never email this address again, until `suppressions remove`."""
    why = manual.checked_reason(reason)
    digest = manual.digest_of(email)
    engine = open_database()
    created = audited_change(
        engine,
        What.SUPPRESS,
        manual.target(digest),
        lambda: manual.suppress(engine, digest, why, SystemClock().now()),
        before=manual.state(engine, digest),
        after=lambda _: manual.state(engine, digest),
        detail=lambda _: f"reason: {why}",
    )
    console.print("address suppressed" if created else "the address was already suppressed")


@app.command()
def remove(email: EmailArgument) -> None:
    """Lift a manual suppression (an unsubscribe, complaint, bounce or erasure stays)."""
    digest = manual.digest_of(email)
    engine = open_database()
    removed = audited_change(
        engine,
        What.UNSUPPRESS,
        manual.target(digest),
        lambda: manual.lift(engine, digest),
        before=manual.state(engine, digest),
        after=lambda _: manual.state(engine, digest),
    )
    console.print("suppression lifted" if removed else "the address was not suppressed")
