"""Workspace: supporters (import, assignment, search, erasure) and suppressions.

Thin views over sender.audience, sender.track and sender.staff.audit: each
change is role-checked and audited as the signed-in actor, each form carries
the CSRF token (the upload checks its own, see imports.py).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.audience.assignment import Strategy, assign
from sender.audience.erasure import ForgetResult, forget_supporter
from sender.audience.import_runs import read_run, recent_runs, rejected_path
from sender.audience.profile import find_supporter
from sender.campaign.campaigns import open_campaigns, resolve_campaign
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.staff import audit
from sender.staff.actions import What
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import csrf, login_required, staff_page_context
from sender.web.workspace import imports, replies

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
bp = Blueprint(
    "supporters", __name__, url_prefix="/workspace/supporters", template_folder=str(TEMPLATES)
)
bp.context_processor(staff_page_context)
PAGE = "web/workspace/supporters/index.html"
MAX_CASES_PER_SUPPORTER = 10


def _campaigns() -> list[str]:
    with session_scope(context.engine()) as session:
        return [c.slug for c in open_campaigns(session)]


def _page(status: int = 200, **values: object) -> tuple[str, int]:
    values.setdefault("problem", None)
    values.setdefault("limit_mb", context.settings().upload_max_bytes // 1024**2)
    values.setdefault("runs", recent_runs(context.engine()))
    return render_template(PAGE, campaigns=_campaigns(), **values), status


@bp.get("/")
@login_required
def index() -> tuple[str, int]:
    return _page()


@bp.post("/imports")
@login_required
def upload() -> BaseResponse | tuple[str, int]:
    actor = current_actor()
    audit.check(context.engine(), actor, What.IMPORT, "upload")
    try:
        received = imports.receive_upload(context.settings().upload_max_bytes)
    except InvalidInput as error:
        status = 413 if "limit" in str(error) else 400
        return _page(status, problem=f"The file was not imported: {error}")
    run_id = imports.start_import(received, actor)
    return redirect(url_for("supporters.import_page", run_id=run_id), 303)


# The upload reads its own body (imports.py) and checks the CSRF token there,
# before the file: the app-wide check would parse the whole body first.
csrf.exempt(upload)


def _run_or_404(run_id: int) -> object:
    try:
        return read_run(context.engine(), run_id)
    except NotFound:
        abort(404)


@bp.get("/imports/<int:run_id>")
@login_required
def import_page(run_id: int) -> str:
    return render_template("web/workspace/supporters/import.html", run=_run_or_404(run_id))


@bp.get("/imports/<int:run_id>/progress")
@login_required
def import_progress(run_id: int) -> str:
    return render_template("web/workspace/supporters/_progress.html", run=_run_or_404(run_id))


@bp.get("/imports/<int:run_id>/rejected.csv")
@login_required
def rejected_rows(run_id: int) -> Response:
    # The rejected rows are the CRM's own rows: personal data, for those who import.
    audit.check(context.engine(), current_actor(), What.IMPORT, f"import #{run_id} rejected rows")
    path = rejected_path(context.settings().upload_dir, run_id)
    if not path.is_file():
        abort(404)
    response = send_file(
        path.resolve(), "text/csv", as_attachment=True, download_name=f"rejected-{run_id}.csv"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/assign")
@login_required
def assign_page() -> tuple[str, int]:
    engine, form = context.engine(), request.form
    try:
        strategy = Strategy(form.get("strategy", ""))
        per = int(form.get("cases_per_supporter", "1"))
        seed = int(form.get("seed", "0"))
        if not 1 <= per <= MAX_CASES_PER_SUPPORTER:
            raise ValueError
    except ValueError:
        problem = f"choose a strategy, 1 to {MAX_CASES_PER_SUPPORTER} cases and a whole seed"
        return _page(400, problem=f"Nothing was assigned: {problem}.")
    slug = form.get("campaign") or None
    reassign = form.get("reassign") == "yes"
    try:
        with session_scope(engine) as session:
            campaign_id = resolve_campaign(session, slug).id
        report = audit.audited(
            engine,
            current_actor(),
            What.ASSIGN,
            f"{strategy} x{per}" + (" reassign" if reassign else ""),
            lambda: assign(engine, strategy, per, seed, reassign, campaign_slug=slug),
            campaign_id=campaign_id,
            detail=lambda r: (
                f"{r.assignments_created} created, {r.assignments_replaced} replaced,"
                f" {r.unassignable} unassignable of {r.supporters_considered} supporters"
            ),
        )
    except (InvalidInput, NotFound) as error:
        return _page(400, problem=f"Nothing was assigned: {error}")
    return _page(assignment=report)


@bp.get("/search")
@login_required
def search() -> tuple[str, int]:
    engine, actor = context.engine(), current_actor()
    audit.check(engine, actor, What.SUPPORTER_LOOKUP, "supporters")
    try:
        profile = find_supporter(engine, request.args.get("email", ""))
    except InvalidInput as error:
        return _page(400, problem=f"Not a usable address: {error}")
    # Who searched is kept; whom, never: the row names no address.
    found = "found" if profile else "not found"
    audit.record_now(engine, actor, What.SUPPORTER_LOOKUP, "supporters", detail=found)
    return _page(profile=profile, searched=True)


@bp.post("/forget")
@login_required
def forget() -> tuple[str, int]:
    engine, actor, email = context.engine(), current_actor(), request.form.get("email", "")
    audit.check(engine, actor, What.FORGET, "supporter")
    if request.form.get("confirm") != "erase":
        return render_template("web/workspace/supporters/confirm_forget.html", email=email), 200
    try:
        result = audit.audited(
            engine,
            actor,
            What.FORGET,
            "supporter",
            lambda: forget_supporter(engine, email),
            after=ForgetResult.audit_after,
            detail=ForgetResult.audit_detail,
        )
    except (InvalidInput, NotFound) as error:
        return _page(400, problem=f"Nobody was erased: {error}")
    return _page(erased=result)


@bp.get("/solidarity")
@login_required
def solidarity() -> BaseResponse:
    """Solidarity messages live in the replies area now; old links and forms land there."""
    return replies.moved_here("replies.solidarity")


from sender.web.workspace import suppressions as _suppressions  # noqa: E402, F401 (its routes)
