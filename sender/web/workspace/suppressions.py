"""Workspace: staff's do-not-email list, on the supporters blueprint (admins change it).

Searching reuses the dashboard's look-up (sender.report.lookup); adding and
lifting go through sender.track.manual_suppressions, as the CLI does, so only
manual suppressions can ever be lifted.
"""

from __future__ import annotations

from flask import render_template, request

from sender.core.errors import InvalidInput
from sender.report.lookup import look_up_suppression
from sender.staff import audit
from sender.staff.actions import What
from sender.track import manual_suppressions as manual
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required
from sender.web.workspace.supporters import bp

PAGE = "web/workspace/supporters/suppressions.html"
LIST = "suppression list"


def _page(status: int = 200, **values: object) -> tuple[str, int]:
    values.setdefault("problem", None)
    values.setdefault("message", None)
    values.setdefault("result", None)
    return render_template(PAGE, **values), status


@bp.get("/suppressions")
@login_required
def suppressions_page() -> tuple[str, int]:
    if "email" not in request.args:
        return _page()
    engine, actor = context.engine(), current_actor()
    audit.check(engine, actor, What.SUPPRESSION_LOOKUP, LIST)
    try:
        result = look_up_suppression(engine, request.args["email"])
    except InvalidInput as error:
        return _page(400, problem=f"Not a usable address: {error}")
    found = "suppressed" if result.suppressed else "not suppressed"
    audit.record_now(engine, actor, What.SUPPRESSION_LOOKUP, LIST, detail=found)
    return _page(result=result)


@bp.post("/suppressions/add")
@login_required
def suppression_add() -> tuple[str, int]:
    engine, actor = context.engine(), current_actor()
    audit.check(engine, actor, What.SUPPRESS, LIST)
    try:
        why = manual.checked_reason(request.form.get("reason", ""))
        digest = manual.digest_of(request.form.get("email", ""))
    except InvalidInput as error:
        return _page(400, problem=f"Nothing was suppressed: {error}")
    created = audit.audited(
        engine,
        actor,
        What.SUPPRESS,
        manual.target(digest),
        lambda: manual.suppress(engine, digest, why, context.clock().now()),
        before=manual.state(engine, digest),
        after=lambda _: manual.state(engine, digest),
        detail=lambda _: f"reason: {why}",
    )
    done = "The address is suppressed." if created else "The address was already suppressed."
    return _page(message=done)


@bp.post("/suppressions/remove")
@login_required
def suppression_remove() -> tuple[str, int]:
    engine, actor = context.engine(), current_actor()
    audit.check(engine, actor, What.UNSUPPRESS, LIST)
    try:
        digest = manual.digest_of(request.form.get("email", ""))
        removed = audit.audited(
            engine,
            actor,
            What.UNSUPPRESS,
            manual.target(digest),
            lambda: manual.lift(engine, digest),
            before=manual.state(engine, digest),
            after=lambda _: manual.state(engine, digest),
        )
    except InvalidInput as error:
        return _page(400, problem=f"Nothing was lifted: {error}")
    done = "The suppression is lifted." if removed else "The address was not suppressed."
    return _page(message=done)
