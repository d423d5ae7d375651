"""One outgoing batch as every transport, the renderer and previews see it.

A batch shares one body (HTML and text with substitution tags such as
`-first_name-`), one subject template, one From and one Reply-To, and the
custom args and headers that are the same for everyone in it (case, wave,
send key; List-Unsubscribe-Post); each recipient brings its own
substitutions, custom args and headers, which win over the shared ones. This
is the shape of one SendGrid mail-send request, and the outbox fills the tags
and merges the args the same way SendGrid does.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Address:
    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    to: Address
    substitutions: dict[str, str]  # tag -> value, tags as they appear in the body
    custom_args: dict[str, str]  # message and supporter ids: come back on events
    headers: dict[str, str] = field(default_factory=dict)  # List-Unsubscribe


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    send_key: str  # unique per batch attempt; lets events be matched to the batch
    sender: Address
    reply_to: Address
    subject: str  # may hold substitution tags
    html: str
    text: str
    categories: tuple[str, ...]
    recipients: tuple[Recipient, ...]
    # The same for every recipient, so sent once per request, not 1,000 times:
    # a quarter of the request body, and three dict entries fewer per email.
    custom_args: dict[str, str] = field(default_factory=dict)  # case, wave, send key
    headers: dict[str, str] = field(default_factory=dict)  # List-Unsubscribe-Post

    def custom_args_for(self, recipient: Recipient) -> dict[str, str]:
        """What the provider's events for this recipient carry (theirs win, as in SendGrid)."""
        return {**self.custom_args, **recipient.custom_args}

    def headers_for(self, recipient: Recipient) -> dict[str, str]:
        return {**self.headers, **recipient.headers}
