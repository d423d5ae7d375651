"""The staff dashboard: waves in flight, actions per case, suppressions.

Server-rendered HTML with inline CSS and a chart drawn on the server: the
machines it runs on may have no internet, so nothing loads from a CDN.
Every page needs a staff login; every state change is a POST with a CSRF token,
checked against the signed-in role and recorded (sender.staff.audit.audited).
A refusal raises Forbidden, which the app answers with its 403 page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import Engine
from werkzeug.wrappers import Response as BaseResponse

from sender.campaign import waves
from sender.core.clock import SystemClock
from sender.core.config import Settings
from sender.core.errors import InvalidInput, NotFound
from sender.core.vocabulary import WaveStatus
from sender.ops import status
from sender.report.activity import rolled_up_actions_per_case_day
from sender.report.lines import actions_svg
from sender.report.lookup import look_up_suppression
from sender.report.variants import figures, summary, wave_tests
from sender.staff import audit
from sender.staff.actions import What
from sender.staff.audit import Actor
from sender.track.rejected_events import rejected_summary
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context
from sender.web.workspace.replies import moved_here

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

WAVE_ACTIONS: dict[str, What] = {
    "pause": What.WAVE_PAUSE,
    "resume": What.WAVE_RESUME,
    "cancel": What.WAVE_CANCEL,
}
# Which buttons a wave in each state shows.
_CONTROLS: dict[str, tuple[str, ...]] = {
    WaveStatus.SCHEDULED: ("pause", "cancel"),
    WaveStatus.SENDING: ("pause", "cancel"),
    WaveStatus.PAUSED: ("resume", "cancel"),
    WaveStatus.DRAFT: ("cancel",),
}
SUPPRESSION_LIST = "suppression list"
CHART_DAYS = 60


def control_wave(
    engine: Engine, settings: Settings, wave_id: int, action: str, now: datetime, actor: Actor
) -> str:
    """Pause, resume or cancel through the pipeline's own staff controls (sender.campaign.waves).

    Checked against the actor's role and campaign limit, and recorded with the
    wave's status before and after.
    """
    wave = status.wave_named(engine, wave_id)

    def change() -> str:
        if action == "pause":
            return waves.pause(engine, wave.name, campaign=wave.campaign)
        if action == "resume":
            return waves.resume(engine, wave.name, now, wave.campaign)
        return waves.cancel(engine, wave.name, wave.campaign)

    return audit.audited(
        engine,
        actor,
        WAVE_ACTIONS[action],
        f"wave {wave.campaign}/{wave.name}",
        change,
        campaign_id=wave.campaign_id,
        before=f"status={wave.status}",
        after=lambda _message: f"status={status.wave_named(engine, wave_id).status}",
        detail=lambda message: message,  # the pipeline's words: "... nothing changed" included
    )


def _now() -> datetime:
    return SystemClock().now()


@bp.get("/")
@login_required
def index() -> str:
    campaigns = status.campaign_waves(context.engine(), _now())
    wave_ids = [w.wave_id for c in campaigns for w in c.waves]
    return render_template(
        "web/dashboard/index.html",
        campaigns=campaigns,
        failed=status.failed_batches(context.engine(), wave_ids),
        live=status.live_view(context.live_source(), ping_timeout=0),
        controls=_CONTROLS,
        wave_actions={action: what.value for action, what in WAVE_ACTIONS.items()},
        rejected=rejected_summary(context.engine()),
        subject_tests=[(summary(t), figures(t)) for t in wave_tests(context.engine(), None)],
    )


@bp.post("/waves/<int:wave_id>/<action>")
@login_required
def wave_action(wave_id: int, action: str) -> BaseResponse:
    if action not in WAVE_ACTIONS:
        abort(404)
    try:
        flash(
            control_wave(
                context.engine(), context.settings(), wave_id, action, _now(), current_actor()
            )
        )
    except NotFound:
        abort(404)
    except InvalidInput as error:
        flash(str(error), "error")
    return redirect(url_for("dashboard.index"))


@bp.get("/actions")
@login_required
def actions_page() -> str:
    return render_template("web/dashboard/actions.html", days=CHART_DAYS)


@bp.get("/actions.svg")
@login_required
def actions_chart() -> Response:
    end = _now().date()
    start = end - timedelta(days=CHART_DAYS - 1)
    series = rolled_up_actions_per_case_day(
        context.engine(), datetime.combine(start, datetime.min.time(), _now().tzinfo)
    )
    body = actions_svg(series, start, end, context.settings().brand_ink)
    return Response(body, mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.get("/report")
@login_required
def report_page() -> BaseResponse:
    """The report's one home is the workspace now; old links and bookmarks land there."""
    query = request.query_string.decode()
    return redirect(url_for("reports.index") + (f"?{query}" if query else ""))


def _may_read_replies() -> None:
    """Replies hold supporters' own words and addresses: campaigners and admins only."""
    audit.check(context.engine(), current_actor(), What.REPLY_REVIEW, "replies")


# Replies live in the workspace (sender.web.workspace.replies); old links still arrive.
@bp.get("/replies")
@login_required
def replies_page() -> BaseResponse:
    _may_read_replies()
    return moved_here("replies.review")


@bp.get("/replies.csv")
@login_required
def replies_export() -> BaseResponse:
    _may_read_replies()
    return moved_here("replies.review_csv")


@bp.route("/suppressions", methods=["GET", "POST"])
@login_required
def suppressions_page() -> tuple[str, int]:
    if request.method == "GET":
        return render_template("web/dashboard/suppressions.html", result=None, problem=None), 200
    engine, actor = context.engine(), current_actor()
    audit.check(engine, actor, What.SUPPRESSION_LOOKUP, SUPPRESSION_LIST)
    try:
        result = look_up_suppression(engine, request.form.get("email", ""))
    except InvalidInput as error:
        return render_template(
            "web/dashboard/suppressions.html", result=None, problem=str(error)
        ), 400
    # Who looked someone up is kept; whom, never: the row names no address.
    found = "suppressed" if result.suppressed else "not suppressed"
    audit.record_now(engine, actor, What.SUPPRESSION_LOOKUP, SUPPRESSION_LIST, detail=found)
    return render_template("web/dashboard/suppressions.html", result=result, problem=None), 200
