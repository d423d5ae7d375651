"""Previews in the workspace: every variant of a wave, one variant up close, proof sends.

The email is shown in an iframe with an empty sandbox attribute and srcdoc:
it runs no script, submits no form and has an opaque origin, so nothing in a
template can act with the staff member's session. The launch check is the
pipeline's own (preview.check_all), the one a launch refuses on.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.celery_app import PROOF_TASK
from sender.core.errors import CampaignError, InvalidInput, NotFound
from sender.ops import status
from sender.render.preview import check_all
from sender.send import wave_preview
from sender.send.proof_runs import ProofRunView, read_proof_run, run_proofs, start_proof_run
from sender.send.transport.select import transport_for
from sender.staff import audit
from sender.staff.actions import What
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context
from sender.web.workspace.background import actor_args, run_in_background

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
bp = Blueprint("preview", __name__, url_prefix="/workspace/preview", template_folder=str(TEMPLATES))
bp.context_processor(staff_page_context)

WIDTHS = (("Desktop", 640), ("Mobile", 375))
_SEPARATORS = re.compile(r"[\s,;]+")


def _wave(wave_id: int) -> status.WaveName:
    try:
        return status.wave_named(context.engine(), wave_id)
    except NotFound:
        abort(404)


@bp.get("/<int:wave_id>")
@login_required
def grid_page(wave_id: int) -> str:
    wave = _wave(wave_id)
    engine, settings = context.engine(), context.settings()
    return render_template(
        "web/workspace/preview/grid.html",
        wave=wave,
        cells=wave_preview.grid(engine, settings, wave_id),
        problems=check_all(engine, settings),
        proof_key=secrets.token_urlsafe(16),  # one per form shown: a double submit sends once
    )


@bp.get("/<int:wave_id>/<case>/<language>")
@login_required
def variant_page(wave_id: int, case: str, language: str) -> tuple[str, int]:
    wave = _wave(wave_id)
    seen_by = request.args.get("as", "").strip() or None
    try:
        shown = wave_preview.variant(
            context.engine(), context.settings(), wave_id, case, language, seen_by
        )
    except NotFound:
        abort(404)
    except CampaignError as error:
        page = {"wave": wave, "case": case, "language": language, "seen_by": seen_by}
        return render_template("web/workspace/preview/variant.html", **page, error=str(error)), 422
    return render_template(
        "web/workspace/preview/variant.html",
        wave=wave,
        case=case,
        language=language,
        seen_by=seen_by,
        shown=shown,
        widths=WIDTHS,
    ), 200


@bp.post("/<int:wave_id>/proof")
@login_required
def proof(wave_id: int) -> BaseResponse:
    """Record the proof run and answer at once; the sending happens in the background."""
    wave = _wave(wave_id)
    engine, settings, actor = context.engine(), context.settings(), current_actor()
    audit.check(
        engine, actor, What.WAVE_PROOF, f"wave {wave.campaign}/{wave.name}", wave.campaign_id
    )
    addresses = [a for a in _SEPARATORS.split(request.form.get("to", "")) if a]
    try:
        if not addresses:
            raise InvalidInput("give at least one staff address")
        run_id, new = start_proof_run(
            engine, wave_id, addresses, actor, request.form.get("key", "")
        )
    except InvalidInput as error:
        flash(str(error), "error")
        return redirect(url_for("preview.grid_page", wave_id=wave_id))
    if new:  # a repeated submission of the same form shows the first run, sending nothing
        run_in_background(
            PROOF_TASK,
            [run_id, *actor_args(actor)],
            lambda: run_proofs(engine, settings, run_id, actor, transport_for(settings)),
            f"proof-{run_id}",
        )
    return redirect(url_for("preview.proof_page", wave_id=wave_id, run_id=run_id), 303)


def _run(wave_id: int, run_id: int) -> ProofRunView:
    try:
        run = read_proof_run(context.engine(), run_id)
    except NotFound:
        abort(404)
    if run.wave_id != wave_id:
        abort(404)
    return run


@bp.get("/<int:wave_id>/proofs/<int:run_id>")
@login_required
def proof_page(wave_id: int, run_id: int) -> str:
    run = _run(wave_id, run_id)
    return render_template("web/workspace/preview/proof.html", wave=_wave(wave_id), run=run)


@bp.get("/<int:wave_id>/proofs/<int:run_id>/progress")
@login_required
def proof_progress(wave_id: int, run_id: int) -> str:
    run = _run(wave_id, run_id)
    return render_template("web/workspace/preview/_proof_progress.html", wave_id=wave_id, run=run)
