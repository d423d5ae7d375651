"""POST /webhooks/<provider>/events: a provider's signed event webhook.

The provider is resolved through the registry (sender.track.providers); any
other name is 404. SendGrid's Event Webhook posts to /webhooks/sendgrid/events.

Order of checks, cheapest refusal first, nothing stored unless all pass:
size (413) → signature and timestamp age (403) → a JSON array (400). Then each
event is judged alone: the storable ones are stored in one statement,
deduplicated on the provider's event id, the others kept raw with the reason
(sender.track.rejected_events), and the answer is 2xx, because SendGrid retries
any other answer for 24 h and then drops the whole batch, unsubscribes and all.
Only when the database cannot take the batch is the answer 503, so that SendGrid
retries it. A task turns stored events into actions; the answer does not wait
for that task when a broker is configured.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from sender.campaign.waves import apply_account_notices
from sender.celery_app import PROCESS_EVENTS_TASK
from sender.core.errors import ConfigError, InvalidInput, NotFound
from sender.ops import metrics
from sender.track import providers
from sender.track.actions import process_pending_events
from sender.track.event_store import parse_batch, store_events
from sender.track.providers.base import Provider, RequestVerifier, SignatureRefused
from sender.web import context

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

# SendGrid posts batches of about 768 KB; anything far larger is no provider's.
MAX_BODY_BYTES = 4 * 1024 * 1024
INLINE_LIMIT = 5000


@bp.post("/webhooks/<provider_name>/events")
def events(provider_name: str) -> ResponseReturnValue:
    provider = _provider(provider_name)
    request.max_content_length = MAX_BODY_BYTES
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        metrics.count_refusal("events", "too_large")
        raise
    now = datetime.now(UTC)
    try:
        _verifier(provider).verify_request(request.headers, body, now)
    except (SignatureRefused, ConfigError) as error:
        log.warning("event webhook refused: %s", error)
        reason = "not_configured" if isinstance(error, ConfigError) else None
        metrics.count_refusal("events", reason or metrics.signature_refusal_reason(str(error)))
        return jsonify(error="signature refused"), 403
    try:
        batch = parse_batch(provider, body)
    except InvalidInput as error:
        metrics.count_refusal("events", "malformed")
        return jsonify(error=str(error)), 400
    try:
        result = store_events(context.engine(), provider, batch, now)
    except SQLAlchemyError as error:
        # Nothing was stored (one transaction): a 5xx makes the provider retry it.
        log.error("event webhook could not store a batch: %s", error)
        metrics.count_refusal("events", "unavailable")
        return jsonify(error="events could not be stored; retry later"), 503
    metrics.count_events(e.fields.event_type for e in batch.events)
    if batch.rejected:
        metrics.count_rejected(r.kind for r in batch.rejected)
        log.warning(
            "event webhook kept %d events it could not store: %s",
            len(batch.rejected),
            "; ".join(r.reason for r in batch.rejected[:3]),
        )
    if result.stored:
        _enqueue_processing()
    answer: dict[str, int] = {"received": result.received, "stored": result.stored}
    if result.rejected:  # only then: the common answer keeps its two keys
        answer["rejected"] = result.rejected
    return jsonify(answer), 200


def _provider(name: str) -> Provider:
    """The registered provider a webhook URL names; 404 for any other name."""
    try:
        return providers.get(name)
    except NotFound:
        abort(404)


def _verifier(provider: Provider) -> RequestVerifier:
    # Built once per app and provider: loading the public key is not free.
    key = f"campaign.webhook_verifier.{provider.name}"
    cached = current_app.extensions.get(key)
    if cached is None:
        cached = current_app.extensions[key] = provider.verifier(context.settings())
    verifier: RequestVerifier = cached
    return verifier


def _enqueue_processing() -> None:
    settings = context.settings()
    if not settings.uses_redis:
        # Embedded default: no worker exists, so do the work now.
        process_pending_events(
            context.engine(), INLINE_LIMIT, settings, on_account=apply_account_notices
        )
        return
    try:
        # ignore_result: with Redis down, subscribing for a result retries for ~20 s.
        context.celery().send_task(
            PROCESS_EVENTS_TASK, kwargs={"limit": INLINE_LIMIT}, ignore_result=True
        )
    except Exception as error:  # kombu's errors vary by transport; all mean "not queued"
        # The events are stored: answering 5xx would only make the provider re-send
        # duplicates. The tick's sweep (tasks.tick_task) processes them once Redis is back.
        log.warning("event processing not queued, the next tick will: %s", error)
