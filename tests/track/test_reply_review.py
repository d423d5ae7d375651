"""Staff's decisions on replies: assign, dismiss, unsubscribe, and delivery to case teams."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ops_fixtures import EMAILS, NOW, seed
from sqlalchemy import Engine, func, select, update

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Action, Assignment, Reply, Supporter, Suppression
from sender.core.vocabulary import ActionKind, ReplyStatus, SupporterStatus
from sender.track.inbound import parse_stored_reply
from sender.track.replies import (
    ReviewReason,
    review_list,
    review_reason,
    solidarity_messages,
    to_decide,
)
from sender.track.reply_review import (
    assign_reply,
    dismiss_reply,
    mark_delivered,
    reply_campaign_id,
    unsubscribe_sender,
)
from sender.track.reply_sender import SPOOFED

BY = "omar@example.org"
LATER = NOW + timedelta(hours=2)


def reply_ids(engine: Engine) -> dict[str, int]:
    """The seed's two replies: the stranger's (REVIEW) and the matched one."""
    with session_scope(engine) as session:
        rows = session.execute(select(Reply.id, Reply.status)).all()
    return {row.status: row.id for row in rows}


def add_reply(engine: Engine, **values: object) -> int:
    with session_scope(engine) as session:
        reply = Reply(status=ReplyStatus.REVIEW, received_at=NOW, **values)
        session.add(reply)
        session.flush()
        return reply.id


def state(engine: Engine, reply_id: int) -> tuple[object, ...]:
    """Everything a decision may change: the reply's row, actions, suppressions."""
    with session_scope(engine) as session:
        r = session.get(Reply, reply_id)
        assert r is not None
        row = (r.status, r.supporter_id, r.case_id, r.reviewed_at, r.reviewed_by)
        more = (r.review_outcome, r.review_note, r.delivered_at, r.delivered_by)
        actions = session.scalar(select(func.count()).select_from(Action))
        suppressed = session.scalar(select(func.count()).select_from(Suppression))
    return (*row, *more, actions, suppressed)


def supporter_id(engine: Engine, email: str) -> int:
    with session_scope(engine) as session:
        found = session.scalar(
            select(Supporter.id).where(Supporter.email_hash == email_hash(email))
        )
        assert found is not None
        return found


def test_assigning_counts_the_reply_as_the_supporters_once(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    stranger = reply_ids(any_engine)[ReplyStatus.REVIEW]
    with session_scope(any_engine) as session:
        session.add(
            Assignment(
                supporter_id=supporter_id(any_engine, EMAILS[2]),
                case_id=seeded.case_ids[1],
                strategy="balanced",
            )
        )
    decision = assign_reply(
        any_engine, stranger, EMAILS[2].upper(), BY, LATER, campaign_id=seeded.campaign_id
    )
    assert decision.case_id == seeded.case_ids[1] and decision.newly_counted
    with session_scope(any_engine) as session:
        reply = session.get(Reply, stranger)
        assert reply is not None and reply.status == ReplyStatus.MATCHED
        assert (reply.reviewed_by, reply.review_outcome) == (BY, "assigned")
        (action,) = session.scalars(select(Action).where(Action.kind == ActionKind.REPLIED))
        assert (action.supporter_id, action.case_id) == (decision.supporter_id, decision.case_id)
        assert action.dedupe_key == f"reply:{stranger}"  # the parser's key: counted once
        messages = solidarity_messages(session, "popi")
        assert [m.message for m in messages] == ["Free them now"]
        assert stranger not in [i.reply_id for i in review_list(session)]
    before = state(any_engine, stranger)
    with pytest.raises(InvalidInput, match="assigned already"):  # a double submit
        assign_reply(any_engine, stranger, EMAILS[3], "someone@example.org", LATER)
    assert state(any_engine, stranger) == before


def test_a_reply_token_decides_the_case_and_binds_the_message(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    forwarded = add_reply(
        pg_engine,
        from_email="other@example.net",
        body="From my other address",
        case_id=seeded.case_ids[0],
        wave_id=seeded.wave_id,
        problem="sent from another address than the one its reply token was sent to",
    )
    assert reply_campaign_id(pg_engine, forwarded) == seeded.campaign_id
    decision = assign_reply(pg_engine, forwarded, EMAILS[0], BY, LATER, case_slug="popi")
    assert decision.case_id == seeded.case_ids[0]  # the token's case wins over a typed one
    with session_scope(pg_engine) as session:
        action = session.scalar(select(Action).where(Action.kind == ActionKind.REPLIED))
        assert action is not None and action.message_id is not None


def test_assigning_refuses_unknown_addresses_and_unclear_cases(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    stranger = reply_ids(pg_engine)[ReplyStatus.REVIEW]
    before = state(pg_engine, stranger)
    for email, words in (
        ("nobody@example.org", "no supporter has that address"),
        ("not an address", "not an email address"),
        ("  ", "give the supporter's email address"),
        (EMAILS[2], "has no case: say which"),  # no token, no assignment
    ):
        with pytest.raises(InvalidInput) as refused:
            assign_reply(pg_engine, stranger, email, BY, LATER, campaign_id=seeded.campaign_id)
        assert words in str(refused.value) and "nobody@" not in str(refused.value)
    with pytest.raises(InvalidInput, match="no case 'nope'"):
        assign_reply(pg_engine, stranger, EMAILS[2], BY, LATER, case_slug="nope")
    with pytest.raises(NotFound):
        assign_reply(pg_engine, stranger + 100, EMAILS[2], BY, LATER)
    assert state(pg_engine, stranger) == before
    matched = reply_ids(pg_engine)[ReplyStatus.MATCHED]
    with pytest.raises(InvalidInput, match="not waiting for review"):
        assign_reply(pg_engine, matched, EMAILS[2], BY, LATER, case_slug="bird")


def test_dismissing_keeps_the_reason_and_happens_once(any_engine: Engine) -> None:
    seed(any_engine)
    stranger = reply_ids(any_engine)[ReplyStatus.REVIEW]
    before = state(any_engine, stranger)
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput):
            dismiss_reply(any_engine, stranger, reason, BY, LATER)
    assert state(any_engine, stranger) == before
    dismiss_reply(any_engine, stranger, "  spam,\n selling  shoes ", BY, LATER)
    with session_scope(any_engine) as session:
        reply = session.get(Reply, stranger)
        assert reply is not None and reply.status == ReplyStatus.REVIEW  # what the parser saw
        assert (reply.review_outcome, reply.review_note) == ("dismissed", "spam, selling shoes")
        assert to_decide(session) == []
    decided = state(any_engine, stranger)
    with pytest.raises(InvalidInput, match=r"dismissed already by omar@example\.org"):
        dismiss_reply(any_engine, stranger, "again", BY, LATER)
    assert state(any_engine, stranger) == decided


def test_unsubscribing_the_sender_goes_through_the_unsubscribe_home(any_engine: Engine) -> None:
    seed(any_engine)
    stop = add_reply(
        any_engine,
        from_email=EMAILS[3],
        body="STOP",
        problem=f"asks to stop; {SPOOFED}: neither SPF nor DKIM passes for example.org",
    )
    decision = unsubscribe_sender(any_engine, stop, BY, LATER)
    assert decision.newly_suppressed and decision.supporter_id is not None
    with session_scope(any_engine) as session:
        suppression = session.scalar(
            select(Suppression).where(Suppression.email_hash == email_hash(EMAILS[3]))
        )
        assert suppression is not None and suppression.source == "review"
        supporter = session.get(Supporter, decision.supporter_id)
        assert supporter is not None and supporter.status == SupporterStatus.UNSUBSCRIBED
        reply = session.get(Reply, stop)
        assert reply is not None and reply.status == ReplyStatus.UNSUBSCRIBE
    decided = state(any_engine, stop)
    with pytest.raises(InvalidInput, match="unsubscribed already"):
        unsubscribe_sender(any_engine, stop, BY, LATER)
    assert state(any_engine, stop) == decided


def test_unsubscribing_a_stranger_is_refused(pg_engine: Engine) -> None:
    seed(pg_engine)
    stranger = reply_ids(pg_engine)[ReplyStatus.REVIEW]
    before = state(pg_engine, stranger)
    with pytest.raises(InvalidInput, match="from no supporter"):
        unsubscribe_sender(pg_engine, stranger, BY, LATER)
    assert state(pg_engine, stranger) == before


def test_marking_delivered_is_all_or_nothing_and_once(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    matched = reply_ids(any_engine)[ReplyStatus.MATCHED]
    stranger = reply_ids(any_engine)[ReplyStatus.REVIEW]
    bird, popi = seeded.case_ids
    before = state(any_engine, matched)
    for case_id, ids, words in (
        (bird, [], "select at least one"),
        (popi, [matched], "not solidarity messages of this case: #"),
        (bird, [matched, stranger], f"#{stranger}"),
    ):
        with pytest.raises(InvalidInput, match=words):
            mark_delivered(any_engine, case_id, ids, BY, LATER)
    assert state(any_engine, matched) == before
    with session_scope(any_engine) as session:
        assert [m.reply_id for m in solidarity_messages(session, "bird", delivered=True)] == []
    done = mark_delivered(any_engine, bird, [matched, matched], BY, LATER)
    assert done.reply_ids == (matched,)
    with session_scope(any_engine) as session:
        (message,) = solidarity_messages(session, "bird", delivered=True)
        assert (message.delivered_by, message.delivered_at) == (BY, LATER)
        assert solidarity_messages(session, "bird", delivered=False) == []
    delivered = state(any_engine, matched)
    with pytest.raises(InvalidInput, match="marked delivered already"):
        mark_delivered(any_engine, bird, [matched], "vera@example.org", LATER)
    assert state(any_engine, matched) == delivered


def test_reasons_group_the_review_list() -> None:
    assert review_reason(None) is ReviewReason.UNMATCHED
    assert review_reason("no supporter with the sender's address") is ReviewReason.UNMATCHED
    assert review_reason(f"asks to stop; {SPOOFED}: neither") is ReviewReason.SPOOFED
    assert review_reason("broken MIME: StartBoundaryNotFoundDefect") is ReviewReason.PARSE_PROBLEM
    assert review_reason("parser failed: ValueError: x") is ReviewReason.PARSE_PROBLEM
    assert review_reason("field 'text': not utf-8") is ReviewReason.PARSE_PROBLEM


def test_the_queue_to_decide_is_per_campaign(pg_engine: Engine) -> None:
    seeded = seed(pg_engine)
    stranger = reply_ids(pg_engine)[ReplyStatus.REVIEW]
    with session_scope(pg_engine) as session:
        assert [i.reply_id for i in to_decide(session, seeded.campaign_id)] == [stranger]
        assert [i.reply_id for i in to_decide(session, seeded.campaign_id + 1)] == [stranger]
    about_bird = add_reply(
        pg_engine, case_id=seeded.case_ids[0], problem="reply token is not valid"
    )
    with session_scope(pg_engine) as session:
        assert about_bird in [i.reply_id for i in to_decide(session, seeded.campaign_id)]
        assert about_bird not in [i.reply_id for i in to_decide(session, seeded.campaign_id + 1)]


def test_what_the_parser_could_not_read_is_a_parse_problem(pg_engine: Engine) -> None:
    seed(pg_engine)
    unreadable = add_reply(
        pg_engine,
        raw_form={
            "fields": {},
            "files": [],
            "undecoded": {"form": "unexpected content type 'text/plain'; raw body kept"},
        },
    )
    with session_scope(pg_engine) as session:
        session.execute(update(Reply).where(Reply.id == unreadable).values(status="received"))
    settings = Settings(database_url="sqlite://", secret_key="test-secret", redis_url=None)
    assert parse_stored_reply(pg_engine, settings, unreadable, NOW) == ReplyStatus.REVIEW
    with session_scope(pg_engine) as session:
        (item,) = [i for i in to_decide(session) if i.reply_id == unreadable]
    assert item.reason is ReviewReason.PARSE_PROBLEM
