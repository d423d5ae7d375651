"""`campaign secret`: a new random value for SECRET_KEY, INBOUND_SECRET and the other secrets.

Production refuses published, short or low-entropy secrets (sender.core.runmode);
this prints one it accepts. Without the project installed, the same:
``python3 -c 'import secrets; print(secrets.token_urlsafe(32))'``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from werkzeug.security import generate_password_hash

from sender.core.errors import InvalidInput
from sender.core.runmode import secret_weakness

HELP = "Print a new random secret (SECRET_KEY, INBOUND_SECRET, tokens), or a password's hash."
SECRET_BYTES = 32


def new_secret() -> str:
    """32 random bytes, URL-safe: fits an env file, a URL and a basic-auth password."""
    return secrets.token_urlsafe(SECRET_BYTES)


def password_hash(password: str) -> str:
    """The STAFF_PASSWORD value for `password`, refused when production would refuse it."""
    weakness = secret_weakness(password)
    if weakness is not None:
        raise InvalidInput(f"that password {weakness}; choose a passphrase of 32 or more bytes")
    return generate_password_hash(password)


def secret_command(
    hash_password: Annotated[
        bool,
        typer.Option(
            "--password-hash",
            help="Ask for a staff password (hidden) and print its hash for STAFF_PASSWORD.",
        ),
    ] = False,
) -> None:
    if not hash_password:
        typer.echo(new_secret())
        return
    # The prompt goes to stderr, so `$(campaign secret --password-hash)` captures the hash only.
    password = typer.prompt("staff password", hide_input=True, confirmation_prompt=True, err=True)
    typer.echo(password_hash(password))
