"""Issue 13, finding 2, replayed: spoofed replies stop nobody and count for nobody.

A forged From with body STOP (SPF fail, no DKIM) once unsubscribed a supporter; a
forged From with a valid reply token for another case was stored as matched, counted
and exported. Each attack here checks the refusal and that nothing changed.
"""

from __future__ import annotations

from typing import Any

import pytest
from replies_fixtures import (
    NOW,
    Seeded,
    message_reply_address,
    parse_fields,
    reply_address,
    seed,
    settings_for,
)
from sqlalchemy import Engine, func, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Message, Reply, Supporter, Suppression
from sender.core.vocabulary import ReplyStatus
from sender.track.inbound import parse_stored_reply
from sender.track.mail_auth import read_auth
from sender.track.replies import review_list, solidarity_messages

BOB = "bob@example.org"
FORGED = {"SPF": "fail", "dkim": "none"}  # what SendGrid posts for a forged From


@pytest.fixture
def world(any_engine: Engine) -> tuple[Engine, Settings, Seeded]:
    settings = settings_for(any_engine)
    return any_engine, settings, seed(any_engine, settings)


def _reply(
    world: tuple[Engine, Settings, Seeded], to: str, text: str, sender: str = BOB, **checks: str
) -> Reply:
    engine, settings, _ = world
    fields = {**parse_fields(sender=sender, to=to, text=text), **checks}
    with session_scope(engine) as session:
        row = Reply(raw_form={"fields": fields, "files": [], "undecoded": {}})
        session.add(row)
        session.flush()
        reply_id = row.id
    parse_stored_reply(engine, settings, reply_id, NOW)
    with session_scope(engine) as session:
        found = session.get(Reply, reply_id)
        assert found is not None
        session.expunge(found)
        return found


def _state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as c:
        return {
            "supporters": c.execute(select(Supporter.id, Supporter.status)).all(),
            "messages": c.execute(select(Message.id, Message.status)).all(),
            "suppressions": c.scalar(select(func.count()).select_from(Suppression)),
            "actions": c.scalar(select(func.count()).select_from(Action)),
        }


@pytest.mark.parametrize("token", ["variant", "none"])
def test_a_spoofed_stop_unsubscribes_nobody_and_is_marked_for_review(
    world: tuple[Engine, Settings, Seeded], token: str
) -> None:
    engine, _, seeded = world
    before = _state(engine)
    to = reply_address(seeded, "en") if token == "variant" else "hello@parse.example.org"
    reply = _reply(world, to, "STOP", **FORGED)
    assert reply.status == ReplyStatus.REVIEW
    assert reply.problem is not None and "possibly spoofed" in reply.problem
    assert "SPF fail" in reply.problem and "DKIM none" in reply.problem
    assert _state(engine) == before
    with session_scope(engine) as session:
        (item,) = review_list(session)
    assert (item.spf, item.dkim, item.possibly_spoofed) == ("fail (example.org)", "none", True)


@pytest.mark.parametrize(
    "checks",
    [
        {"SPF": "pass"},  # envelope sender in the From domain
        {"SPF": "softfail", "dkim": "{@example.org : pass}"},
        {"SPF": "none", "dkim": "{@relay.example.net : fail, @mail.example.org : pass}"},
    ],
)
def test_a_stop_is_honoured_when_spf_or_dkim_passes_for_the_from_domain(
    world: tuple[Engine, Settings, Seeded], checks: dict[str, str]
) -> None:
    engine, _, seeded = world
    fields = {"dkim": "none", **checks}
    reply = _reply(world, reply_address(seeded, "en"), "STOP", **fields)
    assert reply.status == ReplyStatus.UNSUBSCRIBE
    with session_scope(engine) as session:
        bob = session.get(Supporter, seeded.supporter_ids[BOB])
        assert bob is not None and bob.status == "unsubscribed"


@pytest.mark.parametrize(
    "checks",
    [
        {"SPF": "pass", "envelope": '{"to": ["x@parse.example.org"], "from": "a@evil.example"}'},
        {"SPF": "fail", "dkim": "{@evil.example : pass}"},  # signed, by someone else
        {"SPF": "fail", "dkim": "{@example.org : fail}"},
        {"SPF": "fail", "dkim": "{@example.org.evil.example : pass}"},
    ],
)
def test_checks_that_pass_for_another_domain_do_not_count(
    world: tuple[Engine, Settings, Seeded], checks: dict[str, str]
) -> None:
    engine, _, seeded = world
    before = _state(engine)
    reply = _reply(world, reply_address(seeded, "en"), "STOP", **{"dkim": "none", **checks})
    assert reply.status == ReplyStatus.REVIEW and "possibly spoofed" in (reply.problem or "")
    assert _state(engine) == before


@pytest.mark.parametrize("checks", [FORGED, {"SPF": "pass"}])
def test_a_token_for_a_case_the_supporter_never_got_counts_for_nobody(
    world: tuple[Engine, Settings, Seeded], checks: dict[str, str]
) -> None:
    """Bob got the Jani email; a reply token for the Germain case is not his."""
    engine, _, seeded = world
    before = _state(engine)
    to = reply_address(seeded, "en", seeded.plain_case_id)
    reply = _reply(world, to, "Free Germain! We are with you.", **checks)
    assert reply.status == ReplyStatus.REVIEW
    assert _state(engine) == before
    with session_scope(engine) as session:
        assert solidarity_messages(session, "germain-rukuki") == []


def test_a_reply_with_its_own_token_counts_even_without_spf_or_dkim(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    """The per-recipient token is proof enough: only Bob's mailbox ever saw it."""
    engine, _, seeded = world
    reply = _reply(world, message_reply_address(seeded, BOB), "We are with Jani!", **FORGED)
    assert (reply.status, reply.problem) == (ReplyStatus.MATCHED, None)
    assert reply.supporter_id == seeded.supporter_ids[BOB]
    with engine.connect() as c:
        action = c.execute(select(Action.supporter_id, Action.message_id)).one()
    assert tuple(action) == (seeded.supporter_ids[BOB], seeded.message_ids[BOB])
    stop = _reply(world, message_reply_address(seeded, BOB), "STOP", **FORGED)
    assert stop.status == ReplyStatus.UNSUBSCRIBE


def test_someone_else_s_token_under_a_forged_from_changes_nothing(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    """Ana's token with Bob's address (forged, or a forwarded email): a person decides."""
    engine, _, seeded = world
    before = _state(engine)
    to = message_reply_address(seeded, "ana@example.com")
    for text in ("Stop", "Count this for Bob"):
        reply = _reply(world, to, text)  # SPF and DKIM pass for Bob's domain even
        assert reply.status == ReplyStatus.REVIEW
        assert "another address" in (reply.problem or "")
        assert "possibly spoofed" not in (reply.problem or "")
        assert reply.supporter_id == seeded.supporter_ids["ana@example.com"]
    forged = _reply(world, to, "Stop", **FORGED)
    assert forged.status == ReplyStatus.REVIEW
    assert (forged.problem or "").startswith("asks to stop; possibly spoofed")
    assert _state(engine) == before


def test_an_edited_message_token_is_refused(world: tuple[Engine, Settings, Seeded]) -> None:
    engine, _, seeded = world
    before = _state(engine)
    genuine = message_reply_address(seeded, "ana@example.com")
    local, domain = genuine.split("@")
    wave, case, language, _message, signature = local.removeprefix("reply+").split(".")
    bob_message = seeded.message_ids[BOB]
    forged = f"reply+{wave}.{case}.{language}.{bob_message}.{signature}@{domain}"
    reply = _reply(world, forged, "STOP", **FORGED)
    assert reply.status == ReplyStatus.REVIEW
    assert _state(engine) == before


def test_sendgrid_dkim_and_spf_fields_are_read_as_posted() -> None:
    auth = read_auth(
        {
            "SPF": "Pass",
            "dkim": "{@sendgrid.net : pass, @Gmail.com : fail}",
            "envelope": '{"to": ["a@b.c"], "from": "bounce@mail.gmail.com"}',
        }
    )
    assert auth.dkim == (("sendgrid.net", "pass"), ("gmail.com", "fail"))
    assert auth.spf_passes_for("gmail.com") and not auth.dkim_passes_for("gmail.com")
    assert auth.dkim_passes_for("sendgrid.net")
    assert (auth.spf_text, auth.dkim_text) == (
        "pass (mail.gmail.com)",
        "pass (sendgrid.net), fail (gmail.com)",
    )
    empty = read_auth({})
    assert not empty.passes_for("gmail.com")
    assert (empty.spf_text, empty.dkim_text) == ("not checked", "none")
    assert read_auth({"dkim": "none"}).dkim == ()
    assert not read_auth({"SPF": "pass", "envelope": "not json"}).passes_for("gmail.com")
