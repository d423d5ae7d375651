"""SendGrid as a provider: its event names translated to EventType, and its registry entry.

SendGrid posts a JSON array of loosely typed objects. `translate` never raises:
an event it does not know is kept as UNKNOWN with its raw form, so a new
SendGrid event type is stored and can be replayed later instead of lost.
Custom args come back as top-level string keys; they are parsed here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sender.core.addresses import email_hash, normalise_email
from sender.core.errors import InvalidInput
from sender.core.vocabulary import (
    AccountChange,
    BounceClass,
    EventType,
    RejectionKind,
    SuppressionReason,
)
from sender.track.providers.base import (
    InboundForm,
    NormalisedEvent,
    Provider,
    Rejection,
    StoredFields,
)
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
    # An account event (Event Webhook reference, "Account change events"): no recipient,
    # only `type`, naming the compliance action SendGrid took on the account.
    "account_status_change": EventType.ACCOUNT_STATUS,
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
# Drops about the account as a whole: the plan's quota is used up, so every later message
# would be dropped too. They stop every wave at once (sender.campaign.waves).
ACCOUNT_DROP_REASONS = frozenset({"recipient list over package quota"})
_ACCOUNT_DROP_TODO = "raise the plan's quota (or wait for the next billing period)"
# `type` of an account_status_change: compliance_suspend, compliance_deactivate and
# compliance_ban stop sending (the Account Provisioning state table: a suspended,
# deactivated or banned account cannot send); a reactivation lifts it. A type we do not
# know is read as a stop: a needless pause costs a resume, a missed one a whole wave.
_REACTIVATION = "reactivate"
_ACCOUNT_STATUS_TODO = "settle the account with SendGrid support"
# SendGrid's bounce classes (Event Webhook reference, bounce `bounce_classification`;
# the Bounces API spells two of them longer), keyed in lower case.
SENDGRID_BOUNCE_CLASSES: Mapping[str, BounceClass] = {
    "invalid address": BounceClass.INVALID_ADDRESS,
    "technical": BounceClass.TECHNICAL,
    "technical failure": BounceClass.TECHNICAL,
    "content": BounceClass.CONTENT,
    "reputation": BounceClass.REPUTATION,
    "frequency or volume": BounceClass.FREQUENCY_OR_VOLUME,
    "frequency or volume too high": BounceClass.FREQUENCY_OR_VOLUME,
    "mailbox unavailable": BounceClass.MAILBOX_UNAVAILABLE,
    "unclassified": BounceClass.UNCLASSIFIED,
}

# Database column widths: a longer value is not a SendGrid value. An `sg_event_id` is
# the exception: SendGrid's docs say ids can exceed 100 characters, so a longer one is
# stored in a hashed form (see `event_id`), never refused.
MAX_EVENT_ID = 128
# Ids the store makes up, with a ":" that base64url ids (SendGrid's) never hold, so
# they cannot collide with a real id: a digest of an over-long id, and for an event
# without one (older payloads) a digest of its canonical JSON. Both stay under
# MAX_EVENT_ID, so the action key "sg:<id>" fits actions.dedupe_key (160).
LONG_ID_PREFIX = "sg-sha256:"
CONTENT_ID_PREFIX = "sg-content:"
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
# At or past this a number is milliseconds: as seconds it would be the year 5138, as
# milliseconds it is March 1973, before any SendGrid event.
_MILLISECONDS_FROM = 100_000_000_000
# A timestamp sent as a string: unix seconds (or milliseconds), maybe with a fraction.
_NUMERIC_TEXT = re.compile(r"\s*(\d{1,17}(?:\.\d{1,9})?)\s*")
_MAX_DATE_TEXT = 40


def missing_fields(fields: StoredFields) -> list[str]:
    """SendGrid's names for the fields an event cannot be stored without."""
    required = {"event": fields.raw_type, "timestamp": fields.occurred_at}
    return [name for name, value in required.items() if value is None]


def stored_fields(raw: Mapping[str, Any]) -> StoredFields:
    """The stored columns of one SendGrid event; the request path's whole translation.

    A plain tuple, not a NormalisedEvent: ingest runs this 10,000 times a second.
    """
    get = raw.get
    raw_type = _short_text(get("event"), MAX_RAW_TYPE)
    return StoredFields(
        event_id(raw),
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


def event_id(raw: Mapping[str, Any]) -> str:
    """The event's dedupe key: its `sg_event_id`, or one made from it or its content.

    Stable across SendGrid's retries (the same id, or the same content, gives the
    same key) and across storage: the processing run recomputes it from the stored
    raw event, whose keys come back in another order, hence sorted keys.
    """
    given = raw.get("sg_event_id")
    if isinstance(given, str) and given:
        if len(given) <= MAX_EVENT_ID:
            return given
        return LONG_ID_PREFIX + hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()
    # ensure_ascii: lone surrogates become escapes, so every event has a digest.
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return CONTENT_ID_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def translate(raw: Mapping[str, Any]) -> NormalisedEvent:
    """One SendGrid event in the project's vocabulary; unknown or odd values become None."""
    f = stored_fields(raw)
    classification = _short_text(raw.get("bounce_classification"), MAX_CLASSIFICATION)
    change, note, todo = _account_change(f.raw_type, raw)
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
        installation=_installation(raw),
        url=raw["url"] if isinstance(raw.get("url"), str) else None,
        machine_open=raw.get("sg_machine_open") is True,
        user_agent=raw["useragent"] if isinstance(raw.get("useragent"), str) else None,
        # SendGrid puts "blocked" in `type` for a bounce refused by policy: a soft bounce.
        soft_bounce=raw.get("type") == "blocked",
        drop_suppression=drop_suppression(raw) if f.raw_type == "dropped" else None,
        reason=_short_text(raw.get("reason"), MAX_REASON),
        bounce_classification=classification,
        bounce_class=_bounce_class(classification) if f.raw_type == "bounce" else None,
        account_change=change,
        account_note=note,
        account_todo=todo,
        raw=raw,
    )


def _installation(raw: Mapping[str, Any]) -> str | None:
    """The `installation_id` custom arg; None only when absent (mail sent before it existed).

    Any other value that is not a short string stays one that matches no installation.
    """
    if "installation_id" not in raw:
        return None
    value = raw["installation_id"]
    return value if isinstance(value, str) and len(value) <= MAX_BATCH_KEY else "?"


def _bounce_class(classification: str | None) -> BounceClass | None:
    if classification is None:
        return None
    found = SENDGRID_BOUNCE_CLASSES.get(classification.strip().casefold())
    return found or BounceClass.UNCLASSIFIED  # a class SendGrid adds later: counted, kept raw


def _account_change(
    raw_type: str | None, raw: Mapping[str, Any]
) -> tuple[AccountChange | None, str | None, str | None]:
    """(change, what happened, what to do) for an event about the account; Nones otherwise."""
    if raw_type == "dropped":
        reason = raw.get("reason")
        if isinstance(reason, str) and reason.strip().casefold() in ACCOUNT_DROP_REASONS:
            note = f"SendGrid dropped mail: {reason.strip()[:200]}"
            return AccountChange.STOPPED, note, _ACCOUNT_DROP_TODO
        return None, None, None
    if raw_type != "account_status_change":
        return None, None, None
    kind = _short_text(raw.get("type"), MAX_RAW_TYPE) or "no type given"
    note = f"SendGrid changed the account's status: {kind}"
    if _REACTIVATION in kind.casefold():
        return AccountChange.REACTIVATED, note, None
    return AccountChange.STOPPED, note, _ACCOUNT_STATUS_TODO


def drop_suppression(raw: Mapping[str, Any]) -> SuppressionReason | None:
    """The suppression a dropped event's reason calls for; None for any other reason."""
    reason = raw.get("reason")
    if not isinstance(reason, str):
        return None
    return SENDGRID_DROP_REASONS.get(reason.strip().casefold())


def stored_event(raw: Mapping[str, Any], position: int) -> StoredFields | Rejection:
    """The stored columns of event number `position`, or a Rejection naming what is missing."""
    fields = stored_fields(raw)
    if fields.raw_type is None:
        missing = ", ".join(missing_fields(fields))
        return Rejection(
            RejectionKind.MISSING_TYPE, f"event {position}: missing or invalid {missing}"
        )
    if fields.occurred_at is None:
        return Rejection(
            RejectionKind.MISSING_TIMESTAMP, f"event {position}: missing or invalid timestamp"
        )
    return fields


def _short_text(value: object, limit: int) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None


def _timestamp(value: object) -> datetime | None:
    """Unix seconds as SendGrid documents them; also what older or odd payloads send:
    float seconds, milliseconds, and either as a string (ISO 8601 text too)."""
    if type(value) is int:  # the common case first; bools are not timestamps
        seconds: float = value
    elif type(value) is float:
        if not math.isfinite(value):
            return None
        seconds = value
    elif isinstance(value, str):
        return _timestamp_text(value)
    else:
        return None
    if seconds >= _MILLISECONDS_FROM:
        seconds = seconds / 1000
    if not 0 <= seconds <= _MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _timestamp_text(value: str) -> datetime | None:
    numeric = _NUMERIC_TEXT.fullmatch(value)
    if numeric:
        number = numeric.group(1)
        return _timestamp(int(number) if number.isdigit() else float(number))
    if len(value) > _MAX_DATE_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # A time without a zone is taken as UTC, SendGrid's own zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    account_drop_reasons=ACCOUNT_DROP_REASONS,
)
