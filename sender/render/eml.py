"""The MIME message one recipient of a batch gets, filled as the provider fills it.

Shared by previews (sender.render.preview) and the outbox transport
(sender.send.transport.outbox), so what staff preview and what the outbox
writes are built the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.headerregistry import Address as MimeAddress
from email.message import EmailMessage

from sender.core.mail import Address, OutgoingBatch, Recipient
from sender.render.merge import personalise

Headers = Sequence[tuple[str, str]]  # in order; a name may repeat


def build_eml(
    batch: OutgoingBatch,
    recipient: Recipient,
    ids: Headers,
    extra: Headers = (),
    cte: str | None = None,
) -> EmailMessage:
    """From, To, Reply-To and Subject; `ids` (Date, Message-ID) in the order given; the
    batch's headers for `recipient`; then `extra`; text and HTML in transfer encoding `cte`
    (None: the smallest that fits)."""
    fill = recipient.substitutions
    message = EmailMessage()
    message["From"] = _address(batch.sender)
    message["To"] = _address(recipient.to)
    # The provider fills substitutions in the Reply-To too: each recipient's reply token.
    reply_to = Address(personalise(batch.reply_to.email, fill), batch.reply_to.name)
    message["Reply-To"] = _address(reply_to)
    message["Subject"] = personalise(batch.subject, fill)
    for name, value in (*ids, *batch.headers_for(recipient).items(), *extra):
        message[name] = value
    message.set_content(personalise(batch.text, fill), subtype="plain", cte=cte)
    message.add_alternative(personalise(batch.html, fill), subtype="html", cte=cte)
    return message


def _address(address: Address) -> MimeAddress:
    return MimeAddress(display_name=address.name or "", addr_spec=address.email)
