"""Parsing stored inbound replies: matching, stripping, auto-replies, STOP, review."""

from __future__ import annotations

import json
from typing import Any

import pytest
from replies_fixtures import (
    NOW,
    Seeded,
    mime_reply,
    parse_fields,
    raw_mode_fields,
    reply_address,
    seed,
    settings_for,
)
from sqlalchemy import Engine, func, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Message, Reply, Supporter, Suppression
from sender.core.vocabulary import ActionKind, MessageStatus, ReplyStatus, SupporterStatus
from sender.track.inbound import asks_to_stop, parse_stored_reply
from sender.track.quoting import strip_quoted


@pytest.fixture
def world(any_engine: Engine) -> tuple[Engine, Settings, Seeded]:
    settings = settings_for(any_engine)
    return any_engine, settings, seed(any_engine, settings)


def store(engine: Engine, raw_form: dict[str, Any], raw_email: bytes | None = None) -> int:
    with session_scope(engine) as session:
        reply = Reply(raw_form=raw_form, raw_email=raw_email)
        session.add(reply)
        session.flush()
        return reply.id


def parsed(engine: Engine, settings: Settings, raw_form: dict[str, Any], **kw: Any) -> Reply:
    reply_id = store(engine, raw_form, **kw)
    parse_stored_reply(engine, settings, reply_id, NOW)
    with session_scope(engine) as session:
        reply = session.get(Reply, reply_id)
        assert reply is not None
        return reply


def count(engine: Engine, model: type[Any]) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def form(**fields: Any) -> dict[str, Any]:
    return {"fields": parse_fields(**fields), "files": [], "undecoded": {}}


QUOTED_ES = (
    "¡Mucho ánimo, Jani! Estamos contigo.\n\n"
    "El mié, 2 dic 2020 a las 10:00, Amnistía <campaigns@example.org> escribió:\n"
    "> Hola Ana,\n> Escribe una carta hoy.\n"
)


def test_a_reply_is_matched_stripped_and_counted_once(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    raw = form(sender="Ana <Ana@Example.com>", to=reply_address(seeded, "es"), text=QUOTED_ES)
    reply = parsed(engine, settings, raw)

    assert reply.status == ReplyStatus.MATCHED
    assert reply.problem is None
    assert reply.body == "¡Mucho ánimo, Jani! Estamos contigo."
    assert reply.supporter_id == seeded.supporter_ids["ana@example.com"]
    assert (reply.case_id, reply.wave_id, reply.language) == (seeded.case_id, seeded.wave_id, "es")
    assert reply.raw_form == raw  # the original stays beside the parsed copy
    with session_scope(engine) as session:
        action = session.scalars(select(Action)).one()
        assert action.kind == ActionKind.REPLIED
        assert action.dedupe_key == f"reply:{reply.id}"
        assert action.message_id == seeded.message_ids["ana@example.com"]
        assert action.source == "inbound"
        # A retried task (or a staff re-parse) must not count the reply twice.
        session.get(Reply, reply.id).status = ReplyStatus.RECEIVED  # type: ignore[union-attr]
    parse_stored_reply(engine, settings, reply.id, NOW)
    assert count(engine, Action) == 1


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Réponse automatique : Write for Rights", ""),
        ("Absence du bureau", ""),
        ("Re: Write for Rights", "Auto-Submitted: auto-replied\r\n"),
        ("Re: Write for Rights", "X-Autoreply: yes\r\n"),
        ("Re: Write for Rights", "X-Autorespond: on\r\n"),
        ("Re: Write for Rights", "Precedence: auto_reply\r\n"),
        ("Respuesta automática: Write for Rights", ""),
        ("رد تلقائي: اكتب من أجل الحقوق", ""),
    ],
)
def test_out_of_office_is_stored_but_not_an_action(
    world: tuple[Engine, Settings, Seeded], subject: str, headers: str
) -> None:
    engine, settings, seeded = world
    to = reply_address(seeded, "fr")
    block = f"From: marie@example.fr\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}"
    text = "Je suis absente jusqu'au 4 janvier. Je lirai votre message à mon retour."
    reply = parsed(
        engine,
        settings,
        form(sender="marie@example.fr", to=to, text=text, subject=subject, headers=block),
    )
    assert reply.status == ReplyStatus.AUTO_REPLY
    assert reply.supporter_id == seeded.supporter_ids["marie@example.fr"]
    assert reply.body == text
    assert count(engine, Action) == 0
    assert count(engine, Suppression) == 0


def test_auto_submitted_no_is_a_person_writing(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, seeded = world
    to = reply_address(seeded, "fr")
    block = f"From: marie@example.fr\r\nTo: {to}\r\nAuto-Submitted: no\r\n"
    reply = parsed(
        engine,
        settings,
        form(sender="marie@example.fr", to=to, text="Courage à vous !", headers=block),
    )
    assert reply.status == ReplyStatus.MATCHED
    assert count(engine, Action) == 1


@pytest.mark.parametrize(
    ("address", "text"),
    [
        ("bob@example.org", "STOP"),
        ("bob@example.org", "Unsubscribe me.\n\n-- \nBob\nSent from my phone"),
        ("ana@example.com", "Baja"),
        ("marie@example.fr", "Me désabonner, merci"),
        ("marie@example.fr", "Désabonnez-moi"),
        ("salma@example.net", "إلغاء الاشتراك"),
    ],
)
def test_stop_replies_unsubscribe_the_supporter(
    world: tuple[Engine, Settings, Seeded], address: str, text: str
) -> None:
    engine, settings, seeded = world
    supporter_id = seeded.supporter_ids[address]
    to = reply_address(seeded, "en")
    reply = parsed(engine, settings, form(sender=address, to=to, text=text))

    assert reply.status == ReplyStatus.UNSUBSCRIBE
    with session_scope(engine) as session:
        supporter = session.get(Supporter, supporter_id)
        assert supporter is not None and supporter.status == SupporterStatus.UNSUBSCRIBED
        suppression = session.scalars(select(Suppression)).one()
        assert suppression.email_hash == supporter.email_hash
        assert suppression.reason == "unsubscribed"
        reminder = session.get(Message, seeded.reminder_ids[address])
        sent = session.get(Message, seeded.message_ids[address])
        assert reminder is not None and reminder.status == MessageStatus.CANCELLED
        assert sent is not None and sent.status == MessageStatus.SENT
        others = session.scalars(
            select(Message.status).where(Message.supporter_id != supporter_id)
        ).all()
        assert MessageStatus.CANCELLED not in others
    assert count(engine, Action) == 0


def test_solidarity_that_mentions_stop_is_not_a_request() -> None:
    assert not asks_to_stop("Don't stop! Stop the injustice, free Germain.", None)
    assert not asks_to_stop("I will never stop writing", "Re: stop")
    assert asks_to_stop("", "RE: Unsubscribe")
    assert asks_to_stop("stop.", None)


def test_unknown_sender_goes_to_review_with_everything_kept(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    raw = form(
        sender="stranger@elsewhere.example", to=reply_address(seeded, "en"), text="Solidarity!"
    )
    reply = parsed(engine, settings, raw)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem == "no supporter with the sender's address"
    assert (reply.from_email, reply.body, reply.case_id) == (
        "stranger@elsewhere.example",
        "Solidarity!",
        seeded.case_id,
    )
    assert reply.raw_form == raw
    assert count(engine, Action) == 0


def test_a_tampered_reply_token_goes_to_review(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, seeded = world
    good = reply_address(seeded, "en")
    local, domain = good.split("@")
    token = local.removeprefix("reply+")
    wave, case, language, signature = token.split(".")
    forged = f"reply+{wave}.{int(case) + 1}.{language}.{signature}@{domain}"
    reply = parsed(engine, settings, form(sender="bob@example.org", to=forged, text="Hi"))
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem == "reply token is not valid"
    assert reply.case_id is None
    assert reply.supporter_id == seeded.supporter_ids["bob@example.org"]
    assert count(engine, Action) == 0


def test_missing_fields_go_to_review(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, _ = world
    raw = {"fields": {"text": "A message with no envelope at all"}, "files": []}
    reply = parsed(engine, settings, raw)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem == "missing From address; missing To address"
    assert reply.body == "A message with no envelope at all"
    assert reply.raw_form == raw


def test_unknown_charset_goes_to_review(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, seeded = world
    raw = form(
        sender="bob@example.org",
        to=reply_address(seeded, "en"),
        text="caf\ufffd",
        charsets={"text": "x-unknown", "from": "UTF-8"},
    )
    raw["undecoded"] = {"text": "unknown charset 'x-unknown'; raw bytes kept"}
    reply = parsed(engine, settings, raw)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None and "x-unknown" in reply.problem
    assert reply.supporter_id == seeded.supporter_ids["bob@example.org"]
    assert count(engine, Action) == 0


def test_broken_mime_goes_to_review_and_keeps_the_bytes(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    broken = (
        f"From: bob@example.org\r\nTo: {reply_address(seeded, 'en')}\r\n"
        'Subject: Re: hi\r\nContent-Type: multipart/alternative; boundary="nope"\r\n\r\n'
        "no boundary ever appears here\r\n"
    ).encode()
    reply = parsed(engine, settings, {"fields": {}, "files": []}, raw_email=broken)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None and "broken MIME" in reply.problem
    assert reply.raw_email == broken
    assert count(engine, Action) == 0


def test_raw_mime_reply_is_matched(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, seeded = world
    raw = (
        f"From: Bob <bob@example.org>\r\nTo: {reply_address(seeded, 'en')}\r\n"
        "Subject: Re: Jani\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Bonne chance =E0 Jani.\r\n\r\nOn Wed, Dec 2, 2020 at 10:00 AM Amnesty "
        "<campaigns@example.org> wrote:\r\n> Write a letter\r\n"
    ).encode("ascii")
    checks = {"SPF": "pass", "dkim": "{@example.org : pass}"}  # posted in raw mode too
    reply = parsed(engine, settings, {"fields": checks, "files": []}, raw_email=raw)
    assert reply.status == ReplyStatus.MATCHED
    assert reply.body == "Bonne chance à Jani."
    assert count(engine, Action) == 1


def test_arabic_quotes_are_cut_though_the_parser_lacks_arabic() -> None:
    text = (
        "نحن معكم، لا تستسلموا.\n\n"
        "في الأربعاء، 2 ديسمبر 2020، كتب منظمة العفو <campaigns@example.org>:\n"
        "> مرحبا سلمى\n"
    )
    assert strip_quoted(text, "ar") == "نحن معكم، لا تستسلموا."


def test_html_only_reply_is_read_as_text(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, seeded = world
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="")
    fields["html"] = "<div>Free <b>Germain</b>!</div><style>p{}</style>"
    reply = parsed(engine, settings, {"fields": fields, "files": []})
    assert reply.status == ReplyStatus.MATCHED
    assert reply.body == "Free Germain!"


def test_attachments_are_noted_and_the_reply_still_counts(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    raw = form(sender="bob@example.org", to=reply_address(seeded, "en"), text="See my photo")
    raw["files"] = [
        {
            "field": "attachment1",
            "filename": "march.jpg",
            "content_type": "image/jpeg",
            "size": 25 * 1024 * 1024,
        }
    ]
    reply = parsed(engine, settings, raw)
    assert reply.status == ReplyStatus.MATCHED
    assert reply.problem == "attachment not kept: march.jpg (25.0 MB)"
    assert count(engine, Action) == 1
    assert json.dumps(reply.raw_form).count("march.jpg") == 1


def test_raw_mode_matches_a_token_found_only_in_the_envelope(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    # A list or a forwarder rewrote To; SendGrid's envelope still names our address.
    engine, settings, seeded = world
    list_address = "Friends of Jani <friends-of-jani@lists.example.org>"
    sender = "Ana <ana@example.com>"
    fields = raw_mode_fields(
        sender=sender,
        to_header=list_address,
        envelope_to=reply_address(seeded, "es"),
        subject="Re: Jani",
    )
    email = mime_reply(sender=sender, to_header=list_address, subject="Re: Jani", text=QUOTED_ES)
    reply = parsed(engine, settings, {"fields": fields, "files": []}, raw_email=email)

    assert reply.status == ReplyStatus.MATCHED
    assert reply.problem is None
    assert (reply.case_id, reply.wave_id, reply.language) == (seeded.case_id, seeded.wave_id, "es")
    assert reply.supporter_id == seeded.supporter_ids["ana@example.com"]
    assert reply.body == "¡Mucho ánimo, Jani! Estamos contigo."
    assert reply.raw_email == email
    assert count(engine, Action) == 1


def test_raw_mode_with_no_token_anywhere_still_goes_to_review(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, _ = world
    elsewhere = "someone@lists.example.org"
    fields = raw_mode_fields(
        sender="ana@example.com", to_header=elsewhere, envelope_to=elsewhere, subject="Hola"
    )
    email = mime_reply(sender="ana@example.com", to_header=elsewhere, subject="Hola", text="Hola")
    reply = parsed(engine, settings, {"fields": fields, "files": []}, raw_email=email)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem == "no reply token in the recipient addresses"
    assert count(engine, Action) == 0
