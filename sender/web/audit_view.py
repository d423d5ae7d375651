"""The audit log on the dashboard: admins only, with filters and a CSV download.

Filters mirror `campaign audit`: since (a date, a time or an age such as
24h), who (an actor exactly) and what (actions or their prefixes, comma
separated: "wave" matches every wave action). A refusal to anyone else is
itself recorded (sender.staff.audit.check).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, render_template, request
from werkzeug.datastructures import MultiDict

from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.staff import audit
from sender.staff.actions import What
from sender.staff.audit import COLUMNS, Entry
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
bp = Blueprint("audit", __name__, url_prefix="/dashboard", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

SHOWN = 500  # the page; the CSV has every matching row


@dataclass(frozen=True)
class Filters:
    since: str
    who: str
    what: str


def filters_of(args: MultiDict[str, str]) -> Filters:
    return Filters(
        args.get("since", "").strip(), args.get("who", "").strip(), args.get("what", "").strip()
    )


def matching(filters: Filters, limit: int | None) -> list[Entry]:
    """The entries the filters name, newest first; InvalidInput for a since it cannot read."""
    since = audit.parse_since(filters.since, context.clock().now()) if filters.since else None
    prefixes = [w.strip() for w in filters.what.split(",") if w.strip()]
    with session_scope(context.engine()) as db:
        return audit.entries(db, since=since, who=filters.who or None, what=prefixes, limit=limit)


def _may_read() -> None:
    audit.check(context.engine(), current_actor(), What.AUDIT_VIEW, "audit log")


@bp.get("/audit")
@login_required
def audit_page() -> tuple[str, int]:
    _may_read()
    filters = filters_of(request.args)
    try:
        found = matching(filters, SHOWN)
    except InvalidInput as error:
        page = render_template(
            "web/dashboard/audit.html", filters=filters, entries=[], problem=str(error)
        )
        return page, 400
    page = render_template(
        "web/dashboard/audit.html",
        filters=filters,
        entries=found,
        problem=None,
        shown=SHOWN,
        actions=[w.value for w in What],
    )
    return page, 200


@bp.get("/audit.csv")
@login_required
def audit_export() -> Response:
    _may_read()
    try:
        found = matching(filters_of(request.args), None)
    except InvalidInput as error:
        return Response(f"{error}\n", 400, mimetype="text/plain")
    return Response(
        to_csv(COLUMNS, audit.as_rows(found)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": "attachment; filename=audit-log.csv",
            "Cache-Control": "no-store",
        },
    )
