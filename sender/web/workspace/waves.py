"""Waves in the workspace: create a draft, launch it after a confirmation, steer it live.

Every change goes through the pipeline's own controls (sender.campaign.waves),
checked and recorded with the signed-in actor; the live progress is a fragment
(sender.ops.status) that the page refreshes with htmx.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.campaign import subject_tests, waves
from sender.campaign.campaigns import campaign_named
from sender.campaign.plan_file import WaveProblem, WaveSpec, wave_spec
from sender.core.db import session_scope
from sender.core.errors import CampaignError, Forbidden, InvalidInput, NotFound
from sender.core.languages import direction
from sender.core.models import Wave
from sender.core.vocabulary import WaveStatus
from sender.ops import status
from sender.render.identity import sender_identity
from sender.staff import audit
from sender.staff.actions import What
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context
from sender.web.workspace import reach_panel, subject_form

T = TypeVar("T")
TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
bp = Blueprint("waves", __name__, url_prefix="/workspace/waves", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

CONTROLS: dict[str, What] = {
    "pause": What.WAVE_PAUSE,
    "resume": What.WAVE_RESUME,
    "cancel": What.WAVE_CANCEL,
    "retry-failed": What.WAVE_RETRY,
}
# Which buttons a wave in each state shows; retry only where batches failed.
SHOWN: dict[str, tuple[str, ...]] = {
    WaveStatus.SCHEDULED: ("pause", "cancel"),
    WaveStatus.SENDING: ("pause", "cancel", "retry-failed"),
    WaveStatus.PAUSED: ("resume", "cancel", "retry-failed"),
    WaveStatus.DONE: ("retry-failed",),
    WaveStatus.DRAFT: ("cancel",),
}
FORM_FIELDS = ("name", "kind", "audience", "start", "end", "window", "rate")


def _now() -> datetime:
    return context.clock().now()


def _instant(text: str, label: str) -> datetime:
    """A datetime-local field: the browser sends no zone, so it is read as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput(f"{label} {text!r} is not a date and time") from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _per_language(prefix: str, form: dict[str, str]) -> dict[str, str]:
    """`subject_en`-style fields into {language: text}, leaving out the empty ones."""
    return {
        key.removeprefix(prefix): value.strip()
        for key, value in form.items()
        if key.startswith(prefix) and value.strip()
    }


def _domain_rates(text: str) -> dict[str, int]:
    """One `domain=rate per hour` a line, as in the plan file's domain_rates."""
    rates: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        domain, sep, rate = line.partition("=")
        if not sep or not rate.strip().isdigit():
            raise InvalidInput(f"per-domain rate {line.strip()!r} is not DOMAIN=NUMBER")
        rates[domain.strip()] = int(rate.strip())
    return rates


def spec_from_form(form: dict[str, str]) -> WaveSpec:
    """The form's fields checked exactly as a plan file's wave entry is (plan_file.wave_spec)."""
    rate = form.get("rate", "").strip()
    if rate and not rate.isdigit():
        raise InvalidInput(f"rate {rate!r} is not a whole number of messages per hour")
    spec = wave_spec(
        name=form.get("name", "").strip(),
        kind=form.get("kind", "").strip(),
        start=_instant(form.get("start", ""), "start"),
        end=_instant(form.get("end", ""), "end"),
        subjects=_per_language("subject_", form),
        preheaders=_per_language("preheader_", form),
        audience=form.get("audience", "").strip() or None,
        window=form.get("window", "").strip() or None,
        rate_per_hour=int(rate) if rate else None,
        domain_rates=_domain_rates(form.get("domain_rates", "")),
        subject_test=subject_form.test_from_form(form),
    )
    subject_form.check_variant_languages(spec)
    return spec


def _audited(wave: status.WaveName, what: What, change: Callable[[], T]) -> T:
    engine = context.engine()
    return audit.audited(
        engine,
        current_actor(),
        what,
        f"wave {wave.campaign}/{wave.name}",
        change,
        campaign_id=wave.campaign_id,
        before=f"status={wave.status}",
        after=lambda _result: f"status={status.wave_named(engine, wave.wave_id).status}",
        detail=lambda result: str(result),
    )


def _wave(wave_id: int) -> status.WaveName:
    try:
        return status.wave_named(context.engine(), wave_id)
    except NotFound:
        abort(404)


@bp.get("/")
@login_required
def index() -> str:
    return render_template(
        "web/workspace/waves/index.html",
        campaigns=status.campaign_waves(context.engine(), _now()),
    )


def _progress_context(wave: status.WaveName) -> dict[str, object]:
    engine = context.engine()
    progress = status.wave_progress(engine, _now(), [wave.wave_id])
    return {
        "wave": wave,
        "progress": progress[0] if progress else None,
        "failed": status.failed_batches(engine, [wave.wave_id]),
        "controls": SHOWN.get(wave.status, ()),
        "what": {action: what.value for action, what in CONTROLS.items()},
    }


@bp.get("/<int:wave_id>")
@login_required
def wave_page(wave_id: int) -> str:
    return render_template(
        "web/workspace/waves/wave.html",
        **_progress_context(_wave(wave_id)),
        test=subject_form.test_view(context.engine(), wave_id, _now()),
    )


@bp.post("/<int:wave_id>/pick")
@login_required
def pick(wave_id: int) -> BaseResponse:
    """Staff pick a subject test's winner before the wait ends, as `campaign wave pick`."""
    wave = _wave(wave_id)
    engine, actor = context.engine(), current_actor()
    target = f"wave {wave.campaign}/{wave.name}"
    variant = request.form.get("variant", "").strip()
    audit.check(engine, actor, What.WAVE_PICK, target, wave.campaign_id)
    try:
        # The pick records its own audit row, done or failed.
        flash(subject_tests.pick(engine, wave.name, variant, _now(), actor, wave.campaign))
    except CampaignError as error:
        flash(str(error), "error")
    return redirect(url_for("waves.wave_page", wave_id=wave_id))


@bp.get("/<int:wave_id>/progress")
@login_required
def progress_fragment(wave_id: int) -> str:
    return render_template(
        "web/workspace/waves/_progress.html", **_progress_context(_wave(wave_id))
    )


@bp.post("/<int:wave_id>/<action>")
@login_required
def control(wave_id: int, action: str) -> BaseResponse:
    if action not in CONTROLS:
        abort(404)
    wave = _wave(wave_id)
    engine = context.engine()
    changes: dict[str, Callable[[], object]] = {
        "pause": lambda: waves.pause(engine, wave.name, campaign=wave.campaign),
        "resume": lambda: waves.resume(engine, wave.name, _now(), wave.campaign),
        "cancel": lambda: waves.cancel(engine, wave.name, wave.campaign),
        "retry-failed": lambda: (
            f"{waves.retry_failed(engine, wave.name, wave.campaign)} failed batches queued again"
        ),
    }
    try:
        flash(str(_audited(wave, CONTROLS[action], changes[action])))
    except Forbidden:
        raise  # the app's 403 page; the refusal is recorded already
    except CampaignError as error:
        flash(str(error), "error")
    return redirect(url_for("waves.wave_page", wave_id=wave_id))


@bp.get("/<int:wave_id>/launch")
@login_required
def confirm_launch(wave_id: int) -> str:
    """Answers at once: the figures of a fresh count, else a panel while one is made."""
    return _reach_page(wave_id, "web/workspace/waves/launch.html")


@bp.get("/<int:wave_id>/launch/reach")
@login_required
def reach_fragment(wave_id: int) -> str:
    """The panel htmx polls until the count is over; the finished one stops polling."""
    return _reach_page(wave_id, "web/workspace/waves/_reach.html")


def _reach_page(wave_id: int, template: str) -> str:
    wave = _wave(wave_id)
    return render_template(template, **reach_panel.panel(wave, reach_panel.current_count(wave)))


@bp.post("/<int:wave_id>/launch/count")
@login_required
def count_again(wave_id: int) -> BaseResponse:
    wave = _wave(wave_id)
    reach_panel.check_may_count(wave)
    reach_panel.current_count(wave, again=True)  # one already counting is not doubled
    return redirect(url_for("waves.confirm_launch", wave_id=wave_id), 303)


@bp.post("/<int:wave_id>/launch")
@login_required
def launch(wave_id: int) -> BaseResponse:
    wave = _wave(wave_id)
    engine = context.engine()
    try:
        # A second click finds the wave scheduled already and changes nothing.
        message = _audited(
            wave,
            What.WAVE_LAUNCH,
            lambda: waves.launch(
                engine, context.settings(), wave.name, _now(), campaign=wave.campaign
            ),
        )
        flash(message)
    except Forbidden:
        raise  # the app's 403 page; the refusal is recorded already
    except CampaignError as error:
        flash(str(error), "error")
    return redirect(url_for("waves.wave_page", wave_id=wave_id))


def _campaign(slug: str) -> tuple[int, tuple[str, ...]]:
    """The campaign's id and languages (English when it declares none)."""
    try:
        with session_scope(context.engine()) as session:
            found = campaign_named(session, slug)
            return found.id, tuple(found.languages or ("en",))
    except NotFound:
        abort(404)


FORM = "web/workspace/waves/form.html"
STEPS = ("add_variant", "remove_variant", "preview")  # buttons that re-render, saving nothing


def _sender_name(slug: str) -> str:
    """Who the inbox preview shows the mail from: the campaign's From, as sending builds it."""
    with session_scope(context.engine()) as session:
        sender = sender_identity(context.settings(), campaign_named(session, slug)).sender
        return sender.name or sender.email


def _posted() -> dict[str, str]:
    return {k: v for k, v in request.form.items() if k not in ("csrf_token", "action")}


def _form_page(
    form: dict[str, str], languages: tuple[str, ...], campaign: str, **page: object
) -> dict[str, object]:
    """What the form template reads: the fields, the variant rows, the inbox preview."""
    try:
        count = subject_form.variant_count(form)
    except InvalidInput:
        count = 0
    return {
        "form": form,
        "languages": languages,
        "variants": [
            (i, form.get(f"variant_{i}_name") or subject_form.LABELS[i]) for i in range(count)
        ],
        "metrics": subject_form.METRICS,
        "inbox": subject_form.inbox_lines(form, languages),
        "directions": {language: direction(language) for language in languages},
        "errors": {},
        "sender": _sender_name(campaign),
        "campaign": campaign,
        **page,
    }


def _refused(
    error: CampaignError,
    form: dict[str, str],
    languages: tuple[str, ...],
    campaign: str,
    **page: object,
) -> tuple[str, int]:
    where = subject_form.field_of(error.where) if isinstance(error, WaveProblem) else ""
    context_ = _form_page(form, languages, campaign, error=str(error), **page)
    # Beside its field the wave's name goes without saying: the alert above names it.
    beside = str(error).removeprefix(f"wave {form.get('name', '').strip()!r}: ")
    context_["errors"] = {where: beside} if where else {}
    return render_template(FORM, **context_), 422


@bp.post("/preview-lines/<campaign>")
@login_required
def inbox_fragment(campaign: str) -> str:
    """The htmx fragment: each variant's inbox line per language, as typed; nothing stored."""
    _, languages = _campaign(campaign)
    page = _form_page(_posted(), languages, campaign)
    return render_template("web/workspace/waves/_inbox.html", **page)


@bp.route("/new/<campaign>", methods=["GET", "POST"])
@login_required
def new_wave(campaign: str) -> str | BaseResponse | tuple[str, int]:
    form = _posted()
    campaign_id, languages = _campaign(campaign)
    if request.method == "GET":
        return render_template(FORM, **_form_page(form, languages, campaign))
    action = request.form.get("action", "save")
    if action in STEPS:
        stepped = subject_form.stepped(form, action)
        return render_template(FORM, **_form_page(stepped, languages, campaign))
    engine = context.engine()
    target = f"wave {campaign}/{form.get('name', '').strip()}"
    # The role first: a viewer's forged form is refused before its fields are read.
    audit.check(engine, current_actor(), What.WAVE_CREATE, target, campaign_id)
    try:
        spec = spec_from_form(form)
        audit.audited(
            engine,
            current_actor(),
            What.WAVE_CREATE,
            target,
            lambda: waves.create_wave(engine, spec, campaign, context.settings().templates_dir),
            campaign_id=campaign_id,
            detail=lambda _: _detail(spec),
        )
    except Forbidden:
        raise  # the app's 403 page; the refusal is recorded already
    except CampaignError as error:
        return _refused(error, form, languages, campaign)
    flash(f"wave {spec.name} created (draft)")
    return redirect(url_for("waves.index"))


def _detail(spec: WaveSpec) -> str:
    test = spec.subject_test
    tested = f" subject test {'/'.join(test.names)} at {test.share:.0%}" if test else ""
    return f"kind={spec.kind} {spec.starts_at:%Y-%m-%d %H:%M} to {spec.ends_at:%Y-%m-%d %H:%M}" + (
        tested
    )


def form_of(wave: Wave) -> dict[str, str]:
    """A stored draft as the form's fields, so the edit page opens with its values."""
    fields = {
        "name": wave.name,
        "kind": wave.kind,
        "audience": wave.audience,
        "start": f"{wave.starts_at.astimezone(UTC):%Y-%m-%dT%H:%M}",
        "end": f"{wave.ends_at.astimezone(UTC):%Y-%m-%dT%H:%M}",
        "window": f"{wave.local_window_start:%H:%M}-{wave.local_window_end:%H:%M}",
        "rate": "" if wave.rate_per_hour is None else str(wave.rate_per_hour),
        "domain_rates": "\n".join(f"{d}={r}" for d, r in (wave.domain_rates or {}).items()),
        "version": waves.draft_version(wave),
    }
    fields |= {f"subject_{k}": str(v) for k, v in wave.subjects.items()}
    fields |= {f"preheader_{k}": str(v) for k, v in (wave.preheaders or {}).items()}
    return fields | subject_form.form_fields(wave.subject_test)


@bp.route("/<int:wave_id>/edit", methods=["GET", "POST"])
@login_required
def edit_wave(wave_id: int) -> str | BaseResponse | tuple[str, int]:
    wave = _wave(wave_id)
    engine = context.engine()
    _, languages = _campaign(wave.campaign)
    if request.method == "GET":
        with session_scope(engine) as session:
            form = form_of(session.get_one(Wave, wave_id))
        return render_template(FORM, **_form_page(form, languages, wave.campaign, wave=wave))
    form = _posted()
    action = request.form.get("action", "save")
    if action in STEPS:
        stepped = subject_form.stepped(form, action)
        return render_template(FORM, **_form_page(stepped, languages, wave.campaign, wave=wave))
    target = f"wave {wave.campaign}/{wave.name}"
    audit.check(engine, current_actor(), What.WAVE_EDIT, target, wave.campaign_id)
    try:
        spec = spec_from_form(form)
        audit.audited(
            engine,
            current_actor(),
            What.WAVE_EDIT,
            target,
            lambda: waves.edit_draft(
                engine, wave_id, spec, form.get("version", ""), context.settings().templates_dir
            ),
            campaign_id=wave.campaign_id,
            detail=lambda _: _detail(spec),
        )
    except Forbidden:
        raise
    except CampaignError as error:
        return _refused(error, form, languages, wave.campaign, wave=wave)
    flash(f"wave {wave.name} saved (draft)")
    return redirect(url_for("waves.wave_page", wave_id=wave_id))
