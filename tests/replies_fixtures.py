"""Rows and SendGrid Inbound Parse forms for the reply, link and unsubscribe tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from campaign_fixtures import the_2020_campaign
from sqlalchemy import Engine

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Case, Message, Supporter, Wave
from sender.core.tokens import MessageRef, ReplyRef, TokenSigner
from sender.core.vocabulary import MessageStatus

SECRET = "test-secret"
INBOUND_DOMAIN = "parse.example.org"
INBOUND_SECRET = "inbound-test-secret"
NOW = datetime(2020, 12, 3, 10, 0, tzinfo=UTC)


def settings_for(engine: Engine) -> Settings:
    return Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        secret_key=SECRET,
        inbound_domain=INBOUND_DOMAIN,
        inbound_secret=INBOUND_SECRET,
        redis_url=None,
    )


@dataclass(frozen=True)
class Seeded:
    case_id: int
    plain_case_id: int  # a case with no external action page
    wave_id: int
    supporter_ids: dict[str, int]  # by email
    message_ids: dict[str, int]  # wave message by email
    reminder_ids: dict[str, int]  # a planned reminder by email


def seed(engine: Engine, settings: Settings) -> Seeded:
    with session_scope(engine) as session:
        campaign = the_2020_campaign(session)
        external = Case(
            campaign_id=campaign.id,
            slug="jani-silva",
            person="Jani Silva",
            country="CO",
            action_url="https://act.example.org/jani",
            content={"en": {"title": "Protect Jani Silva"}},
        )
        plain = Case(
            campaign_id=campaign.id,
            slug="germain-rukuki",
            person="Germain Rukuki",
            country="BI",
            content={
                "en": {
                    "title": "Free Germain Rukuki",
                    "summary": "A father jailed for 32 years for his human rights work.",
                    "ask": "Ask for his release.",
                    "authority": "The President of Burundi",
                    "authority_address": ["Presidential Palace", "Gitega, Burundi"],
                    "letter": "Dear President, <please> free Germain Rukuki.",
                },
                "ar": {
                    "title": "أطلقوا سراح جيرمان روكوكي",
                    "summary": "أب سُجن بسبب عمله في مجال حقوق الإنسان.",
                    "ask": "طالبوا بالإفراج عنه.",
                    "authority": "رئيس بوروندي",
                    "authority_address": ["القصر الرئاسي", "جيتيغا، بوروندي"],
                    "letter": "سيدي الرئيس، أطلقوا سراح جيرمان روكوكي.",
                },
            },
        )
        session.add_all([external, plain])
        session.flush()
        wave, reminder = (
            Wave(
                campaign_id=campaign.id,
                name=name,
                kind=kind,
                audience="all_assigned",
                starts_at=NOW + timedelta(days=offset),
                ends_at=NOW + timedelta(days=offset + 1),
            )
            for name, kind, offset in (
                ("first", "case_email", 0),
                ("reminder", "action_reminder", 7),
            )
        )
        session.add_all([wave, reminder])
        session.flush()
        supporters: dict[str, int] = {}
        messages: dict[str, int] = {}
        reminders: dict[str, int] = {}
        for address, language in (
            ("ana@example.com", "es"),
            ("marie@example.fr", "fr"),
            ("bob@example.org", "en"),
            ("salma@example.net", "ar"),
        ):
            supporter = Supporter(
                email=address,
                email_hash=email_hash(address),
                first_name=address.split("@")[0].title(),
                language=language,
                consent=True,
            )
            session.add(supporter)
            session.flush()
            case_id = plain.id if language == "ar" else external.id
            sent = Message(
                wave_id=wave.id,
                supporter_id=supporter.id,
                case_id=case_id,
                language=language,
                status=MessageStatus.SENT,
                sent_at=NOW,
            )
            planned = Message(
                wave_id=reminder.id,
                supporter_id=supporter.id,
                case_id=case_id,
                language=language,
            )
            session.add_all([sent, planned])
            session.flush()
            supporters[address] = supporter.id
            messages[address] = sent.id
            reminders[address] = planned.id
        return Seeded(external.id, plain.id, wave.id, supporters, messages, reminders)


def reply_address(seeded: Seeded, language: str, case_id: int | None = None) -> str:
    ref = ReplyRef(seeded.wave_id, case_id or seeded.case_id, language)
    return f"reply+{TokenSigner(SECRET).reply(ref)}@{INBOUND_DOMAIN}"


def message_ref(seeded: Seeded, address: str, case_id: int | None = None) -> MessageRef:
    return MessageRef(
        seeded.supporter_ids[address],
        seeded.message_ids[address],
        case_id or seeded.case_id,
        seeded.wave_id,
    )


def parse_fields(
    *,
    sender: str,
    to: str,
    text: str,
    subject: str = "Re: Write for Rights",
    headers: str = "",
    charsets: dict[str, str] | None = None,
) -> dict[str, str]:
    """The text fields SendGrid's default (non-raw) Inbound Parse posts."""
    header_block = headers or f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
    return {
        "headers": header_block,
        "from": sender,
        "to": to,
        "subject": subject,
        "text": text,
        "envelope": json.dumps({"to": [to.split("<")[-1].rstrip(">")], "from": sender}),
        "charsets": json.dumps(
            charsets or {"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8", "text": "utf-8"}
        ),
        "SPF": "pass",
        "dkim": "{@example.com : pass}",
    }


def multipart(
    fields: Mapping[str, bytes | str], files: Mapping[str, tuple[str, bytes]] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand, so field bytes keep any charset."""
    boundary = "xYzZY-test-boundary"
    chunks: list[bytes] = []
    for name, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    for name, (filename, data) in (files or {}).items():
        chunks.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def raw_mode_fields(
    *, sender: str, to_header: str, envelope_to: str, subject: str
) -> dict[str, str]:
    """The text fields SendGrid's raw mode ("POST the raw, full MIME message") posts
    beside `email`: SendGrid's Inbound Email Parse Webhook reference lists dkim, email,
    to, from, sender_ip, spam_report, envelope, subject, spam_score, charsets and SPF;
    django-anymail's test_inbound_mime shows the same set (charsets without `email`)."""
    return {
        "to": to_header,
        "from": sender,
        "subject": subject,
        "envelope": json.dumps({"to": [envelope_to], "from": sender.split("<")[-1].rstrip(">")}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "sender_ip": "198.51.100.7",
        "spam_score": "0.1",
        "SPF": "pass",
        "dkim": "{@example.org : pass}",
    }


def mime_reply(*, sender: str, to_header: str, subject: str, text: str) -> bytes:
    """A plain-text reply as a mail client sends it: the `email` field of raw mode."""
    return (
        f"From: {sender}\r\nTo: {to_header}\r\nSubject: {subject}\r\n"
        "Date: Thu, 03 Dec 2020 10:00:00 +0000\r\nMessage-ID: <r1@mail.example.org>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()
