"""The forms the local SendGrid's Inbound Parse posts: default or raw mode, any charset.

Shapes, from SendGrid's "Inbound Email Parse Webhook" reference and the
payloads captured in django-anymail's tests (tests/test_sendgrid_inbound.py),
written here in our own words:

- default mode: multipart/form-data with `headers` (the raw header block), `from`,
  `to`, `cc`, `subject`, `text`, `html`, `envelope` (JSON: `to` list, `from`),
  `charsets` (JSON naming each text field's charset: the bytes of `text`,
  `html` and `subject` are in the mail's own charset, not re-encoded as
  UTF-8; anymail's capture of 7/2020 shows windows-1252, iso-8859-1 and cp850),
  `SPF` (the envelope sender's SPF result: pass, fail, softfail, neutral, none...),
  `dkim` (SendGrid's not-quite-JSON `{@domain : pass}`, one entry per signature, or
  `none` for an unsigned email), `sender_ip`,
  `spam_score`, `spam_report`, and for attachments `attachments` (their count),
  `attachment-info` (JSON by part name: `filename`, `name`, `type`) and one file
  part per attachment named `attachment1`, `attachment2`...;
- raw mode ("POST the raw, full MIME message"): `email` (the whole message, its
  attachments inside it) with `from`, `to`, `subject`, `envelope`, `charsets`
  (for to/from/subject only), `SPF`, `dkim`, `sender_ip`, `spam_score`,
  `spam_report`; no `headers`, `text`, `html` or attachment fields.
"""

from __future__ import annotations

import base64
import codecs
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Any

import requests

# One multipart part for requests: a text field (name, (None, bytes)) or a file
# (name, (filename, bytes, content type)).
Part = tuple[str, tuple[None, bytes] | tuple[str, bytes, str]]

_SPAM_REPORT = "Spam detection software, running on the local SendGrid, found nothing."


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class InboundMail:
    """One email as a supporter's mail client sent it to the parse domain."""

    sender: str
    to: str
    subject: str
    text: str
    html: str | None = None
    charset: str = "utf-8"  # of the body (and, in default mode, of text/html/subject)
    attachments: tuple[Attachment, ...] = ()
    envelope_to: str | None = None  # the SMTP recipient; the address in `to` by default
    # What SendGrid's checks say: pass by default (a real supporter's provider signs);
    # "fail", "softfail", "none"... to play a forged From (docs/SENDGRID.md).
    spf: str = "pass"
    dkim: str = "pass"  # the result of a signature by the From domain, or "none"

    @classmethod
    def from_json(cls, data: dict[str, Any], to: str, subject: str) -> InboundMail:
        """The `/_admin/reply` options; ValueError for a charset Python does not know."""
        charset = str(data.get("charset") or "utf-8")
        try:
            codecs.lookup(charset)
        except LookupError:
            raise ValueError(f"unknown charset {charset!r}") from None
        return cls(
            sender=str(data["from"]),
            to=to,
            subject=subject,
            text=str(data["text"]),
            html=data.get("html"),
            charset=charset,
            attachments=tuple(_attachment(item) for item in data.get("attachments") or ()),
            envelope_to=data.get("envelope_to"),
            spf=str(data.get("spf") or "pass"),
            dkim=str(data.get("dkim") or "pass"),
        )

    @property
    def envelope(self) -> str:
        to = self.envelope_to or parseaddr(self.to)[1] or self.to
        return json.dumps({"to": [to], "from": parseaddr(self.sender)[1] or self.sender})


def reply_form(mail: InboundMail, *, raw: bool = False) -> list[Part]:
    return raw_form(mail) if raw else parsed_form(mail)


def parsed_form(mail: InboundMail) -> list[Part]:
    """Default mode: SendGrid has parsed the email into fields."""
    message = mime_message(mail)
    header_block = bytes(message).split(b"\r\n\r\n", 1)[0].decode("ascii") + "\r\n"
    html = mail.html if mail.html is not None else f"<p>{mail.text}</p>"
    charset = _label(mail.charset)
    fields: list[tuple[str, bytes]] = [
        ("headers", header_block.encode("ascii")),
        ("from", mail.sender.encode()),
        ("to", mail.to.encode()),
        ("subject", mail.subject.encode(mail.charset)),
        ("text", mail.text.encode(mail.charset)),
        ("html", html.encode(mail.charset)),
        ("envelope", mail.envelope.encode()),
        ("charsets", _charsets(charset).encode()),
        *_checks(mail),
        ("attachments", str(len(mail.attachments)).encode()),
    ]
    if mail.attachments:
        info = {
            f"attachment{i}": {"filename": a.filename, "name": a.filename, "type": a.content_type}
            for i, a in enumerate(mail.attachments, 1)
        }
        fields.append(("attachment-info", json.dumps(info).encode()))
    parts: list[Part] = [(name, (None, value)) for name, value in fields]
    parts += [
        (f"attachment{i}", (a.filename, a.content, a.content_type))
        for i, a in enumerate(mail.attachments, 1)
    ]
    return parts


def raw_form(mail: InboundMail) -> list[Part]:
    """Raw mode: the whole MIME message in `email`, a few fields beside it."""
    fields: list[tuple[str, bytes]] = [
        ("email", bytes(mime_message(mail))),
        ("from", mail.sender.encode()),
        ("to", mail.to.encode()),
        ("subject", mail.subject.encode()),
        ("envelope", mail.envelope.encode()),
        ("charsets", json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}).encode()),
        *_checks(mail),
    ]
    return [(name, (None, value)) for name, value in fields]


def mime_message(mail: InboundMail) -> EmailMessage:
    """The email itself: text (and HTML when given) in `charset`, attachments after."""
    message = EmailMessage(policy=SMTP)
    message["From"] = mail.sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.net>"
    message.set_content(mail.text, charset=mail.charset)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html", charset=mail.charset)
    for item in mail.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(
            item.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=item.filename,
        )
    return message


def post_inbound(
    url: str, form: Sequence[Part], auth: tuple[str, str] | None, timeout: float = 30.0
) -> int:
    answer = requests.post(url, files=list(form), auth=auth, timeout=timeout)
    return answer.status_code


def _charsets(charset: str) -> str:
    named = {"to": "UTF-8", "from": "UTF-8", "subject": charset, "text": charset, "html": charset}
    return json.dumps(named)


def _checks(mail: InboundMail) -> list[tuple[str, bytes]]:
    """SendGrid's SPF and DKIM results, for the From address's domain as a real one signs."""
    domain = (parseaddr(mail.sender)[1] or mail.sender).rpartition("@")[2] or "example.net"
    dkim = "none" if mail.dkim == "none" else f"{{@{domain} : {mail.dkim}}}"
    return [
        ("SPF", mail.spf.encode()),
        ("dkim", dkim.encode()),
        ("sender_ip", b"198.51.100.20"),
        ("spam_score", b"0.1"),
        ("spam_report", _SPAM_REPORT.encode()),
    ]


def _label(charset: str) -> str:
    # The name a mail client would write, e.g. "ISO-8859-1", "windows-1252", "Shift_JIS".
    return {"iso8859-1": "ISO-8859-1", "cp1252": "windows-1252", "shift_jis": "Shift_JIS"}.get(
        codecs.lookup(charset).name, charset
    )


def _attachment(item: dict[str, Any]) -> Attachment:
    content = base64.b64decode(item.get("data_base64", "")) or b"x" * int(item.get("size", 0))
    return Attachment(
        str(item["filename"]), content, str(item.get("content_type", "application/octet-stream"))
    )
