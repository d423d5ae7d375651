"""GET /api/report: the same JSON as `campaign report --format json`.

`?campaign=SLUG` answers that campaign's report; without it, the answer is
`{"campaigns": [...]}`, one report per open campaign.

Allowed with `Authorization: Bearer <REPORT_TOKEN>` (for scripts and
dashboards elsewhere) or from a logged-in staff session.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request, session
from flask.typing import ResponseReturnValue

from sender.core.errors import NotFound
from sender.report.campaigns import open_campaign_reports
from sender.report.totals import Dimension, build_report
from sender.web import context

bp = Blueprint("api", __name__, url_prefix="/api")


def _authorised() -> bool:
    if session.get("staff"):
        return True
    token = context.settings().report_token
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not token or scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


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
