"""Staff sessions: an absolute lifetime, an idle timeout and a server-side version.

The session is Flask's signed cookie. It names either a staff account (its
id and the account's session version at sign-in) or, while no account
exists, the settings' bootstrap login (STAFF_USER). What makes it end:

* ``login`` + SESSION_LIFETIME_HOURS (8 h): however active the user, then a
  new login. The cookie's own expiry is set to that instant too, instead of
  Flask's sliding one.
* ``seen`` + SESSION_IDLE_MINUTES without a request.
* for an account: the account re-read on every request is gone, disabled,
  or carries another session version (logout, a password or role change,
  a 2FA reset: sender.staff.accounts bumps it). The role is read fresh too,
  so a demotion counts from the next click.
* for the bootstrap login: a version other than the one kept in
  sender.core.staff_sessions (logout, a password change), or any staff
  account existing at all.

Every request with a staff session is checked here before its view runs, so
views and the API ask only `is_staff()` and `current_account()`. Between
the password and the second factor the cookie holds a short-lived pending
sign-in, which is no session. Times come from the app's clock
(sender.web.context.clock), so tests move it instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from flask import Flask, g, has_request_context, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.staff_sessions import credential_digest, current_version, revoke_sessions
from sender.staff import accounts
from sender.staff.accounts import Account
from sender.web import context

log = logging.getLogger(__name__)

STAFF = "staff"
USER = "user"  # the bootstrap login's user name
ACCOUNT = "account"  # a staff account's id
VERSION = "v"
LOGIN_AT = "login"
SEEN_AT = "seen"
PENDING = "pending"  # an account id whose password was right, awaiting its second factor
PENDING_AT = "pending_at"
SECOND_STEP = timedelta(minutes=5)  # time to type the code after the password
_ACCOUNT = "campaign_staff_account"  # flask.g: the account this request acts as


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


def _time_end(data: Mapping[str, object], now: datetime, limits: Limits) -> SessionEnd | None:
    login_at, seen_at = data.get(LOGIN_AT), data.get(SEEN_AT)
    if not (isinstance(login_at, int | float) and isinstance(seen_at, int | float)):
        return SessionEnd.MALFORMED
    instant = now.timestamp()
    if instant - login_at >= limits.lifetime.total_seconds() or instant < login_at:
        return SessionEnd.EXPIRED
    if instant - seen_at >= limits.idle.total_seconds():
        return SessionEnd.IDLE
    return None


def session_end(
    data: Mapping[str, object],
    now: datetime,
    limits: Limits,
    expected_user: str,
    version_of: Callable[[str], int],
) -> SessionEnd | None:
    """Why this bootstrap session is over, or None while it is good. Reads the database last."""
    user, version = data.get(USER), data.get(VERSION)
    if not (isinstance(user, str) and isinstance(version, int)):
        return SessionEnd.MALFORMED
    ended = _time_end(data, now, limits)
    if ended is not None:
        return ended
    if user != expected_user or version != version_of(user):
        return SessionEnd.REVOKED
    return None


def account_session_end(
    data: Mapping[str, object],
    now: datetime,
    limits: Limits,
    account_of: Callable[[int], Account | None],
) -> SessionEnd | None:
    """Why this account's session is over, or None while it is good. Reads the database last."""
    account_id, version = data.get(ACCOUNT), data.get(VERSION)
    if not (isinstance(account_id, int) and isinstance(version, int)):
        return SessionEnd.MALFORMED
    ended = _time_end(data, now, limits)
    if ended is not None:
        return ended
    account = account_of(account_id)
    if account is None or account.disabled or account.session_version != version:
        return SessionEnd.REVOKED
    return None


def _credential(settings: Settings) -> str:
    return credential_digest(settings.secret_key, settings.staff_user, settings.staff_password)


def _version_of(user: str) -> int:
    settings = context.settings()
    with session_scope(context.engine()) as db:
        return current_version(db, user, _credential(settings), context.clock().now())


def account_by_id(account_id: int) -> Account | None:
    with session_scope(context.engine()) as db:
        return accounts.by_id(db, account_id)


def accounts_exist() -> bool:
    with session_scope(context.engine()) as db:
        return accounts.any_accounts(db)


def _bootstrap_end(now: datetime, limits: Limits) -> SessionEnd | None:
    ended = session_end(session, now, limits, context.settings().staff_user, _version_of)
    if ended is None and accounts_exist():
        return SessionEnd.REVOKED  # the first account was made: the bootstrap is over
    return ended


def _account_end(now: datetime, limits: Limits) -> SessionEnd | None:
    found: list[Account | None] = []

    def account_of(account_id: int) -> Account | None:
        found.append(account_by_id(account_id))
        return found[-1]

    ended = account_session_end(session, now, limits, account_of)
    if ended is None and found:
        setattr(g, _ACCOUNT, found[-1])
    return ended


def check_staff_session() -> None:
    """before_request: end a session that is over; note activity on one that is not."""
    setattr(g, _ACCOUNT, None)
    if STAFF not in session:
        return
    now = context.clock().now()
    limits = Limits.from_settings(context.settings())
    ended = _account_end(now, limits) if ACCOUNT in session else _bootstrap_end(now, limits)
    if ended is not None:
        session.clear()
        setattr(g, _ACCOUNT, None)
        log.info("staff session ended: %s", ended.value)
        return
    session[SEEN_AT] = now.timestamp()


def _start(values: dict[str, object]) -> None:
    """A fresh cookie: whatever the browser held before is dropped (no fixation)."""
    at = context.clock().now().timestamp()
    session.clear()
    session.update({STAFF: True, **values, LOGIN_AT: at, SEEN_AT: at})
    session.permanent = True


def begin(user: str) -> None:
    """The bootstrap login's session, at the user's current version."""
    _start({USER: user, VERSION: _version_of(user)})


def begin_account(account: Account) -> None:
    """An account's session after its password (and second factor, when it has one)."""
    _start({ACCOUNT: account.id, VERSION: account.session_version})
    setattr(g, _ACCOUNT, account)


def begin_second_step(account: Account) -> None:
    """The password was right; the session starts only once the code is too."""
    session.clear()
    session.update(
        {
            PENDING: account.id,
            VERSION: account.session_version,
            PENDING_AT: context.clock().now().timestamp(),
        }
    )


def pending_account() -> Account | None:
    """The account awaiting its second factor, while the wait is short and nothing changed."""
    account_id, version, at = session.get(PENDING), session.get(VERSION), session.get(PENDING_AT)
    if not (isinstance(account_id, int) and isinstance(at, int | float)):
        return None
    waited = context.clock().now().timestamp() - at
    if not 0 <= waited < SECOND_STEP.total_seconds():
        return None
    account = account_by_id(account_id)
    if account is None or account.disabled or account.session_version != version:
        return None
    return account


def end_everywhere() -> None:
    """Logout: this session and every other one of the same account or bootstrap user."""
    account, user = current_account(), session.get(USER)
    now = context.clock().now()
    if account is not None:
        with session_scope(context.engine()) as db:
            accounts.end_sessions(db, account.id, now)
    elif is_staff() and isinstance(user, str):
        with session_scope(context.engine()) as db:
            revoke_sessions(db, user, _credential(context.settings()), now)
    session.clear()


def is_staff() -> bool:
    """True only for a session that passed `check_staff_session` on this request."""
    return session.get(STAFF) is True


def current_account() -> Account | None:
    """The account this request acts as, read on this request; None for the bootstrap login."""
    found: Account | None = getattr(g, _ACCOUNT, None)
    return found if is_staff() else None


def bootstrap_user() -> str | None:
    """The settings' user name while the bootstrap login is what this session is."""
    user = session.get(USER)
    return user if is_staff() and ACCOUNT not in session and isinstance(user, str) else None


class StaffSessionInterface(SecureCookieSessionInterface):
    """The cookie expires at login + lifetime, not lifetime after every request.

    `plain_http_ok` (dev and demo mode only): a request over plain http, such as
    `campaign serve` on a laptop, gets a cookie without the Secure flag, which a
    browser would otherwise drop, so nobody could sign in. Production always
    marks it Secure.
    """

    def __init__(self, plain_http_ok: bool = False) -> None:
        self.plain_http_ok = plain_http_ok

    def get_cookie_secure(self, app: Flask) -> bool:
        secure = super().get_cookie_secure(app)
        if self.plain_http_ok and has_request_context() and not request.is_secure:
            return False
        return secure

    def get_expiration_time(self, app: Flask, session: SessionMixin) -> datetime | None:
        login_at = session.get(LOGIN_AT)
        if session.permanent and isinstance(login_at, int | float):
            return datetime.fromtimestamp(login_at, UTC) + app.permanent_session_lifetime
        return super().get_expiration_time(app, session)


def init_sessions(app: Flask, settings: Settings) -> None:
    app.session_interface = StaffSessionInterface(plain_http_ok=not settings.is_production)
    app.config["PERMANENT_SESSION_LIFETIME"] = Limits.from_settings(settings).lifetime
    app.before_request(check_staff_session)
