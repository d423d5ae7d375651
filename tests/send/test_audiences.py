"""The `acted` (thank-you) and `case_assigned` (good news) audiences, planned and sent.

Planned in SQL like the other rules (sender.send.planner), and re-checked when each
batch leaves (sender.send.batch_store): a resolved case mails only a case_assigned
wave, a paused case none, and everyone else's rules (unsubscribe, consent,
suppression, frequency cap) apply as to any wave.
"""

from __future__ import annotations

from datetime import timedelta

from sending_fixtures import DEC1, add_case, add_supporters, add_wave, by_email
from sqlalchemy import Engine, select, update

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Batch, Case, Message, Supporter, Suppression
from sender.core.vocabulary import (
    AudienceRule,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveKind,
    WaveStatus,
)
from sender.send import store as repo
from sender.send.batch import BatchOutcome, PreparedBatch, Settled
from sender.send.batch_store import SqlSendStore
from sender.send.planner import plan_wave

SETTINGS = Settings(secret_key="test", batch_size=10)
LATER = DEC1 + timedelta(days=20)
NINE = LATER + timedelta(hours=9)


def _status(engine: Engine, case_id: int, status: CaseStatus) -> None:
    with session_scope(engine) as session:
        session.execute(update(Case).where(Case.id == case_id).values(status=status))


def _act(engine: Engine, supporter: int, case_id: int, **values: object) -> None:
    action = {"kind": "letter_sent", "source": "link", **values}
    with session_scope(engine) as session:
        session.add(Action(supporter_id=supporter, case_id=case_id, **action))


def _mailed_earlier(engine: Engine, supporter: int, case_id: int) -> None:
    """A message of another wave sent an hour before: the frequency cap holds them back."""
    earlier = add_wave(engine, SETTINGS, "earlier", status=WaveStatus.DONE)
    with session_scope(engine) as session:
        session.add(
            Message(
                wave_id=earlier,
                supporter_id=supporter,
                case_id=case_id,
                language="en",
                status=MessageStatus.SENT,
                sent_at=LATER - timedelta(hours=1),
            )
        )


def _planned(engine: Engine, wave_id: int) -> dict[str, int]:
    return {
        email: case
        for email, case in by_email(engine, Message.case_id).items()
        if email in _in_wave(engine, wave_id)
    }


def _in_wave(engine: Engine, wave_id: int) -> set[str]:
    with session_scope(engine) as session:
        return set(
            session.scalars(
                select(Supporter.email)
                .join(Message, Message.supporter_id == Supporter.id)
                .where(Message.wave_id == wave_id)
            )
        )


def test_a_thank_you_goes_to_those_who_acted_on_their_case_and_no_one_else(
    any_engine: Engine,
) -> None:
    case, other = add_case(any_engine, SETTINGS), add_case(any_engine, SETTINGS, "other")
    names = ["wrote", "clicked", "machine", "opened", "elsewhere", "gone", "suppressed", "recent"]
    ids = dict(
        zip(names, add_supporters(any_engine, [case], [f"{n}@x.org" for n in names]), strict=True)
    )
    for name in ("wrote", "gone", "suppressed", "recent"):
        _act(any_engine, ids[name], case)
    _act(any_engine, ids["clicked"], case, kind="clicked", source="sendgrid", acting=True)
    _act(any_engine, ids["machine"], case, kind="clicked_machine")
    _act(any_engine, ids["opened"], case, kind="opened", source="sendgrid")
    _act(any_engine, ids["elsewhere"], other)  # acted, but on a case not theirs
    with session_scope(any_engine) as session:
        session.add(Suppression(email_hash=email_hash("suppressed@x.org"), reason="bounced"))
    add_supporters(any_engine, [], ["unassigned@x.org"])
    with session_scope(any_engine) as session:
        session.execute(
            update(Supporter)
            .where(Supporter.id == ids["gone"])
            .values(status=SupporterStatus.UNSUBSCRIBED)
        )
    _mailed_earlier(any_engine, ids["recent"], case)
    wave = add_wave(
        any_engine,
        SETTINGS,
        "thanks",
        kind=WaveKind.THANK_YOU,
        audience=AudienceRule.ACTED,
        starts_at=LATER,
    )
    result = plan_wave(any_engine, SETTINGS, wave, LATER)
    assert result is not None
    assert _planned(any_engine, wave) == {"wrote@x.org": case, "clicked@x.org": case}


def test_a_thank_you_is_about_the_case_they_acted_on(any_engine: Engine) -> None:
    first, second = (
        add_case(any_engine, SETTINGS, "first"),
        add_case(any_engine, SETTINGS, "second"),
    )
    (both,) = add_supporters(any_engine, [first, second], ["both@x.org"])
    _act(any_engine, both, second)
    wave = add_wave(
        any_engine, SETTINGS, "thanks", kind="thank_you", audience="acted", starts_at=LATER
    )
    plan_wave(any_engine, SETTINGS, wave, LATER)
    assert _planned(any_engine, wave) == {"both@x.org": second}


def test_good_news_reaches_everyone_assigned_resolved_cases_first_paused_never(
    any_engine: Engine,
) -> None:
    active = add_case(any_engine, SETTINGS, "active")
    freed = add_case(any_engine, SETTINGS, "freed")
    paused = add_case(any_engine, SETTINGS, "paused")
    add_supporters(any_engine, [active], ["active@x.org"])
    add_supporters(any_engine, [freed], ["freed@x.org"])
    add_supporters(any_engine, [active, freed], ["both@x.org"])  # freed assigned second
    add_supporters(any_engine, [paused], ["paused@x.org"])
    add_supporters(any_engine, [freed], ["gone@x.org"], status=SupporterStatus.UNSUBSCRIBED)
    add_supporters(any_engine, [freed], ["noconsent@x.org"], consent=False)
    (recent,) = add_supporters(any_engine, [freed], ["recent@x.org"])
    _mailed_earlier(any_engine, recent, freed)
    _status(any_engine, freed, CaseStatus.RESOLVED)
    _status(any_engine, paused, CaseStatus.PAUSED)
    wave = add_wave(
        any_engine,
        SETTINGS,
        "good-news",
        kind=WaveKind.GOOD_NEWS,
        audience=AudienceRule.CASE_ASSIGNED,
        starts_at=LATER,
    )
    plan_wave(any_engine, SETTINGS, wave, LATER)
    assert _planned(any_engine, wave) == {
        "active@x.org": active,
        "freed@x.org": freed,
        "both@x.org": freed,  # the resolved case's news, though the other came first
    }


def test_a_resolved_case_mails_only_waves_that_include_it(any_engine: Engine) -> None:
    freed = add_case(any_engine, SETTINGS, "freed")
    add_supporters(any_engine, [freed], ["ana@x.org"])
    _status(any_engine, freed, CaseStatus.RESOLVED)
    everyone = add_wave(any_engine, SETTINGS, "everyone", starts_at=LATER)
    plan_wave(any_engine, SETTINGS, everyone, LATER)
    assert _in_wave(any_engine, everyone) == set()  # all_assigned: active cases only
    news = add_wave(
        any_engine, SETTINGS, "news", kind="good_news", audience="case_assigned", starts_at=LATER
    )
    plan_wave(any_engine, SETTINGS, news, LATER)
    store = SqlSendStore.from_settings(any_engine, SETTINGS)
    with session_scope(any_engine) as session:
        (batch_id,) = repo.release_due(session, NINE, 100)  # released though resolved
    claimed = store.claim(batch_id, "key-1", NINE)
    assert isinstance(claimed, PreparedBatch), claimed  # not held: the wave includes it
    assert [r.email for r in claimed.going] == ["ana@x.org"]
    assert claimed.case.status == CaseStatus.RESOLVED
    assert store.still_sendable(news, freed)
    _status(any_engine, freed, CaseStatus.PAUSED)  # the kill switch still holds it
    assert not store.still_sendable(news, freed)


def test_a_resolved_case_holds_the_batches_of_other_waves(any_engine: Engine) -> None:
    case = add_case(any_engine, SETTINGS)
    add_supporters(any_engine, [case], ["ana@x.org"])
    wave = add_wave(any_engine, SETTINGS, starts_at=LATER)
    plan_wave(any_engine, SETTINGS, wave, LATER)
    _status(any_engine, case, CaseStatus.RESOLVED)  # resolved after planning
    with session_scope(any_engine) as session:
        assert repo.release_due(session, NINE, 100) == []
        session.execute(update(Batch).values(status="queued"))
    held = SqlSendStore.from_settings(any_engine, SETTINGS).claim(1, "key-1", NINE)
    assert isinstance(held, Settled) and held.outcome is BatchOutcome.HELD
    assert held.detail == "wave sending, case resolved"


def test_a_thank_you_skips_one_whose_act_turned_out_a_machines(any_engine: Engine) -> None:
    case = add_case(any_engine, SETTINGS)
    kept, unmasked = add_supporters(any_engine, [case], ["kept@x.org", "unmasked@x.org"])
    _act(any_engine, kept, case)
    _act(any_engine, unmasked, case, kind="clicked", source="link")
    wave = add_wave(
        any_engine, SETTINGS, "thanks", kind="thank_you", audience="acted", starts_at=LATER
    )
    plan_wave(any_engine, SETTINGS, wave, LATER)
    assert _in_wave(any_engine, wave) == {"kept@x.org", "unmasked@x.org"}
    with session_scope(any_engine) as session:  # sender.track.link_clicks re-classifies it
        session.execute(
            update(Action)
            .where(Action.supporter_id == unmasked)
            .values(kind="clicked_machine", acting=False)
        )
        (batch_id,) = repo.release_due(session, NINE, 100)
    claimed = SqlSendStore.from_settings(any_engine, SETTINGS).claim(batch_id, "k", NINE)
    assert isinstance(claimed, PreparedBatch)
    assert [r.email for r in claimed.going] == ["kept@x.org"]
    assert by_email(any_engine, Message.skip_reason) == {
        "kept@x.org": None,
        "unmasked@x.org": "not_acted",
    }
