"""The three staff roles, in rank order.

Which role each change needs is the table sender.staff.actions.NEEDED.
"""

from __future__ import annotations

from enum import StrEnum

from sender.core.errors import InvalidInput


class Role(StrEnum):
    VIEWER = "viewer"  # status, reports, charts
    CAMPAIGNER = "campaigner"  # import, assign, preview, proofs, waves, case kill switch, replies
    ADMIN = "admin"  # everything, plus staff, erasure and suppression edits


_RANK = {Role.VIEWER: 0, Role.CAMPAIGNER: 1, Role.ADMIN: 2}


def role_named(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise InvalidInput(f"unknown role {text!r}: choose one of {choices}") from None


def at_least(role: Role, needed: Role) -> bool:
    return _RANK[role] >= _RANK[needed]
