"""A transport for proof tests that refuses some variants."""

from __future__ import annotations

from sender.core.mail import OutgoingBatch
from sender.send.transport.base import Accepted, Rejected


class ArabicRefused:
    """Takes every batch but those with an Arabic subject, as a provider refusing them might."""

    name = "test"

    def __init__(self) -> None:
        self.sent: list[OutgoingBatch] = []

    def send(self, batch: OutgoingBatch) -> Accepted:
        if "اكتبوا" in batch.subject:
            raise Rejected("400: the subject was refused", status_code=400)
        self.sent.append(batch)
        return Accepted("accepted")
