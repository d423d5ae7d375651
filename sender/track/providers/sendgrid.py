"""SendGrid as a provider: its event names translated to EventType, and its registry entry.

SendGrid posts a JSON array of loosely typed objects. `translate` never raises:
an event it does not know is kept as UNKNOWN with its raw form, so a new
SendGrid event type is stored and can be replayed later instead of lost.
Custom args come back as top-level string keys; they are parsed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sender.core.addresses import email_hash, normalise_email
from sender.core.errors import InvalidInput
from sender.core.vocabulary import EventType, SuppressionReason
from sender.track.providers.base import InboundForm, NormalisedEvent, Provider, StoredFields
from sender.track.providers.sendgrid_signature import verifier_for

# The name events, actions and suppressions are stored under: it never changes.
NAME = "sendgrid"

SENDGRID_TYPES: Mapping[str, EventType] = {
    "processed": EventType.QUEUED,
    "delivered": EventType.DELIVERED,
    "deferred": EventType.DEFERRED,
    "bounce": EventType.BOUNCED,
    "dropped": EventType.DROPPED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.GROUP_UNSUBSCRIBED,
    "group_resubscribe": EventType.GROUP_RESUBSCRIBED,
}

# Why SendGrid dropped a message, from the `reason` of a `dropped` event (SendGrid's Event
# Webhook reference, "dropped"; django-anymail's SendGrid webhook tests), keyed in lower
# case. Only the first four are about the address; the rest are about our account or
# content, so they suppress nobody (a quota drop would otherwise suppress a whole wave).
# A reason missing here (a new or unknown one) suppresses nobody either.
SENDGRID_DROP_REASONS: Mapping[str, SuppressionReason | None] = {
    "bounced address": SuppressionReason.BOUNCED,
    "unsubscribed address": SuppressionReason.UNSUBSCRIBED,
    "spam reporting address": SuppressionReason.COMPLAINED,
    "invalid": SuppressionReason.INVALID,
    "spam content": None,
    "invalid smtpapi header": None,
    "recipient list over package quota": None,
}

# Database column widths: a longer value is not a SendGrid value.
MAX_EVENT_ID = 128
MAX_RAW_TYPE = 64
MAX_BATCH_KEY = 64
# Not stored in a column (kept in the raw event); bounded so one odd event stays small.
MAX_REASON = 1000
MAX_CLASSIFICATION = 64
_INT32_MAX = 2**31 - 1
# An address already in our normal form (lower case ASCII, as we send to it): what
# SendGrid echoes back. Hashed directly; full validation is the slow part of ingest.
_NORMAL_ADDRESS = re.compile(
    r"[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}"
)
# datetime cannot represent years past 9999.
_MAX_TIMESTAMP = 253_402_300_799


def missing_fields(fields: StoredFields) -> list[str]:
    """SendGrid's names for the fields an event cannot be stored without."""
    required = {
        "sg_event_id": fields.provider_event_id,
        "event": fields.raw_type,
        "timestamp": fields.occurred_at,
    }
    return [name for name, value in required.items() if value is None]


def stored_fields(raw: Mapping[str, Any]) -> StoredFields:
    """The stored columns of one SendGrid event; the request path's whole translation.

    A plain tuple, not a NormalisedEvent: ingest runs this 10,000 times a second.
    """
    get = raw.get
    raw_type = _short_text(get("event"), MAX_RAW_TYPE)
    return StoredFields(
        _short_text(get("sg_event_id"), MAX_EVENT_ID),
        SENDGRID_TYPES.get(raw_type or "", EventType.UNKNOWN).value,
        raw_type,
        _hash_of(get("email")),
        _int_arg(get("message_id")),
        _int_arg(get("supporter_id")),
        _int_arg(get("case_id")),
        _int_arg(get("wave_id")),
        _short_text(get("send_key"), MAX_BATCH_KEY),
        _timestamp(get("timestamp")),
    )


def translate(raw: Mapping[str, Any]) -> NormalisedEvent:
    """One SendGrid event in the project's vocabulary; unknown or odd values become None."""
    f = stored_fields(raw)
    return NormalisedEvent(
        provider=NAME,
        provider_event_id=f.provider_event_id,
        event_type=EventType(f.event_type),
        raw_type=f.raw_type,
        occurred_at=f.occurred_at,
        email_hash=f.email_hash,
        message_id=f.message_id,
        wave_id=f.wave_id,
        case_id=f.case_id,
        supporter_id=f.supporter_id,
        batch_key=f.batch_key,
        url=raw["url"] if isinstance(raw.get("url"), str) else None,
        machine_open=raw.get("sg_machine_open") is True,
        user_agent=raw["useragent"] if isinstance(raw.get("useragent"), str) else None,
        # SendGrid puts "blocked" in `type` for a bounce refused by policy: a soft bounce.
        soft_bounce=raw.get("type") == "blocked",
        drop_suppression=drop_suppression(raw) if f.raw_type == "dropped" else None,
        reason=_short_text(raw.get("reason"), MAX_REASON),
        bounce_classification=_short_text(raw.get("bounce_classification"), MAX_CLASSIFICATION),
        raw=raw,
    )


def drop_suppression(raw: Mapping[str, Any]) -> SuppressionReason | None:
    """The suppression a dropped event's reason calls for; None for any other reason."""
    reason = raw.get("reason")
    if not isinstance(reason, str):
        return None
    return SENDGRID_DROP_REASONS.get(reason.strip().casefold())


def stored_event(raw: Mapping[str, Any], position: int) -> StoredFields:
    """The stored columns of event number `position`, or InvalidInput naming what is missing."""
    fields = stored_fields(raw)
    if fields.provider_event_id is None or fields.raw_type is None or fields.occurred_at is None:
        missing = ", ".join(missing_fields(fields))
        raise InvalidInput(f"event {position}: missing or invalid {missing}")
    return fields


def _short_text(value: object, limit: int) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= _MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(value, UTC)


def _int_arg(value: object) -> int | None:
    # Custom args are strings on the wire; accept a JSON integer too.
    if isinstance(value, str):  # the common case first
        if len(value) <= 10 and value.isascii() and value.isdigit():
            number = int(value)
            return number if 0 < number <= _INT32_MAX else None
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= _INT32_MAX else None


def _hash_of(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 320:
        return None
    return _cached_hash(value)


@lru_cache(maxsize=65_536)
def _cached_hash(address: str) -> str | None:
    # One supporter's events repeat the address: hash (and validate) it once.
    if _NORMAL_ADDRESS.fullmatch(address):
        return email_hash(address)
    try:
        return email_hash(normalise_email(address))
    except InvalidInput:
        return None


INBOUND = InboundForm(raw_email_field="email", charsets_field="charsets")
PROVIDER = Provider(
    name=NAME,
    action_key_prefix="sg",  # in every stored action key: "sg:<sg_event_id>"
    stored_event=stored_event,
    translate=translate,
    verifier=verifier_for,
    inbound=INBOUND,
)
