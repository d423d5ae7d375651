"""Previews in the workspace: every variant of a wave, one variant up close, proof sends.

The email is shown in an iframe with an empty sandbox attribute and srcdoc:
it runs no script, submits no form and has an opaque origin, so nothing in a
template can act with the staff member's session. The launch check is the
pipeline's own (preview.check_all), the one a launch refuses on.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from sender.core.errors import CampaignError, Forbidden, NotFound
from sender.ops import status
from sender.render.preview import check_all
from sender.send import wave_preview
from sender.send.proofs import send_proofs
from sender.send.transport.select import transport_for
from sender.staff import audit
from sender.staff.actions import What
from sender.web import context
from sender.web.actors import current_actor
from sender.web.auth import login_required, staff_page_context

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
    wave = _wave(wave_id)
    engine, settings = context.engine(), context.settings()
    addresses = [a for a in _SEPARATORS.split(request.form.get("to", "")) if a]
    try:
        sent = audit.audited(
            engine,
            current_actor(),
            What.WAVE_PROOF,
            f"wave {wave.campaign}/{wave.name}",
            lambda: send_proofs(
                engine, settings, wave.campaign, wave.name, addresses, transport_for(settings)
            ),
            campaign_id=wave.campaign_id,
            # A count, not the addresses, as the CLI records it.
            detail=lambda sent: f"{len(sent)} variants to {len(addresses)} addresses",
        )
        flash(f"{len(sent)} variants sent to {len(addresses)} staff addresses")
    except Forbidden:
        raise
    except CampaignError as error:
        flash(str(error), "error")
    return redirect(url_for("preview.grid_page", wave_id=wave_id))
