"""Workspace: campaigns (list, create from a form or a zip, close) and their cases' kill switch.

Every change runs through sender.staff.audit with the request's actor; the
folder checks are sender.campaign.folder's, the same as `campaign campaigns create`.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.campaign.campaigns import CampaignClosed, campaign_named
from sender.campaign.case_texts import (
    TEXT_FIELDS,
    case_texts,
    form_text,
    preview_case_text,
    set_case_text,
)
from sender.campaign.cases import (
    CaseSummary,
    case_text_changes,
    list_cases,
    pending_messages,
    set_case_status,
)
from sender.campaign.folder import read_folder
from sender.campaign.registry import (
    CampaignView,
    CreateReport,
    campaign_view,
    campaign_views,
    close_campaign,
    create_from_folder,
)
from sender.campaign.upload import (
    MAX_UPLOAD,
    CampaignForm,
    form_errors,
    unpack_folder,
    write_form_folder,
)
from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound, TemplateProblem
from sender.core.vocabulary import CaseStatus
from sender.staff import audit
from sender.staff.actions import What
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
bp = Blueprint(
    "campaigns", __name__, url_prefix="/workspace/campaigns", template_folder=str(TEMPLATES)
)
bp.context_processor(staff_page_context)

PAGES = "web/workspace/campaigns"
# What a change may answer that is the user's to fix: the page says it, nothing changed.
REFUSED = (InvalidInput, CampaignClosed)
MAX_CASES_FILE = 1024 * 1024  # a year's cases in every language is far smaller
CASE_SWITCH: dict[str, tuple[What, CaseStatus]] = {
    "pause": (What.CASE_PAUSE, CaseStatus.PAUSED),
    "resume": (What.CASE_RESUME, CaseStatus.ACTIVE),
}


def _now() -> datetime:
    return SystemClock().now()


def _campaign_id(slug: str) -> int | None:
    try:
        with session_scope(context.engine()) as session:
            return campaign_named(session, slug).id
    except NotFound:
        return None


def _form() -> CampaignForm:
    values = {name: request.form.get(name, "") for name in CampaignForm.__dataclass_fields__}
    return CampaignForm(**values)


def _list_page(form: CampaignForm | None = None, errors: dict[str, str] | None = None) -> str:
    return render_template(
        f"{PAGES}/list.html",
        campaigns=campaign_views(context.engine()),
        form=form,
        errors=errors,
        one_microsecond=timedelta(microseconds=1),
    )


@bp.get("/")
@login_required
def index() -> str:
    return _list_page()


def _store(folder: Path, source: str) -> CreateReport:
    """Check the folder and store it as the signed-in actor, as `campaigns create` does."""
    engine = context.engine()
    found = read_folder(folder)
    slug = found.settings.slug
    return audit.audited(
        engine,
        current_actor(),
        What.CAMPAIGN_CREATE,
        slug,
        lambda: create_from_folder(engine, found, context.settings().templates_dir),
        campaign_id=_campaign_id(slug),
        after=lambda r: f"campaign {r.outcome}",
        detail=lambda r: (
            f"{source}: cases {len(r.cases.created)} created, {len(r.cases.updated)} updated"
        ),
    )


@bp.post("/new")
@login_required
def create() -> BaseResponse | tuple[str, int]:
    form = _form()
    audit.check(context.engine(), current_actor(), What.CAMPAIGN_CREATE, form.slug or "new")
    errors = form_errors(form)
    if _campaign_id(form.slug.strip()) is not None:
        # the form only creates: changing a campaign is its folder's job, so no click overwrites one
        errors["slug"] = "a campaign with this slug exists already (upload its folder to change it)"
    if errors:
        return _list_page(form, errors), 400
    with tempfile.TemporaryDirectory(prefix="campaign-form-") as scratch:
        try:
            report = _store(write_form_folder(form, Path(scratch), _now()), "web form")
        except REFUSED as error:
            return _list_page(form, {"form": str(error)}), 400
    flash(f"campaign {report.slug}: {report.outcome}")
    return redirect(url_for("campaigns.index"))


@bp.post("/upload")
@login_required
def upload() -> BaseResponse | tuple[str, int]:
    audit.check(context.engine(), current_actor(), What.CAMPAIGN_CREATE, "uploaded folder")
    sent = request.files.get("folder")
    # read one byte past the limit: enough to refuse, never the whole 32 MB request
    data = sent.read(MAX_UPLOAD + 1) if sent is not None else b""
    with tempfile.TemporaryDirectory(prefix="campaign-zip-") as scratch:
        try:
            folder = unpack_folder(data, Path(scratch) / "folder")
            report = _store(folder, f"zip {sent.filename if sent else ''}")
        except REFUSED as error:
            where = f"{Path(scratch) / 'folder'}/"  # the scratch path means nothing to staff
            flash(f"nothing was stored: {str(error).replace(where, '')}", "error")
            return _list_page(), 400
    flash(f"campaign {report.slug}: {report.outcome}")
    return redirect(url_for("campaigns.index"))


def _view_or_404(slug: str) -> CampaignView:
    try:
        return campaign_view(context.engine(), slug)
    except NotFound:
        abort(404)


@bp.get("/<slug>/close")
@login_required
def close_page(slug: str) -> str:
    return render_template(f"{PAGES}/close.html", campaign=_view_or_404(slug))


@bp.post("/<slug>/close")
@login_required
def close(slug: str) -> BaseResponse:
    engine = context.engine()
    view = _view_or_404(slug)
    lines = audit.audited(
        engine,
        current_actor(),
        What.CAMPAIGN_CLOSE,
        slug,
        lambda: close_campaign(engine, slug, _now()),
        campaign_id=_campaign_id(slug),
        before=f"status={view.status}",
        after=lambda _: "status=closed",
        detail=lambda lines: f"{len(lines) - 1} waves stopped",
    )
    for line in lines:
        flash(line)
    return redirect(url_for("campaigns.index"))


def _cases_list(slug: str) -> str:
    view = _view_or_404(slug)
    return render_template(
        f"{PAGES}/cases.html",
        campaign=view,
        campaign_id=_campaign_id(slug),
        cases=list_cases(context.engine(), slug),
    )


@bp.get("/<slug>/cases")
@login_required
def cases_page(slug: str) -> str:
    return _cases_list(slug)


def _case_or_404(slug: str, case: str) -> CaseSummary:
    # Not through _view_or_404: the pages that show a case have the view already, and
    # it counts the campaign's assignments (150 ms at a million supporters).
    try:
        found = [c for c in list_cases(context.engine(), slug) if c.slug == case]
    except NotFound:
        abort(404)
    if not found:
        abort(404)
    return found[0]


@bp.get("/<slug>/cases/<case>/<action>")
@login_required
def switch_page(slug: str, case: str, action: str) -> str:
    if action not in CASE_SWITCH:
        abort(404)
    return render_template(
        f"{PAGES}/switch.html",
        campaign=_view_or_404(slug),
        case=_case_or_404(slug, case),
        action=action,
        pending=pending_messages(context.engine(), case, slug),
    )


@bp.post("/<slug>/cases/<case>/<action>")
@login_required
def switch(slug: str, case: str, action: str) -> BaseResponse:
    if action not in CASE_SWITCH:
        abort(404)
    what, status = CASE_SWITCH[action]
    before = _case_or_404(slug, case)
    engine = context.engine()
    try:
        summary = audit.audited(
            engine,
            current_actor(),
            what,
            f"case {case}",
            lambda: set_case_status(engine, case, status, slug),
            campaign_id=_campaign_id(slug),
            before=f"status={before.status}",
            after=lambda c: f"status={c.status}",
        )
    except REFUSED as error:  # a closed campaign is read-only
        flash(str(error), "error")
    else:
        flash(f"case {summary.slug} {summary.status}")
    return redirect(url_for("campaigns.cases_page", slug=slug))


def _cases_text() -> str:
    """The uploaded cases file, or the text the preview page sends back to apply."""
    sent = request.files.get("cases")
    raw = sent.read(MAX_CASES_FILE + 1) if sent is not None else b""
    text = request.form.get("cases_text", "")
    if raw:
        if len(raw) > MAX_CASES_FILE:
            raise InvalidInput("the cases file is over 1 MB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput("the cases file is not UTF-8 text") from error
    if not text.strip():
        raise InvalidInput("the upload is empty: choose a cases YAML file")
    return text


@bp.post("/<slug>/cases/preview")
@login_required
def cases_preview(slug: str) -> str | tuple[str, int]:
    view = _view_or_404(slug)
    audit.check(
        context.engine(), current_actor(), What.CASES_LOAD, "cases file", _campaign_id(slug)
    )
    try:
        text = _cases_text()
        report = case_text_changes(context.engine(), text, slug)
    except REFUSED as error:
        flash(f"nothing was changed: {error}", "error")
        return _cases_list(slug), 400
    return render_template(f"{PAGES}/cases_preview.html", campaign=view, report=report, text=text)


@bp.post("/<slug>/cases/apply")
@login_required
def cases_apply(slug: str) -> BaseResponse | tuple[str, int]:
    _view_or_404(slug)
    engine = context.engine()
    actor = current_actor()
    audit.check(engine, actor, What.CASES_LOAD, "cases file", _campaign_id(slug))
    try:
        text = _cases_text()
        report = audit.audited(
            engine,
            actor,
            What.CASES_LOAD,
            "cases file",
            lambda: case_text_changes(engine, text, slug, apply=True),
            campaign_id=_campaign_id(slug),
            detail=lambda r: (
                f"web upload: {len(r.created)} created, {len(r.updated)} updated,"
                f" {len(r.unchanged)} unchanged"
            ),
        )
    except REFUSED as error:
        flash(f"nothing was changed: {error}", "error")
        return _cases_list(slug), 400
    flash(f"cases: {len(report.created)} created, {len(report.updated)} updated")
    return redirect(url_for("campaigns.cases_page", slug=slug))


def _language(view: CampaignView, case: CaseSummary) -> str:
    lang = request.values.get("lang") or (view.languages or case.languages or ("en",))[0]
    if lang not in {*view.languages, *case.languages}:
        abort(404)
    return lang


def _texts_page(slug: str, case: str, fields: dict[str, str] | None, error: str | None) -> str:
    view = _view_or_404(slug)
    summary = _case_or_404(slug, case)
    lang = _language(view, summary)
    return render_template(
        f"{PAGES}/texts.html",
        campaign=view,
        campaign_id=_campaign_id(slug),
        case=summary,
        lang=lang,
        languages=sorted({*view.languages, *summary.languages}),
        fields=fields or case_texts(context.engine(), case, lang, slug),
        names=TEXT_FIELDS,
        error=error,
    )


@bp.get("/<slug>/cases/<case>/texts")
@login_required
def texts_page(slug: str, case: str) -> str:
    return _texts_page(slug, case, None, None)


def _posted_fields() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in TEXT_FIELDS}


@bp.post("/<slug>/cases/<case>/texts/preview")
@login_required
def texts_preview(slug: str, case: str) -> str:
    """The htmx fragment: the email with the typed texts, in a sandboxed frame; nothing stored."""
    view = _view_or_404(slug)
    lang = _language(view, _case_or_404(slug, case))
    try:
        text = form_text(_posted_fields(), f"case {case!r}", lang)
        email = preview_case_text(context.engine(), context.settings(), case, lang, text, slug)
    except (*REFUSED, TemplateProblem) as error:
        return render_template(f"{PAGES}/_preview.html", email=None, problem=str(error))
    return render_template(f"{PAGES}/_preview.html", email=email, problem=None)


@bp.post("/<slug>/cases/<case>/texts")
@login_required
def texts_save(slug: str, case: str) -> BaseResponse | tuple[str, int]:
    view = _view_or_404(slug)
    lang = _language(view, _case_or_404(slug, case))
    engine = context.engine()
    actor = current_actor()
    target = f"case {case} ({lang})"
    audit.check(engine, actor, What.CASE_EDIT, target, _campaign_id(slug))
    fields = _posted_fields()
    try:
        text = form_text(fields, f"case {case!r}", lang)
        changed = audit.audited(
            engine,
            actor,
            What.CASE_EDIT,
            target,
            lambda: set_case_text(engine, case, lang, text, slug),
            campaign_id=_campaign_id(slug),
            after=lambda done: "texts changed" if done else "unchanged",
        )
    except REFUSED as error:
        return _texts_page(slug, case, fields, str(error)), 400
    flash(f"case {case}, {lang}: " + ("texts saved" if changed else "nothing to change"))
    return redirect(url_for("campaigns.texts_page", slug=slug, case=case, lang=lang))
