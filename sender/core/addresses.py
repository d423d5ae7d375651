"""Email addresses: one normal form and one hash, used everywhere.

The hash lets suppressions outlive erasure: a forgotten supporter's address is
gone, but a re-import of it is still recognised and refused.
"""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email

from sender.core.errors import InvalidInput


def normalise_email(raw: str) -> str:
    """Syntax-checked, normalised address (no DNS); raises InvalidInput with the reason."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput(str(error)) from error
    # email-validator keeps the local part's case (it may matter to the mailbox),
    # but duplicates in CRM exports differ by case; campaigns treat them as one.
    return result.normalized.lower()


def email_hash(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def domain_of(normalised: str) -> str:
    return normalised.rsplit("@", 1)[-1]
