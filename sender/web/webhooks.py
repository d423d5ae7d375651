"""POST /webhooks/sendgrid/events: SendGrid's signed Event Webhook.

Order of checks, cheapest refusal first, nothing stored unless all pass:
size (413) → signature and timestamp age (403) → JSON shape and required
fields (400). Then the batch is stored in one statement, deduplicated on
sg_event_id, and a task turns it into actions; the answer does not wait for
that task when a broker is configured.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from sender.celery_app import PROCESS_EVENTS_TASK, create_celery
from sender.core.errors import ConfigError, InvalidInput
from sender.ops import metrics
from sender.track.actions import process_pending_events
from sender.track.event_store import parse_batch, store_events
from sender.track.providers.sendgrid_signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefused,
    WebhookVerifier,
    verifier_from,
)
from sender.web import context

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

# SendGrid posts batches of about 768 KB; anything far larger is not SendGrid.
MAX_BODY_BYTES = 4 * 1024 * 1024
INLINE_LIMIT = 5000


@bp.post("/webhooks/sendgrid/events")
def sendgrid_events() -> ResponseReturnValue:
    request.max_content_length = MAX_BODY_BYTES
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        metrics.count_refusal("events", "too_large")
        raise
    now = datetime.now(UTC)
    try:
        _verifier().verify(
            body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER), now
        )
    except (SignatureRefused, ConfigError) as error:
        log.warning("event webhook refused: %s", error)
        reason = "not_configured" if isinstance(error, ConfigError) else None
        metrics.count_refusal("events", reason or metrics.signature_refusal_reason(str(error)))
        return jsonify(error="signature refused"), 403
    try:
        batch = parse_batch(body)
    except InvalidInput as error:
        metrics.count_refusal("events", "malformed")
        return jsonify(error=str(error)), 400
    result = store_events(context.engine(), batch, now)
    metrics.count_events(e.fields.event_type for e in batch)
    if result.stored:
        _enqueue_processing()
    return jsonify(received=result.received, stored=result.stored), 200


def _verifier() -> WebhookVerifier:
    cached = current_app.extensions.get("campaign.webhook_verifier")
    if cached is None:
        settings = context.settings()
        cached = verifier_from(
            settings.sendgrid_webhook_public_key, settings.webhook_tolerance_seconds
        )
        current_app.extensions["campaign.webhook_verifier"] = cached
    verifier: WebhookVerifier = cached
    return verifier


def _enqueue_processing() -> None:
    settings = context.settings()
    if not settings.uses_redis:
        # Embedded default: no worker exists, so do the work now.
        process_pending_events(context.engine(), INLINE_LIMIT, settings)
        return
    celery = current_app.extensions.get("campaign.celery")
    if celery is None:
        celery = current_app.extensions["campaign.celery"] = create_celery(settings)
    celery.send_task(PROCESS_EVENTS_TASK, kwargs={"limit": INLINE_LIMIT})
