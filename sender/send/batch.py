"""One batch between the send pipeline and its store: the plain values that cross, and
the `SendStore` protocol.

The pipeline (sender.send.pipeline) sees the database only through a `SendStore`:
it gets a claimed, re-checked batch as a `PreparedBatch` of frozen values (no ORM
rows, no session) and reports back what became of it. Every transaction is the
store's; sender.send.store.SqlSendStore is the one the workers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sender.render.renderer import CaseContent, RecipientData, WaveContent


class BatchOutcome(StrEnum):
    SENT = "sent"
    NOT_MINE = "not_mine"  # another worker has it, or it is no longer queued
    HELD = "held"  # wave paused/cancelled or case paused: back to pending, nothing sent
    EXPIRED = "expired"  # its send window closed: cancelled, never sent late
    RETRY = "retry"  # not accepted yet; back to pending with a retry time
    FAILED = "failed"  # the provider refused this batch (400/413)
    UNAUTHORISED = "unauthorised"  # wave paused (401/403)
    UNKNOWN = "unknown"  # left SENDING for reconciliation


class Ending(StrEnum):
    """How a claimed batch that the provider did not take leaves this attempt."""

    FAILED = "failed"  # the batch and its unsent messages fail
    LATER = "later"  # back to pending, from `retry_at` when one is given
    PAUSED = "paused"  # back to pending, and its wave paused with the same reason
    UNKNOWN = "unknown"  # stays SENDING: only provider events can settle it


@dataclass(frozen=True)
class CampaignIdentity:
    id: int
    slug: str
    brand: Mapping[str, str]  # the campaign row's own brand; render.identity fills the rest
    from_email: str
    from_name: str
    # The campaign's own kinds (Campaign.kinds), and a digest of them: a worker keeps
    # one renderer per campaign and builds a new one when the kinds change.
    kinds: Mapping[str, Any] = field(default_factory=dict)
    kinds_digest: str = ""


@dataclass(frozen=True)
class PreparedBatch:
    """A claimed batch after its re-check: everything delivery needs, as values."""

    id: int
    language: str
    campaign: CampaignIdentity
    wave: WaveContent
    case: CaseContent
    rate_per_hour: int | None  # the wave's own rate, if it has one
    domain_rates: Mapping[str, int]  # warmed-up domains' hourly rates
    going: tuple[RecipientData, ...]  # still eligible, in message order
    skipped: int  # marked SKIPPED by the re-check


@dataclass(frozen=True)
class Settled:
    """A claim with nothing to deliver: the store has already put the batch where it goes."""

    outcome: BatchOutcome  # NOT_MINE, HELD, EXPIRED, or SENT when nobody was left
    wave_id: int | None = None  # known once the batch was claimed
    case_id: int | None = None
    skipped: int = 0
    detail: str = ""


class SendStore(Protocol):
    """The pipeline's only door to the database; each call is one transaction."""

    def claim(self, batch_id: int, send_key: str, now: datetime) -> PreparedBatch | Settled:
        """QUEUED → SENDING under `send_key`, then the wave, case, window and every
        recipient re-checked (those no longer eligible are marked SKIPPED)."""
        ...

    def rekey(self, batch_id: int, old_key: str, new_key: str, now: datetime) -> bool:
        """A new attempt gets a new key before it leaves; False if the batch was taken over."""
        ...

    def still_sendable(self, wave_id: int, case_id: int) -> bool:
        """The wave is still sending and the case still active."""
        ...

    def accept(self, batch_id: int, send_key: str, now: datetime, provider_id: str | None) -> int:
        """The provider took it: the batch and its messages SENT, the sends counted once.
        Returns the messages marked sent (0 when this key no longer holds the batch)."""
        ...

    def finish(
        self,
        batch: PreparedBatch,
        send_key: str,
        ending: Ending,
        error: str | None,
        retry_at: datetime | None = None,
    ) -> None:
        """Leave this attempt as `ending` says, if `send_key` still holds the batch."""
        ...
