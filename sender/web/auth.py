"""Staff login, CSRF protection and the brake on password guessing.

One staff account from settings (STAFF_USER / STAFF_PASSWORD; the password may
be a werkzeug hash such as ``scrypt:...``). A successful login sets
``session["staff"] = True``; the dashboard and the staff API check only that.

Every form in the app carries a CSRF token (Flask-WTF). Endpoints that
providers or mail clients POST to without a browser session (webhooks,
inbound mail, one-click unsubscribe, action links) are exempted here by
blueprint, in ``init_security``, which create_app calls after registering
every blueprint.

Failed logins are limited per client address and per submitted user name
(Flask-Limiter; Redis storage when REDIS_URL is set so that every gunicorn
process and machine shares the count). Only failures count: a staff member
who logs in many times a day is never slowed.
"""

from __future__ import annotations

import hmac
import importlib
import importlib.util
from collections.abc import Callable
from datetime import timedelta
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
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response as BaseResponse

from sender.core.config import Settings
from sender.web import context

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Blueprints that receive POSTs without a staff session: their owners rely on this list.
CSRF_EXEMPT_MODULES = (
    "sender.web.webhooks",
    "sender.web.inbound",
    "sender.web.links",
    "sender.web.unsubscribe",
)
FAILED_LOGIN_LIMIT = "5 per minute;30 per hour"
_HASH_PREFIXES = ("scrypt:", "pbkdf2:")

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
    if stored.startswith(_HASH_PREFIXES):
        password_ok = check_password_hash(stored, password)
    else:
        password_ok = hmac.compare_digest(password.encode(), stored.encode())
    return user_ok and password_ok


def is_staff() -> bool:
    return session.get("staff") is True


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


def _submitted_user() -> str:
    return "user:" + request.form.get("username", "")[:200]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(FAILED_LOGIN_LIMIT, methods=["POST"], deduct_when=_failed)
@limiter.limit(FAILED_LOGIN_LIMIT, methods=["POST"], deduct_when=_failed, key_func=_submitted_user)
def login() -> tuple[str, int] | BaseResponse:
    if request.method == "GET":
        return render_template("web/dashboard/login.html", next=request.args.get("next", "")), 200
    user = request.form.get("username", "")
    password = request.form.get("password", "")
    if not password_matches(context.settings(), user, password):
        return render_template(
            "web/dashboard/login.html", next=request.form.get("next", ""), failed=True
        ), 401
    session.clear()  # a fresh session on login: no fixation
    session["staff"] = True
    session.permanent = True
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("auth.login"))


def _too_many(_error: Exception) -> tuple[str, int]:
    return render_template("web/dashboard/login.html", next="", throttled=True), 429


def init_security(app: Flask, settings: Settings) -> None:
    """CSRF everywhere but the exempt blueprints; login brake; session lifetime."""
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=8))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
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
