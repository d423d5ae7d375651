"""Reports in the workspace: one campaign by case, wave, language, day or variant, or
several compared, as tables with bar charts beside them and a CSV download.

Everything shown comes from sender.report.tables (the CLI prints the same
tables), read from the rolled-up totals; who may read which campaign is
sender.report.access's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup

from sender.core.errors import InvalidInput
from sender.report import bars
from sender.report.access import CampaignChoice, check_readable, readable_campaigns
from sender.report.tables import By, View, build_view, by_named
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
bp = Blueprint("reports", __name__, url_prefix="/workspace/reports", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)
PAGE = "web/workspace/reports/index.html"


@dataclass(frozen=True)
class Choice:
    """What the form asked for, checked: the campaign, the dimension, the others beside it."""

    campaign: str | None
    by: By
    compare: tuple[str, ...]


def _choice(campaigns: list[CampaignChoice]) -> Choice:
    """The query string read and checked; InvalidInput or Forbidden on a bad one."""
    by = by_named(request.args.get("by", By.CASE.value))
    default = campaigns[0].slug if campaigns else None
    campaign = request.args.get("campaign", "").strip() or default
    compare = tuple(dict.fromkeys(s.strip() for s in request.args.getlist("compare") if s.strip()))
    compare = tuple(s for s in compare if s != campaign)
    if campaign is not None:
        check_readable(context.engine(), current_actor(), [campaign, *compare])
    return Choice(campaign, by, compare)


def _view(choice: Choice) -> View | None:
    if choice.campaign is None:
        return None
    return build_view(context.engine(), choice.by, choice.campaign, choice.compare)


def _charts(view: View | None) -> list[list[tuple[bars.Chart, Markup]]]:
    """Each table's charts as trusted markup: sender.report.bars escapes every text it writes."""
    if view is None:
        return []
    drawn = []
    for t, found in enumerate(bars.charts(view)):
        drawn.append(
            [(c, Markup(bars.svg(c, f"chart-{t}-{n}"))) for n, c in enumerate(found)]  # noqa: S704
        )
    return drawn


@bp.get("/")
@login_required
def index() -> tuple[str, int]:
    campaigns = readable_campaigns(context.engine(), current_actor())
    page: dict[str, object] = {"campaigns": campaigns, "dimensions": list(By)}
    try:
        choice = _choice(campaigns)
        view = _view(choice)
    except InvalidInput as error:
        asked = Choice(request.args.get("campaign"), By.CASE, ())
        return render_template(
            PAGE, **page, choice=asked, view=None, charts=[], problem=str(error)
        ), 400
    return render_template(
        PAGE, **page, choice=choice, view=view, charts=_charts(view), problem=None
    ), 200


@bp.get("/report.csv")
@login_required
def download() -> Response:
    campaigns = readable_campaigns(context.engine(), current_actor())
    try:
        view = _view(_choice(campaigns))
    except InvalidInput as error:
        return _plain(str(error))
    if view is None:
        return _plain("no campaign to report on yet")
    return Response(
        view.csv(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename={view.filename()}",
            "Cache-Control": "no-store",
        },
    )


def _plain(problem: str) -> Response:
    """A refused download says why in plain text (never HTML: it may quote the input)."""
    return Response(problem + "\n", status=400, mimetype="text/plain")
