"""Staff sessions: an absolute lifetime, an idle timeout and a server-side version.

The session is Flask's signed cookie. What makes it end:

* ``login`` + SESSION_LIFETIME_HOURS (8 h): however active the user, then a
  new login. The cookie's own expiry is set to that instant too, instead of
  Flask's sliding one.
* ``seen`` + SESSION_IDLE_MINUTES without a request.
* a version other than the one kept in the database
  (sender.core.staff_sessions): logout and a password change bump it, so a
  cookie copied before the logout fails after it.

Every request with a staff session is checked here before its view runs, so
views and the API ask only `is_staff()`. Times come from the app's clock
(sender.web.context.clock), so tests move it instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.staff_sessions import credential_digest, current_version, revoke_sessions
from sender.web import context

log = logging.getLogger(__name__)

STAFF = "staff"
USER = "user"
VERSION = "v"
LOGIN_AT = "login"
SEEN_AT = "seen"


class SessionEnd(StrEnum):
    EXPIRED = "expired"  # past the absolute lifetime
    IDLE = "idle"
    REVOKED = "revoked"  # logout, password change, another user configured
    MALFORMED = "malformed"  # a cookie this code did not write


@dataclass(frozen=True)
class Limits:
    lifetime: timedelta
    idle: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            timedelta(hours=settings.session_lifetime_hours),
            timedelta(minutes=settings.session_idle_minutes),
        )


def session_end(
    data: Mapping[str, object],
    now: datetime,
    limits: Limits,
    expected_user: str,
    version_of: Callable[[str], int],
) -> SessionEnd | None:
    """Why this staff session is over, or None while it is good. Reads the database last."""
    user, version = data.get(USER), data.get(VERSION)
    login_at, seen_at = data.get(LOGIN_AT), data.get(SEEN_AT)
    if not (isinstance(user, str) and isinstance(version, int)):
        return SessionEnd.MALFORMED
    if not (isinstance(login_at, int | float) and isinstance(seen_at, int | float)):
        return SessionEnd.MALFORMED
    instant = now.timestamp()
    if instant - login_at >= limits.lifetime.total_seconds() or instant < login_at:
        return SessionEnd.EXPIRED
    if instant - seen_at >= limits.idle.total_seconds():
        return SessionEnd.IDLE
    if user != expected_user or version != version_of(user):
        return SessionEnd.REVOKED
    return None


def _credential(settings: Settings) -> str:
    return credential_digest(settings.secret_key, settings.staff_user, settings.staff_password)


def _version_of(user: str) -> int:
    settings = context.settings()
    with session_scope(context.engine()) as db:
        return current_version(db, user, _credential(settings), context.clock().now())


def check_staff_session() -> None:
    """before_request: end a session that is over; note activity on one that is not."""
    if STAFF not in session:
        return
    settings = context.settings()
    now = context.clock().now()
    ended = session_end(
        session, now, Limits.from_settings(settings), settings.staff_user, _version_of
    )
    if ended is not None:
        session.clear()
        log.info("staff session ended: %s", ended.value)
        return
    session[SEEN_AT] = now.timestamp()


def begin(user: str) -> None:
    """A fresh session after a good password: no fixation, the current version."""
    now = context.clock().now()
    version = _version_of(user)
    session.clear()
    at = now.timestamp()
    session.update({STAFF: True, USER: user, VERSION: version, LOGIN_AT: at, SEEN_AT: at})
    session.permanent = True


def end_everywhere() -> None:
    """Logout: this session and every other one of the same user."""
    user = session.get(USER)
    if is_staff() and isinstance(user, str):
        settings = context.settings()
        with session_scope(context.engine()) as db:
            revoke_sessions(db, user, _credential(settings), context.clock().now())
    session.clear()


def is_staff() -> bool:
    """True only for a session that passed `check_staff_session` on this request."""
    return session.get(STAFF) is True


class StaffSessionInterface(SecureCookieSessionInterface):
    """The cookie expires at login + lifetime, not lifetime after every request."""

    def get_expiration_time(self, app: Flask, session: SessionMixin) -> datetime | None:
        login_at = session.get(LOGIN_AT)
        if session.permanent and isinstance(login_at, int | float):
            return datetime.fromtimestamp(login_at, UTC) + app.permanent_session_lifetime
        return super().get_expiration_time(app, session)


def init_sessions(app: Flask, settings: Settings) -> None:
    app.session_interface = StaffSessionInterface()
    app.config["PERMANENT_SESSION_LIFETIME"] = Limits.from_settings(settings).lifetime
    app.before_request(check_staff_session)
