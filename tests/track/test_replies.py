"""The review list and the solidarity export, on stored replies of every status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine

from sender.core.db import session_scope
from sender.core.errors import NotFound
from sender.core.models import Reply
from sender.core.vocabulary import ReplyStatus
from sender.track.replies import review_list, solidarity_messages, unparsed

T0 = datetime(2020, 12, 3, 10, 0, tzinfo=UTC)


def _store(engine: Engine, *replies: tuple[ReplyStatus, str | None]) -> list[int]:
    """One reply per (status, problem), each a minute newer than the one before."""
    with session_scope(engine) as session:
        rows = [
            Reply(
                status=status,
                problem=problem,
                from_email=f"r{n}@example.org",
                body=f"reply {n}",
                received_at=T0 + timedelta(minutes=n),
            )
            for n, (status, problem) in enumerate(replies)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def test_review_list_holds_what_needs_a_person_newest_first(any_engine: Engine) -> None:
    review, matched, noted, auto, stop, received = _store(
        any_engine,
        (ReplyStatus.REVIEW, "no supporter with the sender's address"),
        (ReplyStatus.MATCHED, None),
        (ReplyStatus.MATCHED, "an attachment was not kept"),
        (ReplyStatus.AUTO_REPLY, None),
        (ReplyStatus.UNSUBSCRIBE, None),
        (ReplyStatus.RECEIVED, None),
    )
    with session_scope(any_engine) as session:
        items = review_list(session, limit=None)
        assert [i.reply_id for i in review_list(session, limit=2)] == [noted, matched]
        assert unparsed(session) == [received]
    assert [i.reply_id for i in items] == [noted, matched, review]
    assert items[0].problem == "an attachment was not kept" and items[0].body == "reply 2"
    assert {auto, stop, received}.isdisjoint(i.reply_id for i in items)


def test_solidarity_messages_need_a_known_case(any_engine: Engine) -> None:
    add_2020_campaign(any_engine)
    with session_scope(any_engine) as session, pytest.raises(NotFound, match="in campaign"):
        solidarity_messages(session, "nobody")
