"""The staff dashboard: waves in flight, actions per case, replies, suppressions.

Server-rendered HTML with inline CSS and a chart drawn on the server: the
machines it runs on may have no internet, so nothing loads from a CDN.
Every page needs a staff login; every state change is a POST with a CSRF token.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import Engine, func, select
from werkzeug.wrappers import Response as BaseResponse

from sender.campaign.campaigns import DEFAULT_SLUG
from sender.core.addresses import email_hash, normalise_email
from sender.core.clock import SystemClock
from sender.core.config import Settings
from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Action, Campaign, Case, Reply, Supporter, Suppression, Wave
from sender.core.vocabulary import ReplyStatus, WaveStatus
from sender.ops import status
from sender.web import context
from sender.web.auth import login_required, staff_page_context

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

WAVE_ACTIONS = ("pause", "resume", "cancel")
# Which buttons a wave in each state shows.
_CONTROLS: dict[str, tuple[str, ...]] = {
    WaveStatus.SCHEDULED: ("pause", "cancel"),
    WaveStatus.SENDING: ("pause", "cancel"),
    WaveStatus.PAUSED: ("resume", "cancel"),
    WaveStatus.DRAFT: ("cancel",),
}
REVIEW_STATUSES = (ReplyStatus.REVIEW, ReplyStatus.MATCHED)
CHART_DAYS = 60


@dataclass(frozen=True)
class CampaignWaves:
    slug: str
    name: str
    waves: tuple[status.WaveProgress, ...]


def campaigns_with_waves(engine: Engine, now: datetime) -> tuple[CampaignWaves, ...]:
    with session_scope(engine) as session:
        campaigns = session.execute(
            select(Campaign.slug, Campaign.name).order_by(Campaign.id)
        ).all()
        wave_ids = list(session.scalars(select(Wave.id).order_by(Wave.starts_at, Wave.id)))
    progress = status.wave_progress(engine, now, wave_ids)
    return tuple(
        CampaignWaves(slug, name, tuple(w for w in progress if w.campaign == slug))
        for slug, name in campaigns
    )


def control_wave(
    engine: Engine, settings: Settings, wave_id: int, action: str, now: datetime
) -> str:
    """Pause, resume or cancel through the pipeline's own staff controls (sender.campaign.waves)."""
    from sender.campaign import (
        waves,  # the pipeline module; imported late, the dashboard only calls it
    )

    with session_scope(engine) as session:
        row = session.execute(
            select(Wave.name, Campaign.slug)
            .join(Campaign, Campaign.id == Wave.campaign_id)
            .where(Wave.id == wave_id)
        ).first()
    if row is None:
        raise NotFound(f"no wave with id {wave_id}")
    if row.slug != DEFAULT_SLUG:
        raise InvalidInput(f"wave {row.name} belongs to campaign {row.slug}, not {DEFAULT_SLUG}")
    if action == "pause":
        return waves.pause(engine, settings, row.name)
    if action == "resume":
        return waves.resume(engine, settings, row.name, now)
    return waves.cancel(engine, settings, row.name)


def actions_per_case_day(engine: Engine, since: datetime) -> dict[str, dict[date, int]]:
    """Actions per case slug and UTC day, counted by the database."""
    day = func.date(Action.occurred_at)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Case.slug, day, func.count())
            .join(Case, Case.id == Action.case_id)
            .where(Action.occurred_at >= since)
            .group_by(Case.slug, day)
        ).all()
    series: dict[str, dict[date, int]] = {}
    for slug, when, count in rows:
        when = date.fromisoformat(when) if isinstance(when, str) else when
        series.setdefault(slug, {})[when] = int(count)
    return series


def chart_svg(series: dict[str, dict[date, int]], start: date, end: date, colour: str) -> bytes:
    """A line per case, drawn by matplotlib into SVG (no JavaScript, no CDN)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    figure = Figure(figsize=(9, 3.2))
    axes = figure.subplots()
    for slug, counts in sorted(series.items()):
        values = [counts.get(d, 0) for d in days]
        axes.plot(days, values, label=slug, linewidth=1.8)  # type: ignore[arg-type]  # dates work
    axes.set_ylabel("actions per day")
    axes.grid(True, color="#dddddd")
    axes.set_facecolor("#ffffff")
    figure.patch.set_facecolor("#ffffff")
    if series:
        axes.legend(loc="upper left", fontsize="small", frameon=False)
    else:
        axes.text(0.5, 0.5, "no actions yet", ha="center", va="center", transform=axes.transAxes)
    axes.spines["bottom"].set_color(colour)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def reviewable_replies(engine: Engine, limit: int | None = 200) -> list[Reply]:
    with session_scope(engine) as session:
        query = (
            select(Reply)
            .where(Reply.status.in_(REVIEW_STATUSES))
            .order_by(Reply.received_at.desc(), Reply.id.desc())
        )
        return list(session.scalars(query if limit is None else query.limit(limit)))


REPLY_COLUMNS = (
    "id",
    "received_at",
    "status",
    "from_email",
    "subject",
    "body",
    "case_id",
    "wave_id",
)


def replies_csv(replies: Iterable[Reply]) -> str:
    """Formula-safe CSV (sender.core.csvsafe): staff open it in spreadsheets."""
    return to_csv(REPLY_COLUMNS, ([getattr(r, c) for c in REPLY_COLUMNS] for r in replies))


@dataclass(frozen=True)
class SuppressionLookup:
    suppressed: bool
    reason: str | None
    source: str | None
    since: datetime | None
    supporter_status: str | None


def look_up_suppression(engine: Engine, raw_email: str) -> SuppressionLookup:
    """By hash only: works for erased supporters, and shows no other personal data."""
    hashed = email_hash(normalise_email(raw_email))
    with session_scope(engine) as session:
        row = session.scalar(select(Suppression).where(Suppression.email_hash == hashed))
        supporter_status = session.scalar(
            select(Supporter.status).where(Supporter.email_hash == hashed)
        )
    if row is None:
        return SuppressionLookup(False, None, None, None, supporter_status)
    return SuppressionLookup(True, row.reason, row.source, row.created_at, supporter_status)


def _now() -> datetime:
    return SystemClock().now()


@bp.get("/")
@login_required
def index() -> str:
    campaigns = campaigns_with_waves(context.engine(), _now())
    wave_ids = [w.wave_id for c in campaigns for w in c.waves]
    return render_template(
        "web/dashboard/index.html",
        campaigns=campaigns,
        failed=status.failed_batches(context.engine(), wave_ids),
        live=status.live_view(context.live_source(), ping_timeout=0),
        controls=_CONTROLS,
    )


@bp.post("/waves/<int:wave_id>/<action>")
@login_required
def wave_action(wave_id: int, action: str) -> BaseResponse:
    if action not in WAVE_ACTIONS:
        abort(404)
    try:
        flash(control_wave(context.engine(), context.settings(), wave_id, action, _now()))
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
    series = actions_per_case_day(
        context.engine(), datetime.combine(start, datetime.min.time(), _now().tzinfo)
    )
    body = chart_svg(series, start, end, context.settings().brand_ink)
    return Response(body, mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.get("/report")
@login_required
def report_page() -> tuple[str, int]:
    """The campaign report by case, wave, language or day (sender.report.totals builds it)."""
    from sender.report.totals import Dimension, build_report

    choice = request.args.get("by", Dimension.CASE.value)
    if choice not in {d.value for d in Dimension}:
        choices = ", ".join(d.value for d in Dimension)
        return render_template(
            "web/dashboard/report.html", report=None, problem=f"by must be one of {choices}"
        ), 400
    report = build_report(context.engine(), Dimension(choice))
    return render_template(
        "web/dashboard/report.html",
        report=report,
        problem=None,
        dimensions=[d.value for d in Dimension],
    ), 200


@bp.get("/replies")
@login_required
def replies_page() -> str:
    return render_template(
        "web/dashboard/replies.html", replies=reviewable_replies(context.engine())
    )


@bp.get("/replies.csv")
@login_required
def replies_export() -> Response:
    body = replies_csv(reviewable_replies(context.engine(), limit=None))
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": "attachment; filename=replies.csv",
            "Cache-Control": "no-store",
        },
    )


@bp.route("/suppressions", methods=["GET", "POST"])
@login_required
def suppressions_page() -> tuple[str, int]:
    if request.method == "GET":
        return render_template("web/dashboard/suppressions.html", result=None, problem=None), 200
    try:
        result = look_up_suppression(context.engine(), request.form.get("email", ""))
    except InvalidInput as error:
        return render_template(
            "web/dashboard/suppressions.html", result=None, problem=str(error)
        ), 400
    return render_template("web/dashboard/suppressions.html", result=result, problem=None), 200
