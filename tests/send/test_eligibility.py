"""The eligibility rules (sender.send.eligibility): which waves leave out whom, and the
rules' SQL predicates, run against a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import ColumnElement, Engine, literal, select

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Message, Supporter, Suppression
from sender.core.vocabulary import AudienceRule, CaseStatus, MessageStatus, WaveStatus
from sender.send.eligibility import (
    acted,
    acting_pairs,
    case_statuses,
    excludes_actors,
    needs_act,
    needs_open,
    opening_pairs,
    recently_mailed,
    recently_mailed_ids,
    suppressed,
    suppressed_hashes,
)

SETTINGS = Settings(secret_key="test")


@pytest.mark.parametrize(
    ("audience", "leaves_out_actors", "only_actors", "statuses"),
    [
        (AudienceRule.ALL_ASSIGNED, False, False, {CaseStatus.ACTIVE}),
        (AudienceRule.NOT_ACTED, True, False, {CaseStatus.ACTIVE}),
        (AudienceRule.OPENED_NOT_ACTED, True, False, {CaseStatus.ACTIVE}),
        (AudienceRule.ACTED, False, True, {CaseStatus.ACTIVE}),
        (AudienceRule.CASE_ASSIGNED, False, False, {CaseStatus.ACTIVE, CaseStatus.RESOLVED}),
    ],
)
def test_the_audience_rule_alone_says_who_is_left_out_and_which_cases_mail(
    audience: AudienceRule, leaves_out_actors: bool, only_actors: bool, statuses: set[str]
) -> None:
    assert excludes_actors(audience) is leaves_out_actors
    assert needs_act(audience) is only_actors
    assert set(case_statuses(audience)) == statuses
    assert CaseStatus.PAUSED not in case_statuses(audience)  # a paused case never mails


def test_only_the_openers_audience_needs_an_open() -> None:
    assert [rule for rule in AudienceRule if needs_open(rule)] == [AudienceRule.OPENED_NOT_ACTED]


def _matching(engine: Engine, predicate: ColumnElement[bool]) -> set[str]:
    """The emails of the supporters for whom `predicate` holds."""
    with session_scope(engine) as session:
        return {str(e) for e in session.scalars(select(Supporter.email).where(predicate))}


def _acted_on(case: int) -> ColumnElement[bool]:
    """`acted`'s set-based twin as a predicate: the supporter is among the case's actors."""
    pairs = acting_pairs([case]).subquery()
    return Supporter.id.in_(select(pairs.c.supporter_id).where(pairs.c.case_id == case))


def test_acting_means_clicking_writing_or_replying_about_that_case(any_engine: Engine) -> None:
    case, other = add_case(any_engine, SETTINGS), add_case(any_engine, SETTINGS, "other")
    kinds = ["clicked", "letter_sent", "replied", "opened", "opened_machine", "elsewhere"]
    ids = add_supporters(any_engine, [case], [f"{kind}@example.org" for kind in kinds])
    with session_scope(any_engine) as session:
        for kind, supporter in zip(kinds, ids, strict=True):
            session.add(
                Action(
                    supporter_id=supporter,
                    case_id=other if kind == "elsewhere" else case,
                    kind="clicked" if kind == "elsewhere" else kind,
                    source="link",
                )
            )
    assert (
        _matching(any_engine, acted(Supporter.id, literal(case)))
        == _matching(any_engine, _acted_on(case))
        == {"clicked@example.org", "letter_sent@example.org", "replied@example.org"}
    )
    pairs = opening_pairs([case, other]).subquery()
    assert _matching(any_engine, Supporter.id.in_(select(pairs.c.supporter_id))) == {
        "opened@example.org"  # a machine's open is no open
    }


def test_acting_is_what_the_report_counts_as_acting(any_engine: Engine) -> None:
    """One definition (sender.report.totals.counts_as_acting): a provider's click counts
    only on the action link (`acting`), and a machine's click never does."""
    case = add_case(any_engine, SETTINGS)
    rows = {
        "action-link": {"kind": "clicked", "source": "sendgrid", "acting": True},
        "other-link": {"kind": "clicked", "source": "sendgrid", "acting": False},
        "our-page": {"kind": "clicked", "source": "link", "acting": False},
        "machine": {"kind": "clicked_machine", "source": "link", "acting": False},
        "letter": {"kind": "letter_sent", "source": "link", "acting": False},
    }
    ids = add_supporters(any_engine, [case], [f"{name}@example.org" for name in rows])
    with session_scope(any_engine) as session:
        for (_, values), supporter in zip(rows.items(), ids, strict=True):
            session.add(Action(supporter_id=supporter, case_id=case, **values))
    assert (
        _matching(any_engine, acted(Supporter.id, literal(case)))
        == _matching(any_engine, _acted_on(case))
        == {"action-link@example.org", "our-page@example.org", "letter@example.org"}
    )


def test_suppressed_goes_by_the_address_hash(any_engine: Engine) -> None:
    case = add_case(any_engine, SETTINGS)
    add_supporters(any_engine, [case], ["bounced@example.org", "fine@example.org"])
    with session_scope(any_engine) as session:
        session.add(Suppression(email_hash=email_hash("bounced@example.org"), reason="bounced"))
    hashes = suppressed_hashes().subquery()
    assert (
        _matching(any_engine, suppressed(Supporter.email_hash))
        == _matching(any_engine, Supporter.email_hash.in_(select(hashes.c.email_hash)))
        == {"bounced@example.org"}
    )


def test_recently_mailed_counts_only_sent_mail_of_other_waves_since_then(
    any_engine: Engine,
) -> None:
    case = add_case(any_engine, SETTINGS)
    people = ["recent", "long_ago", "same_wave", "not_sent"]
    ids = add_supporters(any_engine, [case], [f"{name}@example.org" for name in people])
    earlier = add_wave(any_engine, SETTINGS, "earlier", status=WaveStatus.DONE)
    this = add_wave(any_engine, SETTINGS, "this", status=WaveStatus.SENDING)
    since = DEC1 - timedelta(hours=48)
    mail = {
        "recent": (earlier, MessageStatus.SENT, DEC1 - timedelta(hours=1)),
        "long_ago": (earlier, MessageStatus.SENT, since - timedelta(minutes=1)),
        "same_wave": (this, MessageStatus.SENT, DEC1 - timedelta(hours=1)),
        "not_sent": (earlier, MessageStatus.FAILED, None),
    }
    with session_scope(any_engine) as session:
        for name, supporter in zip(people, ids, strict=True):
            wave, status, sent_at = mail[name]
            session.add(
                Message(
                    wave_id=wave,
                    supporter_id=supporter,
                    case_id=case,
                    language="en",
                    status=status,
                    sent_at=sent_at,
                )
            )
    found = _matching(any_engine, recently_mailed(Supporter.id, literal(this), literal(since)))
    mailed = recently_mailed_ids(literal(this), literal(since)).subquery()
    twin = _matching(any_engine, Supporter.id.in_(select(mailed.c.supporter_id)))
    assert found == twin == {"recent@example.org"}
