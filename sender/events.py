"""Provider events in one vocabulary: SendGrid's names translated to EventType.

SendGrid posts a JSON array of loosely typed objects. `translate` never raises:
an event it does not know is kept as UNKNOWN with its raw form, so a new
SendGrid event type is stored and can be replayed later instead of lost.
Custom args come back as top-level string keys; they are parsed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sender.addresses import email_hash, normalise_email
from sender.errors import InvalidInput
from sender.vocabulary import EventType

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

# Database column widths: a longer value is not a SendGrid value.
MAX_EVENT_ID = 128
MAX_RAW_TYPE = 64
MAX_BATCH_KEY = 64
_INT32_MAX = 2**31 - 1
# An address already in our normal form (lower case ASCII, as we send to it): what
# SendGrid echoes back. Hashed directly; full validation is the slow part of ingest.
_NORMAL_ADDRESS = re.compile(
    r"[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}"
)
# datetime cannot represent years past 9999.
_MAX_TIMESTAMP = 253_402_300_799


@dataclass(frozen=True)
class NormalisedEvent:
    provider_event_id: str | None
    event_type: EventType
    raw_type: str | None
    occurred_at: datetime | None
    email_hash: str | None = None
    message_id: int | None = None
    wave_id: int | None = None
    case_id: int | None = None
    supporter_id: int | None = None
    batch_key: str | None = None
    url: str | None = None
    machine_open: bool = False
    # SendGrid puts "blocked" in `type` for a bounce refused by policy: a soft bounce.
    bounce_type: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hard_bounce(self) -> bool:
        return self.event_type is EventType.BOUNCED and self.bounce_type != "blocked"

    def missing_fields(self) -> list[str]:
        """The fields without which the event cannot be stored (see docs in webhooks)."""
        missing = []
        if self.provider_event_id is None:
            missing.append("sg_event_id")
        if self.raw_type is None:
            missing.append("event")
        if self.occurred_at is None:
            missing.append("timestamp")
        return missing


def translate(raw: Mapping[str, Any]) -> NormalisedEvent:
    """One SendGrid event in the project's vocabulary; unknown or odd values become None."""
    raw_type = _short_text(raw.get("event"), MAX_RAW_TYPE)
    event_type = SENDGRID_TYPES.get(raw_type or "", EventType.UNKNOWN)
    return NormalisedEvent(
        provider_event_id=_short_text(raw.get("sg_event_id"), MAX_EVENT_ID),
        event_type=event_type,
        raw_type=raw_type,
        occurred_at=_timestamp(raw.get("timestamp")),
        email_hash=_hash_of(raw.get("email")),
        message_id=_int_arg(raw.get("message_id")),
        wave_id=_int_arg(raw.get("wave_id")),
        case_id=_int_arg(raw.get("case_id")),
        supporter_id=_int_arg(raw.get("supporter_id")),
        batch_key=_short_text(raw.get("send_key"), MAX_BATCH_KEY),
        url=raw["url"] if isinstance(raw.get("url"), str) else None,
        machine_open=raw.get("sg_machine_open") is True,
        bounce_type=raw["type"] if isinstance(raw.get("type"), str) else None,
        raw=raw,
    )


def require_complete(event: NormalisedEvent, position: int) -> NormalisedEvent:
    missing = event.missing_fields()
    if missing:
        raise InvalidInput(f"event {position}: missing or invalid {', '.join(missing)}")
    return event


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
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and 0 < value <= _INT32_MAX:
        return value
    return None


def _hash_of(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 320:
        return None
    if _NORMAL_ADDRESS.fullmatch(value):
        return email_hash(value)
    return _cached_hash(value)


@lru_cache(maxsize=65_536)
def _cached_hash(address: str) -> str | None:
    # Validation is the slow part of ingest; one supporter's events repeat the address.
    try:
        return email_hash(normalise_email(address))
    except InvalidInput:
        return None
