"""What every mail provider supplies: the values its events become and the hooks it fills.

A provider is one frozen `Provider` value, registered in `sender.track.providers`.
Everything downstream of the translator (event store, actions, suppressions,
reports) sees only these types and the shared vocabulary `EventType`, never a
provider's own field names. docs/PROVIDERS.md is the checklist for adding one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sender.core.config import Settings
from sender.core.errors import CampaignError
from sender.core.vocabulary import (
    AccountChange,
    BounceClass,
    EventType,
    RejectionKind,
    SuppressionReason,
)


class SignatureRefused(CampaignError):
    """The request is not provably from the provider, or is a replay."""


@dataclass(frozen=True)
class NormalisedEvent:
    """One provider event in the project's vocabulary; unknown or odd values are None."""

    provider: str
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
    # The installation that sent the message (a custom arg); None on older mail.
    installation: str | None = None
    url: str | None = None
    machine_open: bool = False
    user_agent: str | None = None  # of a click, where the provider reports it
    # A bounce the provider says may pass later (a policy refusal): only a streak suppresses.
    soft_bounce: bool = False
    # A dropped event: the suppression the provider's reason calls for, or None when the
    # reason is about our account or content (quota, spam content), not the address.
    drop_suppression: SuppressionReason | None = None
    # The provider's reason text (dropped, bounce, deferred), bounded; None when absent.
    reason: str | None = None
    # The provider's bounce class ("Invalid Address", "Reputation"...), kept for reports.
    bounce_classification: str | None = None
    # The same, in the shared vocabulary; UNCLASSIFIED for a class the provider adds later.
    bounce_class: BounceClass | None = None
    # An event about the whole account (a quota drop, a suspension): every wave stops.
    account_change: AccountChange | None = None
    # For staff, in the provider's terms: what happened, and what to do about it.
    account_note: str | None = None
    account_todo: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hard_bounce(self) -> bool:
        return self.event_type is EventType.BOUNCED and not self.soft_bounce


class StoredFields(NamedTuple):
    """The columns stored beside the raw event: what ingest computes per event.

    The order is the events table's (see sender.track.event_store): a plain tuple,
    not a NormalisedEvent, because ingest builds 10,000 of them a second.
    """

    provider_event_id: str | None
    event_type: str
    raw_type: str | None
    email_hash: str | None
    message_id: int | None
    supporter_id: int | None
    case_id: int | None
    wave_id: int | None
    batch_key: str | None
    occurred_at: datetime | None


class Rejection(NamedTuple):
    """Why one event of a batch cannot be stored as an event; it is kept raw instead.

    Returned, never raised: one odd event must not cost the batch it shares
    (the provider would retry the whole batch, then drop it).
    """

    kind: RejectionKind
    reason: str  # readable, in the provider's own field names; at most 200 characters

    def numbered(self, position: int) -> Rejection:
        """The same rejection, its reason prefixed with the event's place in the batch."""
        return Rejection(self.kind, f"event {position}: {self.reason}")


class RequestHeaders(Protocol):
    """A request's headers as the web adapter has them (a dict will do in tests)."""

    def get(self, key: str, /) -> str | None: ...


class RequestVerifier(Protocol):
    def verify_request(self, headers: RequestHeaders, body: bytes, now: datetime) -> None:
        """Return quietly for a genuine, fresh request; raise SignatureRefused if not."""


@dataclass(frozen=True)
class InboundForm:
    """The provider's names in the multipart form it posts for an inbound email."""

    raw_email_field: str  # the whole MIME email, when the provider posts it raw
    charsets_field: str  # a JSON object naming each text field's charset


@dataclass(frozen=True)
class Provider:
    """One mail provider's event and inbound hooks, keyed by `name` in the registry."""

    # Stored in events.provider, actions.source and suppressions.source.
    name: str
    # The namespace of the dedupe keys of actions made from its events: stored keys
    # dedupe retried events, so it never changes once events are stored.
    action_key_prefix: str
    # Request path: the stored columns of one event, or a Rejection naming what is
    # missing (never an exception: the rest of the batch is stored).
    stored_event: Callable[[Mapping[str, Any], int], StoredFields | Rejection]
    # Processing: a stored raw event in the vocabulary; never raises (unknown is UNKNOWN).
    translate: Callable[[Mapping[str, Any]], NormalisedEvent]
    # The event webhook's signature check, built once per app from settings.
    verifier: Callable[[Settings], RequestVerifier]
    # None when the provider does not post inbound email to us.
    inbound: InboundForm | None = None
    # Drop reasons (lower case) about the account, not the address: the message was never
    # delivered, so resuming the paused wave sends it again.
    account_drop_reasons: frozenset[str] = frozenset()
