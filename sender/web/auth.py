"""Staff sign-in (password, then a second factor), CSRF protection and the guessing brake.

Each person signs in with their own staff account (sender.staff.accounts).
An account with two-factor sign-in gets a second step: a code from the
authenticator app or one of its recovery codes. While no account exists,
the settings' STAFF_USER / STAFF_PASSWORD (the password may be a werkzeug
hash such as ``scrypt:...``) is the bootstrap way in, acting as an admin
until the first account is made; after that it is refused, and recorded.
A good sign-in starts a staff session (sender.web.sessions: absolute
lifetime, idle timeout, server-side version). Every sign-in event is a row
in the audit log, with the client address.

Every form in the app carries a CSRF token (Flask-WTF). Endpoints that
providers or mail clients POST to without a browser session (webhooks,
inbound mail, one-click unsubscribe, action links) are exempted here by
blueprint, in ``init_security``, which create_app calls after registering
every blueprint.

Failed sign-ins, wrong passwords and wrong codes alike, are limited per
(user name, client address), and more loosely per client address
(Flask-Limiter; Redis storage when REDIS_URL is set so that every gunicorn
process and machine shares the count). Only failures count: a staff member
who logs in many times a day is never slowed, and failures from elsewhere
never block the right password from another address. The client address is
the peer's, or with TRUSTED_PROXIES set the one the proxies report
(ProxyFix, in sender.web.hardening). Each refused attempt is logged at
WARNING without the user name, counted in /metrics (``login_throttled``)
and recorded in the audit log as a lockout. The limiter's keys are keyed
digests, so neither its storage nor its own log lines hold a user name.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import importlib.util
import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response as BaseResponse

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import Forbidden
from sender.core.runmode import is_password_hash
from sender.ops import metrics
from sender.staff import accounts, totp
from sender.staff.accounts import Account
from sender.staff.actions import What
from sender.staff.audit import Actor, Outcome, record_now
from sender.staff.roles import Role
from sender.web import actors, context, sessions

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Blueprints that receive POSTs without a staff session: their owners rely on this list.
CSRF_EXEMPT_MODULES = (
    "sender.web.webhooks",
    "sender.web.inbound",
    "sender.web.links",
    "sender.web.unsubscribe",
)
FAILED_LOGIN_LIMIT = "5 per minute;30 per hour"  # per user name and address
# One address trying many user names; loose, so an office behind one NAT is not
# blocked by a colleague's typos.
FAILED_LOGIN_ADDRESS_LIMIT = "20 per minute;100 per hour"
# Wrong inbound secrets per address. A throttled request gets a 503, never a
# 4xx: SendGrid drops mail on a 4xx and retries on a 5xx.
FAILED_INBOUND_LIMIT = "10 per minute;60 per hour"
# A failed sign-in names no account that does not exist: what was typed may be a password.
UNKNOWN_ACCOUNT = "unknown account"
FIRST_ADMIN = "campaign staff add EMAIL --role admin"
log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, template_folder=str(TEMPLATES))
csrf = CSRFProtect()
limiter = Limiter(get_remote_address)

P = ParamSpec("P")
R = TypeVar("R")


@bp.context_processor
def staff_page_context() -> dict[str, object]:
    """Brand, organisation, who is signed in, what they may do, and the bootstrap warning."""
    settings = context.settings()
    brand = {
        "primary": settings.brand_primary,
        "ink": settings.brand_ink,
        "accent": settings.brand_accent,
    }
    return {
        "brand": brand,
        "config_org": settings.org_name,
        "can": actors.can,
        "signed_in_as": actors.current_actor().name if sessions.is_staff() else None,
        "enrolment_first": actors.must_enrol(),
        "bootstrap_in_use": not sessions.accounts_exist(),
        "first_admin_command": FIRST_ADMIN,
    }


def password_matches(settings: Settings, user: str, password: str) -> bool:
    """Constant-time check of both fields, so timing reveals neither."""
    user_ok = hmac.compare_digest(user.encode(), settings.staff_user.encode())
    stored = settings.staff_password
    if is_password_hash(stored):
        password_ok = check_password_hash(stored, password)
    else:
        password_ok = hmac.compare_digest(password.encode(), stored.encode())
    return user_ok and password_ok


def is_staff() -> bool:
    """A staff session that may see pages: signed in, and not waiting on a required enrolment."""
    return sessions.is_staff() and not actors.must_enrol()


def login_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if not sessions.is_staff():
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if actors.must_enrol():
            return redirect(url_for("account.enrol"))
        return view(*args, **kwargs)

    return wrapper


def safe_next(target: str | None) -> str:
    """Only paths on this site: an open redirect would help phishing staff."""
    if not target:
        return url_for("dashboard.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.index")
    return target


def _failed(response: Response) -> bool:
    return response.status_code == 401


def client_address() -> str:
    """The peer, or the client the trusted proxies name (ProxyFix rewrote REMOTE_ADDR)."""
    return actors.client_address()


def _submitted_user() -> str:
    """Whose sign-in this is: the typed user name, or at the code step the pending account."""
    if request.endpoint == "auth.second_step":
        pending = sessions.pending_account()
        return pending.email if pending is not None else ""
    return request.form.get("username", "")[:200].strip().lower()


def _user_at_address() -> str:
    """The limiter key of (user name, client address), as a keyed digest."""
    message = f"{_submitted_user()}\0{client_address()}".encode()
    secret = context.settings().secret_key.encode()
    return "ua:" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _address() -> str:
    return "addr:" + client_address()


def _known_account(user: str) -> Account | None:
    if not user:
        return None
    with session_scope(context.engine()) as db:
        return accounts.find(db, user)


def _sign_in_actor(account: Account | None) -> Actor:
    if account is not None:
        return account.actor(client_address())
    return Actor(UNKNOWN_ACCOUNT, Role.VIEWER, client_address(), frozenset())


def _record(what: What, account: Account | None, detail: str | None = None) -> None:
    target = account.email if account is not None else UNKNOWN_ACCOUNT
    record_now(context.engine(), _sign_in_actor(account), what, target, detail=detail)


def _breached(scope: str) -> Callable[[RequestLimit], None]:
    def record(limit: RequestLimit) -> None:
        metrics.LOGIN_THROTTLED.labels(scope=scope).inc()
        log.warning(
            "%s refused after too many failures (%s per %s limit) from %s",
            request.path,
            limit.limit,
            scope,
            client_address(),
        )
        if request.blueprint != "auth":
            return
        _record(
            What.LOCKOUT,
            _known_account(_submitted_user()),
            detail=f"{request.path}: {limit.limit} per {scope.replace('_', ' and ')}",
        )

    return record


def _brake(view: Callable[P, R]) -> Callable[P, R]:
    """The one guessing brake over passwords and codes: the limits are shared by both steps."""
    per_user: Callable[[Callable[P, R]], Callable[P, R]] = limiter.shared_limit(
        FAILED_LOGIN_LIMIT,
        "login_user_address",
        methods=["POST"],
        deduct_when=_failed,
        key_func=_user_at_address,
        on_breach=_breached("user_address"),
    )
    per_address: Callable[[Callable[P, R]], Callable[P, R]] = limiter.shared_limit(
        FAILED_LOGIN_ADDRESS_LIMIT,
        "login_address",
        methods=["POST"],
        deduct_when=_failed,
        key_func=_address,
        on_breach=_breached("address"),
    )
    return per_user(per_address(view))


def _login_page(status: int, **flags: object) -> tuple[str, int]:
    return render_template(
        "web/dashboard/login.html", next=request.values.get("next", ""), **flags
    ), status


@bp.route("/login", methods=["GET", "POST"])
@_brake
def login() -> tuple[str, int] | BaseResponse:
    if request.method == "GET":
        return _login_page(200)
    user = request.form.get("username", "")
    password = request.form.get("password", "")
    now = context.clock().now()
    with session_scope(context.engine()) as db:
        have_accounts = accounts.any_accounts(db)
        account = accounts.verify_login(db, user, password, now) if have_accounts else None
    if account is not None:
        return _password_accepted(account)
    settings = context.settings()
    if password_matches(settings, user, password):
        return _bootstrap(settings.staff_user, refused=have_accounts)
    known = _known_account(user) if have_accounts else None
    why = "account disabled" if known is not None and known.disabled else "wrong password"
    _record(What.LOGIN_FAILED, known, detail=why if known is not None else None)
    return _login_page(401, failed=True)


def _bootstrap(user: str, refused: bool) -> tuple[str, int] | BaseResponse:
    actor = actors.bootstrap_actor(user)
    if refused:
        record_now(
            context.engine(),
            actor,
            What.BOOTSTRAP_LOGIN,
            user,
            outcome=Outcome.REFUSED,
            detail="staff accounts exist: the settings' login no longer works",
        )
        return _login_page(401, bootstrap_over=True)
    sessions.begin(user)
    record_now(context.engine(), actor, What.BOOTSTRAP_LOGIN, user)
    return redirect(safe_next(request.form.get("next")))


def _password_accepted(account: Account) -> BaseResponse:
    if account.two_factor:
        sessions.begin_second_step(account)
        return redirect(url_for("auth.second_step", next=request.form.get("next", "")))
    sessions.begin_account(account)
    _record(What.LOGIN, account, detail="password only")
    return redirect(safe_next(request.form.get("next")))


@bp.route("/login/code", methods=["GET", "POST"])
@_brake
def second_step() -> tuple[str, int] | BaseResponse:
    account = sessions.pending_account()
    if account is None:
        flash("Sign in again: the wait for the code ran out, or the account changed.", "error")
        return redirect(url_for("auth.login", next=request.values.get("next", "")))
    if request.method == "GET":
        return render_template("web/dashboard/code.html", next=request.args.get("next", "")), 200
    how = _second_factor(account, request.form.get("code", ""))
    if how is None:
        _record(What.TOTP_FAILED, account)
        page = render_template(
            "web/dashboard/code.html", next=request.form.get("next", ""), failed=True
        )
        return page, 401
    sessions.begin_account(account)
    _record(What.LOGIN, account, detail=how)
    return redirect(safe_next(request.form.get("next")))


def _second_factor(account: Account, code: str) -> str | None:
    """How the code proved the second factor, or None; a recovery code is used up."""
    key, now = context.settings().secret_key, context.clock().now()
    with session_scope(context.engine()) as db:
        if totp.accept_code(db, key, account.id, code, now):
            return "authenticator code"
        if not totp.use_recovery_code(db, key, account.id, code, now):
            return None
        left = totp.recovery_codes_left(db, account.id)
    _record(What.RECOVERY_CODE_USED, account, detail=f"{left} recovery codes left")
    return "recovery code"


@bp.post("/logout")
def logout() -> BaseResponse:
    if sessions.is_staff():
        actor = actors.current_actor()
        record_now(context.engine(), actor, What.LOGOUT, actor.name)
    sessions.end_everywhere()  # a copy of this cookie, anywhere, stops working too
    return redirect(url_for("auth.login"))


def inbound_secret_limit() -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The failure brake for sender.web.inbound: per address, failures only."""
    decorator: Callable[[Callable[P, R]], Callable[P, R]] = limiter.limit(
        FAILED_INBOUND_LIMIT,
        methods=["POST"],
        deduct_when=_failed,
        key_func=_address,
        on_breach=_breached("inbound_address"),
    )
    return decorator


def _too_many(_error: Exception) -> tuple[str, int] | Response:
    if request.blueprint == "inbound":
        return Response(
            "too many failed attempts; retry later\n",
            503,
            {"Retry-After": "60"},
            mimetype="text/plain",
        )
    return render_template("web/dashboard/login.html", next="", throttled=True), 429


def init_security(app: Flask, settings: Settings) -> None:
    """CSRF everywhere but the exempt blueprints; login brake; staff sessions; 403 page."""
    sessions.init_sessions(app, settings)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", int(settings.session_lifetime_hours * 3600))
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "campaign:login")
    # Redis down must not lock staff out, nor lift the brake: count in memory meanwhile.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    csrf.init_app(app)
    for module_name in CSRF_EXEMPT_MODULES:
        for blueprint in _blueprints_of(module_name):
            if blueprint.name in app.blueprints:
                csrf.exempt(blueprint)
    limiter.init_app(app)
    app.register_error_handler(429, _too_many)
    app.register_error_handler(Forbidden, actors.forbidden_page)


def _blueprints_of(module_name: str) -> list[Blueprint]:
    if importlib.util.find_spec(module_name) is None:
        return []
    module = importlib.import_module(module_name)
    return [value for value in vars(module).values() if isinstance(value, Blueprint)]
