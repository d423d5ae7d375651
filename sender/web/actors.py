"""Who acts on this request, and what they may do: the web's side of sender.staff.audit.

A signed-in account acts as itself with the role read on this request
(sender.web.sessions re-reads it each time). The bootstrap login, which works
only while no account exists, acts as an admin named ``bootstrap:<STAFF_USER>``
so that its changes are recorded as clearly not a person's.
"""

from __future__ import annotations

from flask import render_template
from flask_limiter.util import get_remote_address

from sender.core.errors import Forbidden
from sender.staff.actions import What
from sender.staff.audit import Actor, allowed
from sender.staff.roles import Role
from sender.web import sessions

BOOTSTRAP_PREFIX = "bootstrap:"
NOBODY = "anonymous"  # no session: reaches no staff view, but an Actor is never missing


def client_address() -> str:
    """The peer, or the client the trusted proxies name (ProxyFix rewrote REMOTE_ADDR)."""
    return get_remote_address()


def bootstrap_actor(user: str) -> Actor:
    return Actor(f"{BOOTSTRAP_PREFIX}{user}", Role.ADMIN, client_address())


def current_actor() -> Actor:
    account = sessions.current_account()
    if account is not None:
        return account.actor(client_address())
    user = sessions.bootstrap_user()
    if user is not None:
        return bootstrap_actor(user)
    return Actor(NOBODY, Role.VIEWER, client_address(), frozenset())


def can(what: str, campaign_id: int | None = None) -> bool:
    """For templates: show a control only to those whose role allows it."""
    return sessions.is_staff() and allowed(current_actor(), What(what), campaign_id)


def must_enrol() -> bool:
    """An admin account signs in with two factors: until it has one, it may only enrol."""
    account = sessions.current_account()
    return account is not None and account.role is Role.ADMIN and not account.two_factor


def forbidden_page(error: Forbidden) -> tuple[str, int]:
    """403 for a change the role does not allow; sender.staff.audit.check recorded it."""
    return render_template("web/dashboard/forbidden.html", reason=str(error)), 403
