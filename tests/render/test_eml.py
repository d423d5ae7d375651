"""The one .eml builder shared by previews and the outbox."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default

import pytest
import render_fixtures as fx

from sender.core.mail import OutgoingBatch, Recipient
from sender.core.vocabulary import WaveKind
from sender.render.eml import build_eml
from sender.render.renderer import Renderer


def _batch() -> tuple[OutgoingBatch, Recipient]:
    renderer = Renderer(fx.settings())
    variant = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "fr")
    recipient = renderer.recipient(variant, fx.who())
    return renderer.batch(variant, [recipient], "k", ()), recipient


def test_headers_come_in_order_filled_and_may_repeat() -> None:
    ids = (("Date", "Mon, 05 Oct 2020 12:00:00 +0000"), ("Message-ID", "<1@x>"))
    extra = (("X-Campaign-A", "1"), ("X-Campaign-A", "2"))
    message = build_eml(*_batch(), ids, extra)
    names = [name for name, _ in message.items()]
    assert names[:6] == ["From", "To", "Reply-To", "Subject", "Date", "Message-ID"]
    assert names[6:8] == ["List-Unsubscribe-Post", "List-Unsubscribe"]
    assert message.get_all("X-Campaign-A") == ["1", "2"]
    assert message["Subject"] == "Maya, écrivez aujourd'hui pour Ana Ríos"
    assert message["To"] == "Maya Okafor <maya@example.org>"


@pytest.mark.parametrize("cte", [None, "quoted-printable", "base64"])
def test_both_parts_are_filled_in_the_encoding_asked_for(cte: str | None) -> None:
    raw = build_eml(*_batch(), (), cte=cte).as_bytes()
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    assert "Bonjour Maya," in plain.get_content() and "Bonjour Maya," in html.get_content()
    if cte is not None:
        assert plain["Content-Transfer-Encoding"] == cte == html["Content-Transfer-Encoding"]
