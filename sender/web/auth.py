"""Staff login, CSRF protection and the brake on password guessing.

One staff account from settings (STAFF_USER / STAFF_PASSWORD; the password may
be a werkzeug hash such as ``scrypt:...``). A successful login starts a staff
session (sender.web.sessions: absolute lifetime, idle timeout, server-side
version); the dashboard and the staff API ask only `is_staff()`.

Every form in the app carries a CSRF token (Flask-WTF). Endpoints that
providers or mail clients POST to without a browser session (webhooks,
inbound mail, one-click unsubscribe, action links) are exempted here by
blueprint, in ``init_security``, which create_app calls after registering
every blueprint.

Failed logins are limited per (submitted user name, client address), and more
loosely per client address (Flask-Limiter; Redis storage when REDIS_URL is set
so that every gunicorn process and machine shares the count). Only failures
count: a staff member who logs in many times a day is never slowed, and
failures from elsewhere never block the right password from another address.
The client address is the peer's, or with TRUSTED_PROXIES set the one the
proxies report (ProxyFix, in sender.web.hardening). Each refused attempt is
logged at WARNING without the user name and counted in /metrics
(``login_throttled``). The limiter's keys are keyed digests, so neither its
storage nor its own log lines hold a user name.
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
from sender.core.runmode import is_password_hash
from sender.ops import metrics
from sender.web import context, sessions

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
log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, template_folder=str(TEMPLATES))
csrf = CSRFProtect()
limiter = Limiter(get_remote_address)

P = ParamSpec("P")
R = TypeVar("R")


@bp.context_processor
def staff_page_context() -> dict[str, object]:
    """Brand and organisation name for the staff pages' layout."""
    settings = context.settings()
    brand = {
        "primary": settings.brand_primary,
        "ink": settings.brand_ink,
        "accent": settings.brand_accent,
    }
    return {"brand": brand, "config_org": settings.org_name}


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
    return sessions.is_staff()


def login_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if not is_staff():
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
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
    return get_remote_address()


def _user_at_address() -> str:
    """The limiter key of (submitted user name, client address), as a keyed digest."""
    user = request.form.get("username", "")[:200]
    message = f"{user}\0{client_address()}".encode()
    secret = context.settings().secret_key.encode()
    return "ua:" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _address() -> str:
    return "addr:" + client_address()


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

    return record


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    FAILED_LOGIN_LIMIT,
    methods=["POST"],
    deduct_when=_failed,
    key_func=_user_at_address,
    on_breach=_breached("user_address"),
)
@limiter.limit(
    FAILED_LOGIN_ADDRESS_LIMIT,
    methods=["POST"],
    deduct_when=_failed,
    key_func=_address,
    on_breach=_breached("address"),
)
def login() -> tuple[str, int] | BaseResponse:
    if request.method == "GET":
        return render_template("web/dashboard/login.html", next=request.args.get("next", "")), 200
    user = request.form.get("username", "")
    password = request.form.get("password", "")
    if not password_matches(context.settings(), user, password):
        return render_template(
            "web/dashboard/login.html", next=request.form.get("next", ""), failed=True
        ), 401
    sessions.begin(context.settings().staff_user)
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> BaseResponse:
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
    """CSRF everywhere but the exempt blueprints; login brake; staff sessions."""
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


def _blueprints_of(module_name: str) -> list[Blueprint]:
    if importlib.util.find_spec(module_name) is None:
        return []
    module = importlib.import_module(module_name)
    return [value for value in vars(module).values() if isinstance(value, Blueprint)]
