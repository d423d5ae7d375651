"""Workspace: replies. Solidarity messages per case, and the review list with its actions.

The one home of replies in the browser (the dashboard's old list and the supporters
area's solidarity form lead here). Reading needs reply.review, as replies hold
supporters' own words; each decision is its own audited action
(sender.track.reply_review), checked against the reply's campaign, so an account
limited to one campaign cannot act on another's replies. Forms post and redirect
back with a message; a refused input re-renders the page with a 400 and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.campaign.campaigns import campaign_named, open_campaigns
from sender.campaign.cases import case_by_slug, list_cases
from sender.core.csvsafe import to_csv
from sender.core.db import session_scope
from sender.core.errors import Forbidden, InvalidInput, NotFound
from sender.core.models import Campaign
from sender.staff import audit
from sender.staff.actions import What
from sender.track import reply_review
from sender.track.replies import (
    EXPORT_HEADER,
    ReviewItem,
    ReviewReason,
    SolidarityPage,
    review_list,
    solidarity_messages,
    solidarity_page,
    to_decide,
)
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
bp = Blueprint("replies", __name__, url_prefix="/workspace/replies", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

REVIEW_SHOWN = 200
SHOW = {"all": None, "undelivered": False, "delivered": True}
# The review list's CSV (formerly the dashboard's): every field staff may need to decide.
REVIEW_COLUMNS = (
    "id",
    "received_at",
    "status",
    "from_email",
    "subject",
    "body",
    "case_id",
    "wave_id",
    "problem",
    "spf",
    "dkim",
)


def _now() -> datetime:
    return context.clock().now()


def _campaign(slug: str | None) -> tuple[int | None, str | None, list[str]]:
    """The chosen campaign (else the first open one the actor may see, if any) and the
    open ones to choose from."""
    actor = current_actor()
    with session_scope(context.engine()) as session:
        shown = [
            c
            for c in open_campaigns(session)
            if actor.campaign_ids is None or c.id in actor.campaign_ids
        ]
        try:
            chosen: Campaign | None = campaign_named(session, slug) if slug else None
        except (InvalidInput, NotFound):
            abort(404)
        chosen = chosen or (shown[0] if shown else None)
        choices = [c.slug for c in shown]
        return (chosen.id, chosen.slug, choices) if chosen else (None, None, choices)


def _may_read(campaign_id: int | None, target: str = "replies") -> None:
    audit.check(context.engine(), current_actor(), What.REPLY_REVIEW, target, campaign_id)


def moved_here(endpoint: str) -> BaseResponse:
    """Where an older address of replies now lives, with the query it came with."""
    query = request.query_string.decode("latin-1")
    return redirect(url_for(endpoint) + (f"?{query}" if query else ""))


def _csv(body: str, name: str) -> Response:
    headers = {
        "Content-Disposition": f"attachment; filename={name}",
        "Cache-Control": "no-store",
    }
    return Response(body, mimetype="text/csv", headers=headers)


@bp.get("/")
@login_required
def index() -> BaseResponse:
    return moved_here("replies.review")


def _review_page(status: int = 200, problem: str | None = None) -> tuple[str, int]:
    campaign_id, slug, campaigns = _campaign(request.values.get("campaign"))
    _may_read(campaign_id)
    reason = request.args.get("reason") or None
    if reason is not None and reason not in {r.value for r in ReviewReason}:
        reason, status = None, 400
        problem = "choose a reason from the list"
    with session_scope(context.engine()) as session:
        items = to_decide(session, campaign_id, REVIEW_SHOWN)
        cases = {c.slug for c in list_cases(context.engine(), slug)} if slug else set()
    groups = {
        r: [i for i in items if i.reason is r]
        for r in ReviewReason
        if reason is None or r.value == reason
    }
    return render_template(
        "web/workspace/replies/review.html",
        campaign=slug,
        campaign_id=campaign_id,
        campaigns=campaigns,
        groups=groups,
        counts={r: sum(1 for i in items if i.reason is r) for r in ReviewReason},
        reason=reason,
        cases=sorted(cases),
        problem=problem,
    ), status


@bp.get("/review")
@login_required
def review() -> tuple[str, int]:
    return _review_page()


@bp.get("/review.csv")
@login_required
def review_csv() -> Response:
    campaign_id, _, _ = _campaign(request.args.get("campaign"))
    _may_read(campaign_id)
    with session_scope(context.engine()) as session:
        items = review_list(session, limit=None, campaign_id=campaign_id)
    return _csv(replies_csv(items), "replies.csv")


def replies_csv(items: Iterable[ReviewItem]) -> str:
    """Formula-safe CSV (sender.core.csvsafe): staff open it in spreadsheets."""
    return to_csv(
        REVIEW_COLUMNS,
        (
            (
                r.reply_id,
                r.received_at,
                r.status,
                r.from_email,
                r.subject,
                r.body,
                r.case_id,
                r.wave_id,
                r.problem,
                r.spf,
                r.dkim,
            )
            for r in items
        ),
    )


def _decide(
    reply_id: int, what: What, change: Callable[[int | None], reply_review.Decision]
) -> reply_review.Decision:
    """Audited against the reply's campaign, else the page's (a reply about no case)."""
    engine = context.engine()
    try:
        campaign_id = reply_review.reply_campaign_id(engine, reply_id)
    except NotFound:
        abort(404)
    page_campaign, _, _ = _campaign(request.form.get("campaign"))
    scope = campaign_id if campaign_id is not None else page_campaign
    return audit.audited(
        engine,
        current_actor(),
        what,
        f"reply #{reply_id}",
        lambda: change(scope),
        campaign_id=scope,
        detail=reply_review.Decision.audit_detail,
    )


def _after_decision(run: Callable[[], reply_review.Decision]) -> BaseResponse | tuple[str, int]:
    try:
        decision = run()
    except Forbidden:
        raise  # the app's 403 page; the refusal is recorded already
    except NotFound:
        abort(404)
    except InvalidInput as error:
        return _review_page(400, f"Nothing changed: {error}")
    flash(f"Reply #{decision.reply_id} {decision.outcome}.")
    return redirect(url_for("replies.review", campaign=request.form.get("campaign")), 303)


@bp.post("/review/<int:reply_id>/assign")
@login_required
def assign(reply_id: int) -> BaseResponse | tuple[str, int]:
    form, by = request.form, current_actor().name
    return _after_decision(
        lambda: _decide(
            reply_id,
            What.REPLY_ASSIGN,
            lambda campaign_id: reply_review.assign_reply(
                context.engine(),
                reply_id,
                form.get("email", ""),
                by,
                _now(),
                campaign_id=campaign_id,
                case_slug=form.get("case") or None,
            ),
        )
    )


@bp.post("/review/<int:reply_id>/dismiss")
@login_required
def dismiss(reply_id: int) -> BaseResponse | tuple[str, int]:
    reason, by = request.form.get("reason", ""), current_actor().name
    return _after_decision(
        lambda: _decide(
            reply_id,
            What.REPLY_DISMISS,
            lambda _: reply_review.dismiss_reply(context.engine(), reply_id, reason, by, _now()),
        )
    )


@bp.post("/review/<int:reply_id>/unsubscribe")
@login_required
def unsubscribe(reply_id: int) -> BaseResponse | tuple[str, int]:
    by = current_actor().name
    return _after_decision(
        lambda: _decide(
            reply_id,
            What.REPLY_UNSUBSCRIBE,
            lambda _: reply_review.unsubscribe_sender(context.engine(), reply_id, by, _now()),
        )
    )


def _solidarity_page(status: int = 200, problem: str | None = None) -> tuple[str, int] | Response:
    values = request.values
    campaign_id, slug, campaigns = _campaign(values.get("campaign"))
    _may_read(campaign_id, "solidarity messages")
    cases = list_cases(context.engine(), slug) if slug else ()
    case = values.get("case", "").strip() or (cases[0].slug if cases else "")
    show = values.get("show", "all")
    if show not in SHOW:
        show, status, problem = "all", 400, "show all, undelivered or delivered messages"
    number = values.get("page", "1").strip()
    if not number.isdigit():
        number, status, problem = "1", 400, f"page {number!r} is not a page number"
    shown = SolidarityPage((), 0, 1)
    try:
        with session_scope(context.engine()) as session:
            if slug and case and values.get("format") == "csv" and status == 200:
                every = solidarity_messages(session, case, slug, SHOW[show])
                body = to_csv(EXPORT_HEADER, [message.row() for message in every])
                return _csv(body, f"solidarity-{_safe_name(case)}.csv")
            if slug and case:
                shown = solidarity_page(session, case, slug, SHOW[show], int(number))
    except (InvalidInput, NotFound) as error:
        status, problem = 400, f"No messages shown: {error}"
    return render_template(
        "web/workspace/replies/solidarity.html",
        campaign=slug,
        campaign_id=campaign_id,
        campaigns=campaigns,
        cases=[c.slug for c in cases],
        case=case,
        show=show,
        messages=shown.messages,
        shown=shown,
        problem=problem,
    ), status


@bp.get("/solidarity")
@login_required
def solidarity() -> tuple[str, int] | Response:
    return _solidarity_page()


@bp.post("/solidarity/delivered")
@login_required
def delivered() -> BaseResponse | tuple[str, int] | Response:
    engine, form, actor = context.engine(), request.form, current_actor()
    campaign_id, slug, _ = _campaign(form.get("campaign"))
    try:
        ids = [int(value) for value in form.getlist("reply")]
        with session_scope(engine) as session:
            case_id = case_by_slug(session, form.get("case", ""), slug).id
    except ValueError:
        return _solidarity_page(400, "Nothing changed: a selected message is not a reply id")
    except (InvalidInput, NotFound) as error:
        return _solidarity_page(400, f"Nothing changed: {error}")
    try:
        done = audit.audited(
            engine,
            actor,
            What.REPLY_DELIVERED,
            f"case {slug}/{form.get('case')}",
            lambda: reply_review.mark_delivered(engine, case_id, ids, actor.name, _now()),
            campaign_id=campaign_id,
            detail=reply_review.Delivered.audit_detail,
        )
    except Forbidden:
        raise
    except InvalidInput as error:
        return _solidarity_page(400, f"Nothing changed: {error}")
    flash(f"{len(done.reply_ids)} messages marked delivered to the case team.")
    target = url_for(
        "replies.solidarity",
        campaign=slug,
        case=form.get("case"),
        show=form.get("show", "all"),
        page=form.get("page", "1"),
    )
    return redirect(target, 303)


def _safe_name(slug: str) -> str:
    return "".join(c for c in slug if c.isalnum() or c in "-_")[:64] or "case"
