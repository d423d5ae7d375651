"""The Transport protocol and what it answers.

A transport takes one `OutgoingBatch` (sender.core.mail) and hands it to the
provider in one request, or raises one of the errors below; it never retries:
retry policy, backoff and rate limits are the pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sender.core.errors import TransportError
from sender.core.mail import OutgoingBatch


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the whole batch (SendGrid: 202 Accepted)."""

    provider_message_id: str | None
    status_code: int = 202


class Transport(Protocol):
    name: str

    def send(self, batch: OutgoingBatch) -> Accepted:
        """Hand one batch over; raise a TransportError subclass when it is not taken."""
        ...


class RetryLater(TransportError):
    """Rate limited (429), server error (5xx), timeout or lost connection: try again."""

    def __init__(
        self, message: str, *, wait_seconds: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds  # the provider said when (429 reset); else back off
        self.status_code = status_code


class Rejected(TransportError):
    """The provider refused this batch as it is (400, 413): fails the batch, not the wave."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class NotAuthorised(TransportError):
    """Bad key or unverified sender (401, 403): pause the wave, send nothing more."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class OutcomeUnknown(TransportError):
    """The request may have reached the provider but no answer came back.

    Resending blindly could duplicate mail: the batch must be reconciled first.
    """
