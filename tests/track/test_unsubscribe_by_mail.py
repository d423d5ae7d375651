"""A mail to the List-Unsubscribe mailto address unsubscribes at once; a forged token does not.

The shape is the one our own header asks for (sender.render.renderer:
`<mailto:{unsubscribe_mailto}?subject=unsubscribe%20<token>>`); mailbox
providers that act on the mailto (RFC 2369) send a mail with that subject.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

import pytest
import render_fixtures as fx
from itsdangerous.encoding import base64_decode, base64_encode
from replies_fixtures import (
    NOW,
    SECRET,
    Seeded,
    message_ref,
    mime_reply,
    parse_fields,
    raw_mode_fields,
    seed,
    settings_for,
)
from sqlalchemy import Engine, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Message, Reply, Supporter, Suppression
from sender.core.tokens import TokenSigner
from sender.core.vocabulary import MessageStatus, ReplyStatus, SupporterStatus, WaveKind
from sender.render.renderer import Renderer
from sender.track.inbound import parse_stored_reply

MAILTO = "unsubscribe@example.org"  # Settings.unsubscribe_mailto's default


@pytest.fixture
def world(any_engine: Engine) -> tuple[Engine, Settings, Seeded]:
    settings = settings_for(any_engine)
    assert settings.unsubscribe_mailto == MAILTO
    return any_engine, settings, seed(any_engine, settings)


def parsed(engine: Engine, settings: Settings, fields: dict[str, str], **kw: Any) -> Reply:
    with session_scope(engine) as session:
        reply = Reply(raw_form={"fields": fields, "files": [], "undecoded": {}}, **kw)
        session.add(reply)
        session.flush()
        reply_id = reply.id
    parse_stored_reply(engine, settings, reply_id, NOW)
    with session_scope(engine) as session:
        stored = session.get(Reply, reply_id)
        assert stored is not None
        return stored


def token_for(seeded: Seeded, address: str) -> str:
    return TokenSigner(SECRET).unsubscribe(message_ref(seeded, address))


def state(engine: Engine, seeded: Seeded) -> dict[str, Any]:
    """Everything an unsubscribe could change, to compare before and after."""
    with session_scope(engine) as session:
        return {
            "supporters": sorted(session.execute(select(Supporter.id, Supporter.status)).all()),
            "suppressions": session.execute(select(Suppression.email_hash)).all(),
            "messages": sorted(session.execute(select(Message.id, Message.status)).all()),
            "actions": session.execute(select(Action.id)).all(),
        }


def assert_unsubscribed(engine: Engine, seeded: Seeded, address: str) -> None:
    with session_scope(engine) as session:
        supporter = session.get(Supporter, seeded.supporter_ids[address])
        assert supporter is not None and supporter.status == SupporterStatus.UNSUBSCRIBED
        suppression = session.scalars(select(Suppression)).one()
        assert (suppression.email_hash, suppression.reason, suppression.source) == (
            supporter.email_hash,
            "unsubscribed",
            "mailto",
        )
        reminder = session.get(Message, seeded.reminder_ids[address])
        assert reminder is not None and reminder.status == MessageStatus.CANCELLED
        others = session.scalars(
            select(Message.status).where(Message.supporter_id != supporter.id)
        ).all()
        assert MessageStatus.CANCELLED not in others


def test_a_mail_to_the_mailto_address_unsubscribes_at_once(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    # Gmail's unsubscribe button writes from the address the mail went to, with no text.
    subject = f"unsubscribe {token_for(seeded, 'bob@example.org')}"
    fields = parse_fields(sender="bob@example.org", to=MAILTO, subject=subject, text="")
    reply = parsed(engine, settings, fields)

    assert reply.status == ReplyStatus.UNSUBSCRIBE
    assert reply.problem is None
    assert reply.supporter_id == seeded.supporter_ids["bob@example.org"]
    assert (reply.case_id, reply.wave_id) == (seeded.case_id, seeded.wave_id)
    assert reply.raw_form["fields"]["SPF"] == "pass"  # kept, as for any reply
    assert_unsubscribed(engine, seeded, "bob@example.org")


def test_the_token_not_the_sender_names_who_is_unsubscribed(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    # Forwarded to another mailbox, or an alias: whoever holds the token may stop the mail.
    engine, settings, seeded = world
    sender = "Ana at work <ana.garcia@work.example>"
    subject = f"unsubscribe {token_for(seeded, 'ana@example.com')}"
    fields = raw_mode_fields(sender=sender, to_header=MAILTO, envelope_to=MAILTO, subject=subject)
    email = mime_reply(sender=sender, to_header=MAILTO, subject=subject, text="")
    reply = parsed(engine, settings, fields, raw_email=email)

    assert reply.status == ReplyStatus.UNSUBSCRIBE
    assert reply.supporter_id == seeded.supporter_ids["ana@example.com"]
    assert_unsubscribed(engine, seeded, "ana@example.com")


def test_a_second_mail_changes_nothing_more(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, settings, seeded = world
    subject = f"unsubscribe {token_for(seeded, 'bob@example.org')}"
    fields = parse_fields(sender="bob@example.org", to=MAILTO, subject=subject, text="")
    parsed(engine, settings, fields)
    before = state(engine, seeded)
    again = parsed(engine, settings, fields)
    assert again.status == ReplyStatus.UNSUBSCRIBE
    assert state(engine, seeded) == before


def _edited(token: str) -> str:
    # Another supporter's id under Bob's signature.
    payload, signature = token.split(".")
    supporter_id, *rest = json.loads(base64_decode(payload))
    other = json.dumps([supporter_id + 1, *rest], separators=(",", ":"))
    return f"{base64_encode(other).decode()}.{signature}"


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("unsubscribe not-a-token", "mail to the unsubscribe address without a valid token"),
        ("unsubscribe {edited}", "mail to the unsubscribe address without a valid token"),
        ("UNSUBSCRIBE {token}x", "mail to the unsubscribe address without a valid token"),
        ("unsubscribe", "no supporter with the sender's address"),
        ("Please take me off", "no supporter with the sender's address"),
    ],
)
def test_a_forged_or_edited_token_changes_nothing_and_goes_to_review(
    world: tuple[Engine, Settings, Seeded], subject: str, problem: str
) -> None:
    engine, settings, seeded = world
    token = token_for(seeded, "bob@example.org")
    subject = subject.format(token=token, edited=_edited(token))
    assert subject != f"unsubscribe {token}"
    before = state(engine, seeded)
    fields = parse_fields(sender="mallory@example.net", to=MAILTO, subject=subject, text="")
    reply = parsed(engine, settings, fields)

    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None and reply.problem.startswith(problem)
    assert state(engine, seeded) == before


def test_a_forged_token_from_the_supporters_own_address_still_changes_nothing(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    before = state(engine, seeded)
    subject = f"unsubscribe {_edited(token_for(seeded, 'ana@example.com'))}"
    fields = parse_fields(sender="bob@example.org", to=MAILTO, subject=subject, text="")
    reply = parsed(engine, settings, fields)
    assert reply.status == ReplyStatus.REVIEW
    assert state(engine, seeded) == before


def test_a_bare_unsubscribe_from_a_supporter_is_read_as_a_stop_reply(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    # No token to check: the generous STOP rule applies, as it did before.
    engine, settings, _ = world
    fields = parse_fields(sender="bob@example.org", to=MAILTO, subject="Unsubscribe", text="")
    assert parsed(engine, settings, fields).status == ReplyStatus.UNSUBSCRIBE
    with session_scope(engine) as session:
        assert session.scalars(select(Suppression.source)).one() == "reply"


def test_a_token_for_a_forgotten_supporter_does_nothing(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    with session_scope(engine) as session:
        supporter = session.get(Supporter, seeded.supporter_ids["bob@example.org"])
        assert supporter is not None
        supporter.forgotten_at = NOW
    before = state(engine, seeded)
    subject = f"unsubscribe {token_for(seeded, 'bob@example.org')}"
    fields = parse_fields(sender="bob@example.org", to=MAILTO, subject=subject, text="")
    assert parsed(engine, settings, fields).status == ReplyStatus.REVIEW
    assert state(engine, seeded) == before


def test_the_header_the_renderer_writes_is_the_mail_that_unsubscribes(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    # Round trip: what a mailbox provider sends when it acts on our List-Unsubscribe mailto.
    engine, settings, seeded = world
    renderer = Renderer(fx.settings(secret_key=SECRET))
    case = replace(fx.case(), id=seeded.case_id)
    variant = renderer.variant(WaveKind.CASE_EMAIL, case, "en")
    who = replace(
        fx.who(),
        supporter_id=seeded.supporter_ids["marie@example.fr"],
        message_id=seeded.message_ids["marie@example.fr"],
        case_id=seeded.case_id,
        wave_id=seeded.wave_id,
    )
    header = renderer.recipient(variant, who).headers["List-Unsubscribe"]
    mailto = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", header)
    assert mailto is not None
    address, subject = mailto.group(1), unquote(mailto.group(2))
    fields = parse_fields(sender="marie@example.fr", to=address, subject=subject, text="")

    assert parsed(engine, settings, fields).status == ReplyStatus.UNSUBSCRIBE
    assert_unsubscribed(engine, seeded, "marie@example.fr")
