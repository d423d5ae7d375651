"""The send pipeline's SQL store (sender.send.batch_store.SqlSendStore), call by call."""

from __future__ import annotations

from datetime import timedelta

from sending_fixtures import DEC1, add_case, add_supporters, add_wave, by_email, statuses
from sending_fixtures import wave_status as status_of
from sqlalchemy import Engine, select, text, update

from sender.core.addresses import email_hash
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Batch, Case, Message, Supporter, Suppression, Wave
from sender.core.vocabulary import (
    AudienceRule,
    BatchStatus,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    WaveKind,
    WaveStatus,
)
from sender.render.renderer import RecipientData
from sender.report.totals import build_report
from sender.send import store as repo
from sender.send.batch import BatchOutcome, Ending, PreparedBatch, Settled
from sender.send.batch_store import SqlSendStore, claim_batch, record_accepted
from sender.send.planner import plan_wave

SETTINGS = Settings(secret_key="test", batch_size=10)
NINE = DEC1 + timedelta(hours=9)


def _released(engine: Engine, emails: list[str]) -> int:
    """One planned wave of one case, its only batch released: the batch id."""
    case = add_case(engine, SETTINGS)
    add_supporters(engine, [case], emails)
    wave_id = add_wave(engine, SETTINGS)
    plan_wave(engine, SETTINGS, wave_id, DEC1)
    with session_scope(engine) as session:
        (batch_id,) = repo.release_due(session, NINE, 100)
    return batch_id


def _store(engine: Engine) -> SqlSendStore:
    return SqlSendStore.from_settings(engine, SETTINGS)


def _prepared(store: SqlSendStore, batch_id: int, key: str = "key-1") -> PreparedBatch:
    claimed = store.claim(batch_id, key, NINE)
    assert isinstance(claimed, PreparedBatch), claimed
    return claimed


def _batch(engine: Engine, batch_id: int) -> Batch:
    with session_scope(engine) as session:
        found = session.get(Batch, batch_id)
        assert found is not None
        return found


def test_a_claim_takes_a_queued_batch_once_and_hands_over_plain_values(
    any_engine: Engine,
) -> None:
    batch_id = _released(any_engine, ["ana@example.org", "ben@example.org"])
    store = _store(any_engine)
    prepared = _prepared(store, batch_id)
    assert store.claim(batch_id, "key-2", NINE) == Settled(BatchOutcome.NOT_MINE)
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.send_key, batch.attempts) == (BatchStatus.SENDING, "key-1", 1)
    assert (prepared.id, prepared.language, prepared.skipped) == (batch_id, "en", 0)
    assert prepared.campaign.from_email == SETTINGS.from_email
    assert (prepared.wave.name, prepared.wave.kind) == ("case-email", WaveKind.CASE_EMAIL)
    assert prepared.wave.subjects == {"en": "Stand with Nassima"}
    assert prepared.case.slug == "nassima" and "en" in prepared.case.content
    messages = by_email(any_engine, Message.id)
    supporters = by_email(any_engine, Message.supporter_id)
    assert prepared.going == tuple(
        RecipientData(
            supporters[email], email, email.split("@")[0].title(), None, messages[email],
            prepared.case.id, prepared.wave.id,
        )
        for email in ("ana@example.org", "ben@example.org")
    )  # fmt: skip


def test_only_a_queued_batch_can_be_claimed(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    with session_scope(any_engine) as session:
        session.execute(update(Batch).values(status=BatchStatus.PENDING))
    assert _store(any_engine).claim(batch_id, "key-1", NINE) == Settled(BatchOutcome.NOT_MINE)
    assert _batch(any_engine, batch_id).send_key is None


def test_the_claim_re_checks_every_recipient_and_marks_the_others_skipped(
    any_engine: Engine,
) -> None:
    case = add_case(any_engine, SETTINGS)
    emails = ["ok", "gone", "noconsent", "suppressed", "erased", "acted", "recent"]
    made = add_supporters(any_engine, [case], [f"{e}@x.org" for e in emails])
    ids = dict(zip(emails, made, strict=True))
    earlier = add_wave(any_engine, SETTINGS, "earlier", status=WaveStatus.DONE)
    reminder = add_wave(
        any_engine,
        SETTINGS,
        "reminder",
        kind=WaveKind.ACTION_REMINDER,
        audience=AudienceRule.NOT_ACTED,
    )
    plan_wave(any_engine, SETTINGS, reminder, DEC1)
    with session_scope(any_engine) as session:  # after planning, before sending
        (batch_id,) = repo.release_due(session, NINE, 100)
        changes: dict[str, dict[str, object]] = {
            "gone": {"status": SupporterStatus.UNSUBSCRIBED},
            "noconsent": {"consent": False},
            "erased": {"email": None},
        }
        for name, values in changes.items():
            session.execute(update(Supporter).where(Supporter.id == ids[name]).values(**values))
        session.add(Suppression(email_hash=email_hash("suppressed@x.org"), reason="bounced"))
        session.add(Action(supporter_id=ids["acted"], case_id=case, kind="clicked", source="link"))
        session.add(
            Message(
                wave_id=earlier,
                supporter_id=ids["recent"],
                case_id=case,
                language="en",
                status=MessageStatus.SENT,
                sent_at=NINE - timedelta(hours=1),
            )
        )
    prepared = _prepared(_store(any_engine), batch_id)
    assert [r.email for r in prepared.going] == ["ok@x.org"]
    assert prepared.skipped == 6
    with session_scope(any_engine) as session:
        reasons = dict(
            session.execute(
                select(Message.supporter_id, Message.skip_reason).where(
                    Message.wave_id == reminder, Message.status == MessageStatus.SKIPPED
                )
            ).all()
        )
    assert reasons == {
        ids["gone"]: "unsubscribed",
        ids["noconsent"]: "no_consent",
        ids["suppressed"]: "suppressed",
        ids["erased"]: "unsubscribed",
        ids["acted"]: "acted",
        ids["recent"]: "frequency_cap",
    }


def test_a_batch_with_nobody_left_is_recorded_sent_without_delivery(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    with session_scope(any_engine) as session:
        session.execute(update(Supporter).values(consent=False))
    claimed = _store(any_engine).claim(batch_id, "key-1", NINE)
    assert isinstance(claimed, Settled)
    assert (claimed.outcome, claimed.skipped, claimed.detail) == (
        BatchOutcome.SENT,
        1,
        "nobody left to send to",
    )
    assert _batch(any_engine, batch_id).status == BatchStatus.SENT
    assert statuses(any_engine, Message) == {MessageStatus.SKIPPED: 1}


def test_a_paused_case_or_cancelled_wave_holds_the_batch(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    store = _store(any_engine)
    with session_scope(any_engine) as session:
        session.execute(update(Case).values(status=CaseStatus.PAUSED))
    held = store.claim(batch_id, "key-1", NINE)
    assert isinstance(held, Settled) and held.outcome is BatchOutcome.HELD
    assert held.detail == "wave sending, case paused" and held.wave_id is not None
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.send_key) == (BatchStatus.PENDING, None)
    with session_scope(any_engine) as session:
        session.execute(update(Case).values(status=CaseStatus.ACTIVE))
        session.execute(update(Wave).values(status=WaveStatus.CANCELLED))
        session.execute(update(Batch).values(status=BatchStatus.QUEUED))
    cancelled = store.claim(batch_id, "key-2", NINE)
    assert isinstance(cancelled, Settled) and cancelled.outcome is BatchOutcome.HELD
    assert _batch(any_engine, batch_id).status == BatchStatus.CANCELLED
    assert statuses(any_engine, Message) == {MessageStatus.CANCELLED: 1}


def test_a_batch_past_its_window_is_cancelled_not_sent_late(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    late = _batch(any_engine, batch_id).send_before
    claimed = _store(any_engine).claim(batch_id, "key-1", late)
    assert isinstance(claimed, Settled) and claimed.outcome is BatchOutcome.EXPIRED
    assert _batch(any_engine, batch_id).status == BatchStatus.CANCELLED
    assert by_email(any_engine, Message.skip_reason) == {"ana@example.org": "missed"}


def test_rekey_needs_the_current_key(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    store = _store(any_engine)
    _prepared(store, batch_id)
    later = NINE + timedelta(seconds=5)
    assert store.rekey(batch_id, "key-1", "key-2", later)
    assert not store.rekey(batch_id, "key-1", "key-3", later)  # the old key holds nothing now
    batch = _batch(any_engine, batch_id)
    assert (batch.send_key, batch.attempts, batch.claimed_at) == ("key-2", 2, later)


def test_accept_marks_the_messages_sent_and_counts_the_sends_once(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org", "ben@example.org"])
    store = _store(any_engine)
    _prepared(store, batch_id)
    assert store.accept(batch_id, "stale", NINE, "sg-0") == 0  # another attempt's key
    assert store.accept(batch_id, "key-1", NINE, "sg-1") == 2
    assert store.accept(batch_id, "key-1", NINE, "sg-1") == 0  # accepted already
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.sent_at, batch.provider_message_id) == (
        BatchStatus.SENT,
        NINE,
        "sg-1",
    )
    assert statuses(any_engine, Message) == {MessageStatus.SENT: 2}
    assert build_report(any_engine)["totals"]["sends"] == 2


def test_accepting_a_batch_rewrites_no_index_entry_on_postgresql(pg_engine: Engine) -> None:
    """Heap-only (see Message): no indexed column changes and the page has room."""
    batch_id = _released(pg_engine, [f"s{i}@example.org" for i in range(3)])
    counts = text(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'messages'"
    )
    with session_scope(pg_engine) as session:
        assert claim_batch(session, batch_id, "key-1", NINE)
        before = session.execute(counts).one()
        assert record_accepted(session, batch_id, "key-1", NINE, "sg-1") == 3
        after = session.execute(counts).one()
    assert (after[0] - before[0], after[1] - before[1]) == (3, 3)


def test_finish_touches_nothing_once_another_key_holds_the_batch(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    store = _store(any_engine)
    prepared = _prepared(store, batch_id)
    assert store.rekey(batch_id, "key-1", "key-2", NINE)
    store.finish(prepared, "key-1", Ending.LATER, "late answer", retry_at=NINE)
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.send_key, batch.error) == (BatchStatus.SENDING, "key-2", None)


def test_finish_failed_fails_the_batch_and_its_messages_and_keeps_the_key(
    any_engine: Engine,
) -> None:
    batch_id = _released(any_engine, ["ana@example.org", "ben@example.org"])
    store = _store(any_engine)
    store.finish(_prepared(store, batch_id), "key-1", Ending.FAILED, "refused (400)")
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.send_key, batch.error) == (
        BatchStatus.FAILED,
        "key-1",
        "refused (400)",
    )
    assert statuses(any_engine, Message) == {MessageStatus.FAILED: 2}


def test_finish_later_unknown_and_paused(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    store = _store(any_engine)
    retry_at = NINE + timedelta(minutes=5)
    store.finish(_prepared(store, batch_id), "key-1", Ending.LATER, "503", retry_at=retry_at)
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.send_key, batch.retry_at) == (BatchStatus.PENDING, None, retry_at)
    with session_scope(any_engine) as session:
        session.execute(update(Batch).values(status=BatchStatus.QUEUED, retry_at=None))
    store.finish(_prepared(store, batch_id, "key-2"), "key-2", Ending.UNKNOWN, "timed out")
    batch = _batch(any_engine, batch_id)
    assert (batch.status, batch.send_key, batch.error) == (
        BatchStatus.SENDING,
        "key-2",
        "timed out",
    )
    with session_scope(any_engine) as session:
        session.execute(update(Batch).values(status=BatchStatus.QUEUED, send_key=None))
    prepared = _prepared(store, batch_id, "key-3")
    store.finish(prepared, "key-3", Ending.PAUSED, "paused: bad API key")
    assert status_of(any_engine, prepared.wave.id) == (WaveStatus.PAUSED, "paused: bad API key")
    assert _batch(any_engine, batch_id).status == BatchStatus.PENDING
    assert statuses(any_engine, Message) == {MessageStatus.PLANNED: 1}


def test_still_sendable_follows_the_wave_and_the_case(any_engine: Engine) -> None:
    batch_id = _released(any_engine, ["ana@example.org"])
    store = _store(any_engine)
    prepared = _prepared(store, batch_id)
    wave_id, case_id = prepared.wave.id, prepared.case.id
    assert store.still_sendable(wave_id, case_id)
    with session_scope(any_engine) as session:
        session.execute(update(Case).values(status=CaseStatus.PAUSED))
    assert not store.still_sendable(wave_id, case_id)
    with session_scope(any_engine) as session:
        session.execute(update(Case).values(status=CaseStatus.ACTIVE))
        session.execute(update(Wave).values(status=WaveStatus.PAUSED))
    assert not store.still_sendable(wave_id, case_id)
    assert not store.still_sendable(wave_id + 100, case_id)  # no such wave
