"""GET /api/report: the same JSON as `campaign report --format json`.

`?campaign=SLUG` answers that campaign's report; without it, the answer is
`{"campaigns": [...]}`, one report per open campaign.

Allowed with `Authorization: Bearer <REPORT_TOKEN>` (for scripts and
dashboards elsewhere) or from a logged-in staff session.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sender.core.errors import NotFound
from sender.report.campaigns import open_campaign_reports
from sender.report.totals import Dimension, build_report
from sender.web import context
from sender.web.auth import is_staff
from sender.web.hardening import bearer_matches

bp = Blueprint("api", __name__, url_prefix="/api")


def _authorised() -> bool:
    return is_staff() or bearer_matches(context.settings().report_token)


@bp.get("/report")
def report() -> ResponseReturnValue:
    if not _authorised():
        response = jsonify(error="login or a report token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="campaign"'
        return response, 401
    by = request.args.get("by", Dimension.CASE.value)
    if by not in {d.value for d in Dimension}:
        return jsonify(error=f"by must be one of {', '.join(d.value for d in Dimension)}"), 400
    slug = request.args.get("campaign")
    engine = context.engine()
    try:
        body = (
            build_report(engine, Dimension(by), slug)
            if slug
            else {"campaigns": open_campaign_reports(engine, Dimension(by))}
        )
    except NotFound as error:
        return jsonify(error=str(error)), 404
    answer = jsonify(body)
    answer.headers["Cache-Control"] = "no-store"
    return answer
