"""The local SendGrid's Inbound Parse posts, end to end through the real web app.

Raw mode, non-UTF-8 charsets and attachments, in the shapes of SendGrid's
Inbound Email Parse Webhook reference (fields listed in
sender.devtools.local_sendgrid.inbound_mail), posted by the local server as a
real process to the real app served over HTTP, then read from the database.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
import requests
from replies_fixtures import INBOUND_SECRET, Seeded, reply_address, seed, settings_for
from sendgrid_fixtures import Receiver, receiver
from sqlalchemy import Engine, select

from sender.core.db import session_scope
from sender.core.models import Action, Reply, Supporter
from sender.core.vocabulary import ReplyStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid, local_sendgrid
from sender.devtools.webapp import serving
from sender.web import create_app

__all__ = ["receiver"]  # a fixture used by name


@pytest.fixture(scope="module")
def parse_sendgrid() -> Iterator[LocalSendGrid]:
    with local_sendgrid(inbound_auth=("sendgrid", INBOUND_SECRET)) as server:
        yield server


@dataclass(frozen=True)
class World:
    engine: Engine
    seeded: Seeded
    sg: LocalSendGrid
    inbound_url: str

    def reply(self, **options: Any) -> dict[str, Any]:
        return self.sg.admin.reply(inbound_url=self.inbound_url, **options)

    def stored(self) -> Reply:
        with session_scope(self.engine) as session:
            return session.scalars(select(Reply)).one()

    def actions(self) -> int:
        with session_scope(self.engine) as session:
            return len(session.scalars(select(Action.id)).all())


@pytest.fixture
def world(pg_engine: Engine, parse_sendgrid: LocalSendGrid) -> Iterator[World]:
    settings = settings_for(pg_engine)
    seeded = seed(pg_engine, settings)
    with serving(create_app(settings)) as url:
        yield World(pg_engine, seeded, parse_sendgrid, f"{url}/webhooks/sendgrid/inbound")


def test_a_raw_mode_reply_is_matched_through_its_envelope(world: World) -> None:
    # A forwarder rewrote To; only SendGrid's envelope still names the reply address.
    answer = world.reply(
        raw=True,
        to="Friends of Jani <friends@lists.example.org>",
        envelope_to=reply_address(world.seeded, "es"),
        subject="Re: Jani",
        text="¡Mucho ánimo, Jani!\n\nEl mié, 2 dic 2020 a las 10:00, Amnistía "
        "<campaigns@example.org> escribió:\n> Hola Ana\n",
        **{"from": "Ana <ana@example.com>"},
    )
    assert answer["status"] == 200
    reply = world.stored()
    assert reply.status == ReplyStatus.MATCHED
    assert reply.body == "¡Mucho ánimo, Jani!"
    assert reply.supporter_id == world.seeded.supporter_ids["ana@example.com"]
    assert reply.raw_email is not None and b"Friends of Jani" in reply.raw_email
    fields = reply.raw_form["fields"]
    assert "text" not in fields and "headers" not in fields  # raw mode posts neither
    assert json.loads(fields["envelope"])["to"] == [reply_address(world.seeded, "es")]
    assert (fields["SPF"], fields["dkim"]) == ("pass", "{@example.com : pass}")  # From domain
    assert world.actions() == 1


@pytest.mark.parametrize(
    ("charset", "sender", "text"),
    [
        ("windows-1252", "marie@example.fr", "Courage à Jani – on lâche rien… « merci »"),
        ("iso-8859-1", "ana@example.com", "¡Ánimo, señora Silva! Año tras año."),
        ("shift_jis", "bob@example.org", "頑張ってください、ジャニさん。"),
    ],
)
def test_a_reply_in_a_legacy_charset_is_decoded_right(
    world: World, charset: str, sender: str, text: str
) -> None:
    language = {"marie@example.fr": "fr", "ana@example.com": "es"}.get(sender, "en")
    answer = world.reply(
        charset=charset,
        to=reply_address(world.seeded, language),
        subject="Re: Jani",
        text=text,
        html=f"<p>{text}</p>",
        **{"from": sender},
    )
    assert answer["status"] == 200
    reply = world.stored()
    assert reply.status == ReplyStatus.MATCHED
    assert reply.problem is None
    assert reply.body == text
    fields = reply.raw_form["fields"]
    named = json.loads(fields["charsets"])
    assert (named["text"], named["html"]) == (named["subject"], named["subject"])
    assert named["text"].lower().replace("_", "-") in {charset, "shift-jis"}
    assert fields["text"] == text and fields["html"] == f"<p>{text}</p>"
    assert reply.raw_form["undecoded"] == {}


def test_a_raw_mode_reply_in_iso_8859_1_is_decoded_from_its_mime(world: World) -> None:
    text = "Très bien, on écrit à l'ambassade."
    world.reply(
        raw=True,
        charset="iso-8859-1",
        to=reply_address(world.seeded, "fr"),
        subject="Re: Jani",
        text=text,
        **{"from": "marie@example.fr"},
    )
    reply = world.stored()
    assert reply.raw_email is not None and text.encode("iso-8859-1") in reply.raw_email
    assert (reply.status, reply.body) == (ReplyStatus.MATCHED, text)


def test_a_reply_with_an_attachment_counts_and_the_file_is_noted(world: World) -> None:
    photo = bytes(range(256)) * 8
    world.reply(
        to=reply_address(world.seeded, "en"),
        subject="Re: Germain",
        text="Our group wrote 40 letters, photo attached.",
        attachments=[
            {
                "filename": "letters.jpg",
                "content_type": "image/jpeg",
                "data_base64": base64.b64encode(photo).decode(),
            }
        ],
        **{"from": "bob@example.org"},
    )
    reply = world.stored()
    assert reply.status == ReplyStatus.MATCHED
    assert reply.body == "Our group wrote 40 letters, photo attached."
    assert reply.problem == "attachment not kept: letters.jpg (0.0 MB)"
    assert reply.raw_form["files"] == [
        {
            "field": "attachment1",
            "filename": "letters.jpg",
            "content_type": "image/jpeg",
            "size": len(photo),
        }
    ]
    fields = reply.raw_form["fields"]
    assert fields["attachments"] == "1"
    info = json.loads(fields["attachment-info"])
    assert info == {
        "attachment1": {"filename": "letters.jpg", "name": "letters.jpg", "type": "image/jpeg"}
    }
    assert world.actions() == 1


def _parts(posted_body: bytes, content_type: str) -> dict[str, Any]:
    form = message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + posted_body, policy=default
    )
    return {
        str(part.get_param("name", header="content-disposition")): part
        for part in form.iter_parts()
    }


def test_raw_mode_posts_the_mime_with_its_attachment_inside(
    parse_sendgrid: LocalSendGrid, receiver: Receiver
) -> None:
    parse_sendgrid.admin.reply(
        inbound_url=receiver.url,
        raw=True,
        to="reply+t@parse.example.org",
        subject="Re: hi",
        text="see attached",
        attachments=[{"filename": "a.pdf", "content_type": "application/pdf", "size": 10}],
        **{"from": "p@example.net"},
    )
    (posted,) = receiver.posts
    parts = _parts(posted.body, posted.headers["Content-Type"])
    assert {"email", "from", "to", "subject", "envelope", "charsets", "SPF", "dkim"} <= set(parts)
    assert not {"text", "html", "headers", "attachments", "attachment1"} & set(parts)
    email = message_from_bytes(parts["email"].get_payload(decode=True), policy=default)
    (attachment,) = email.iter_attachments()
    assert attachment.get_filename() == "a.pdf"


def test_an_unknown_charset_is_refused_and_nothing_is_posted(
    parse_sendgrid: LocalSendGrid, receiver: Receiver
) -> None:
    answer = requests.post(
        f"{parse_sendgrid.base_url}/_admin/reply",
        json={
            "inbound_url": receiver.url,
            "from": "p@example.net",
            "to": "reply+t@parse.example.org",
            "text": "hi",
            "charset": "x-no-such-charset",
        },
        timeout=10,
    )
    assert answer.status_code == 400
    assert "unknown charset" in answer.json()["error"]
    assert receiver.posts == []


@pytest.mark.parametrize(
    ("checks", "status"),
    [
        ({}, ReplyStatus.UNSUBSCRIBE),  # SendGrid's checks pass, as for a real supporter
        ({"spf": "fail", "dkim": "none"}, ReplyStatus.REVIEW),  # a forged From
        ({"spf": "softfail", "dkim": "fail"}, ReplyStatus.REVIEW),
        ({"spf": "fail", "dkim": "pass"}, ReplyStatus.UNSUBSCRIBE),  # signed by its domain
    ],
)
def test_a_stop_posted_with_sendgrids_checks_acts_only_when_one_passes(
    world: World, checks: dict[str, str], status: ReplyStatus
) -> None:
    answer = world.reply(
        to=reply_address(world.seeded, "en"), text="STOP", **{"from": "bob@example.org"}, **checks
    )
    assert answer["status"] == 200
    reply = world.stored()
    assert reply.status == status
    fields = reply.raw_form["fields"]
    assert fields["SPF"] == checks.get("spf", "pass")
    expected_dkim = checks.get("dkim", "pass")
    assert fields["dkim"] == (
        "none" if expected_dkim == "none" else f"{{@example.org : {expected_dkim}}}"
    )
    with session_scope(world.engine) as session:
        bob = session.get(Supporter, world.seeded.supporter_ids["bob@example.org"])
        assert bob is not None
        assert bob.status == ("unsubscribed" if status is ReplyStatus.UNSUBSCRIBE else "subscribed")
