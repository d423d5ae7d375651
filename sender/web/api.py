"""GET /api/report: the same JSON as `campaign report --format json`.

`?campaign=SLUG` answers that campaign's report; without it, the answer is
`{"campaigns": [...]}`, one report per open campaign.

Allowed with `Authorization: Bearer <REPORT_TOKEN>` (for scripts and
dashboards elsewhere: every campaign) or from a logged-in staff session (the
campaigns its account may read, sender.report.access: another campaign is 403).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from sender.core.errors import Forbidden, InvalidInput, NotFound
from sender.report.access import check_readable, readable_campaigns
from sender.report.campaigns import open_campaign_reports
from sender.report.totals import Dimension, build_report
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import is_staff
from sender.web.hardening import bearer_matches

bp = Blueprint("api", __name__, url_prefix="/api")


def _by_token() -> bool:
    return bearer_matches(context.settings().report_token)


@bp.get("/report")
def report() -> ResponseReturnValue:
    token = _by_token()
    if not token and not is_staff():
        response = jsonify(error="login or a report token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="campaign"'
        return response, 401
    by = request.args.get("by", Dimension.CASE.value)
    if by not in {d.value for d in Dimension}:
        return jsonify(error=f"by must be one of {', '.join(d.value for d in Dimension)}"), 400
    slug = request.args.get("campaign")
    engine = context.engine()
    try:
        if slug:
            if not token:
                check_readable(engine, current_actor(), [slug])
            body = build_report(engine, Dimension(by), slug)
        else:
            only = None if token else {c.slug for c in readable_campaigns(engine, current_actor())}
            body = {"campaigns": open_campaign_reports(engine, Dimension(by), only)}
    except (InvalidInput, NotFound) as error:  # an unknown campaign is bad input
        return jsonify(error=str(error)), 400
    except Forbidden as error:
        return jsonify(error=str(error)), 403
    answer = jsonify(body)
    answer.headers["Cache-Control"] = "no-store"
    return answer
