"""The signed-in person's own account: its role, two-factor state, and enrolment.

Admins must enrol before any other page opens (sender.web.auth.login_required
sends them here); others may. Enrolment shows the authenticator's QR code
(inline SVG, drawn on the server) and the secret as text for typing in, and
stores the secret only once a code from the app matches it. The recovery
codes are shown once, on the page that confirms the enrolment.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.core.db import session_scope
from sender.staff import totp
from sender.staff.accounts import Account
from sender.staff.actions import What
from sender.staff.audit import record_now
from sender.web import context, sessions
from sender.web.actors import current_actor, must_enrol
from sender.web.auth import staff_page_context

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
bp = Blueprint("account", __name__, url_prefix="/dashboard", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

# The secret waits in the signed session between showing the QR code and the first code;
# it is dropped once stored, so the cookie carries it only while enrolment is under way.
_ENROLLING = "enrolling"

P = ParamSpec("P")
R = TypeVar("R")


def signed_in(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """Any staff session, even an admin's that must still enrol (this page is where)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if not sessions.is_staff():
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def _codes_left(account: Account) -> int:
    with session_scope(context.engine()) as db:
        return totp.recovery_codes_left(db, account.id)


@bp.get("/account")
@signed_in
def account_page() -> str | BaseResponse:
    if must_enrol():
        return redirect(url_for("account.enrol"))
    account = sessions.current_account()
    left = _codes_left(account) if account is not None and account.two_factor else None
    return render_template("web/dashboard/account.html", account=account, codes_left=left)


def _enrolment_page(account: Account, status: int, failed: bool = False) -> tuple[str, int]:
    secret = session.get(_ENROLLING)
    if not isinstance(secret, str):
        secret = totp.new_secret()
        session[_ENROLLING] = secret
    issuer = context.settings().org_name
    uri = totp.enrolment_uri(secret, account.email, issuer)
    qr = totp.qr_svg(uri, f"QR code to add {account.email} to an authenticator app")
    page = render_template(
        "web/dashboard/enrol.html", account=account, secret=secret, qr=qr, failed=failed
    )
    return page, status


@bp.route("/account/two-factor", methods=["GET", "POST"])
@signed_in
def enrol() -> tuple[str, int] | BaseResponse:
    account = sessions.current_account()
    if account is None:
        flash("The setup login has no account to protect: create one first.", "error")
        return redirect(url_for("account.account_page"))
    if account.two_factor:
        flash("Two-factor sign-in is already on. An admin can reset it if the phone is lost.")
        return redirect(url_for("account.account_page"))
    if request.method == "GET":
        return _enrolment_page(account, 200)
    secret = session.get(_ENROLLING)
    if not isinstance(secret, str):
        return _enrolment_page(account, 400, failed=True)
    now = context.clock().now()
    with session_scope(context.engine()) as db:
        codes = totp.enrol(
            db, context.settings().secret_key, account.id, secret, request.form.get("code", ""), now
        )
    if codes is None:
        return _enrolment_page(account, 400, failed=True)
    session.pop(_ENROLLING, None)
    actor = current_actor()
    record_now(context.engine(), actor, What.TOTP_ENROL, account.email, after="2fa=on")
    return render_template("web/dashboard/recovery_codes.html", codes=codes), 200
