"""The batch-tally counts (sender.ops.counts) against their plain twin, the scan of
`messages`, after every transition a wave's messages go through."""

from __future__ import annotations

from datetime import datetime, timedelta

from ops_fixtures import NOW, seed
from sending_fixtures import (
    DEC1,
    RecordingTransport,
    add_case,
    add_supporters,
    add_wave,
    make_sender,
)
from sqlalchemy import Engine, select, update

from sender.audience.erasure import forget_supporter
from sender.campaign import waves
from sender.campaign.cases import pending_messages, set_case_status
from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Batch, Event, Message, Supporter
from sender.core.vocabulary import (
    BatchStatus,
    CaseStatus,
    MessageStatus,
    SupporterStatus,
    SuppressionReason,
)
from sender.ops import counts
from sender.ops.counts import MessageCounts
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.pipeline import SendPolicy, send_batch
from sender.send.planner import plan_wave
from sender.send.transport.base import OutcomeUnknown, Rejected
from sender.track import suppressions
from sender.track.account import resend_on_resume

SETTINGS = Settings(secret_key="test", batch_size=3)
NINE = DEC1 + timedelta(hours=9)
LATER = NINE + timedelta(minutes=2)
FAST = SendPolicy(reconcile_grace=timedelta(minutes=1))
EMAILS = [f"s{i}@example.org" for i in range(10)]


def _agree(
    engine: Engine, wave_ids: list[int], case_id: int, since: datetime | None = None
) -> dict[int, MessageCounts]:
    """The fast counts equal the scan's; "sent since" too when asked (its domain: batches
    accepted whole, before any reconciliation, bounce or reopening)."""
    with session_scope(engine) as session:
        fast = counts.message_counts(session, wave_ids, since)
        plain = counts.message_counts_scan(session, wave_ids, since)
        assert {w: dict(c.by_status) for w, c in fast.items()} == {
            w: dict(c.by_status) for w, c in plain.items()
        }
        if since is not None:
            assert fast == plain
        assert counts.planned_of_case(session, case_id) == counts.planned_of_case_scan(
            session, case_id
        )
    return fast


def _ids(engine: Engine, batch_id: int, status: MessageStatus | None = None) -> list[int]:
    query = select(Message.id).where(Message.batch_id == batch_id).order_by(Message.id)
    if status is not None:
        query = query.where(Message.status == status)
    with session_scope(engine) as session:
        return list(session.scalars(query))


def _batch_status(engine: Engine, batch_id: int) -> str:
    with session_scope(engine) as session:
        return session.get_one(Batch, batch_id).status


def test_tallies_follow_every_transition_of_a_wave(any_engine: Engine) -> None:
    engine = any_engine
    case = add_case(engine, SETTINGS)
    people = add_supporters(engine, [case], EMAILS)
    wave = add_wave(engine, SETTINGS)
    assert _agree(engine, [wave], case) == {}

    plan_wave(engine, SETTINGS, wave, DEC1)
    assert _agree(engine, [wave], case)[wave].remaining == 10
    with session_scope(engine) as session:
        first, second, third, fourth = repo.release_due(session, NINE, 100)

    # Erased and unsubscribed after planning: skipped at send time.
    forget_supporter(engine, EMAILS[0])
    with session_scope(engine) as session:
        session.execute(
            update(Supporter).where(Supporter.id == people[1]).values(status="unsubscribed")
        )
    script = [None, Rejected("personalizations invalid", status_code=400), OutcomeUnknown("t/o")]
    transport = RecordingTransport(script=list(script))
    clock = MovableClock(NINE)
    sender = make_sender(engine, SETTINGS, transport, clock, policy=FAST)
    done = send_batch(first, sender)  # the first three: two of them gone since planning
    assert (done.sent, done.skipped) == (1, 2)
    sent = _agree(engine, [wave], case, since=NINE - timedelta(minutes=1))[wave]
    assert (sent.sent, sent.skipped, sent.sent_recently) == (1, 2, 1)

    # A refused batch fails whole, then staff retry it.
    assert send_batch(second, sender).outcome is BatchOutcome.FAILED
    assert _agree(engine, [wave], case, since=NINE - timedelta(minutes=1))[wave].failed == 3
    with session_scope(engine) as session:
        assert repo.retry_failed(session, wave) == 1
    assert _agree(engine, [wave], case)[wave].failed == 0

    # An unknown outcome, reconciled from one message's event: one sent, two to resend.
    assert send_batch(third, sender).outcome is BatchOutcome.UNKNOWN
    confirmed, *_ = _ids(engine, third)
    with session_scope(engine) as session:
        session.add(
            Event(
                provider="sendgrid",
                provider_event_id="ev-1",
                event_type="queued",
                raw_type="processed",
                message_id=confirmed,
                occurred_at=NINE,
            )
        )
    with session_scope(engine) as session:
        (found,) = repo.unreconciled(session, LATER, FAST.reconcile_grace)
        assert repo.reconcile(session, found, LATER) == (1, 2)
    assert _agree(engine, [wave], case)[wave].sent == 2

    # A sent message the provider drops for the account (a bounce fails it the same way),
    # and the resume that sends it again.
    (bounced,) = _ids(engine, first, MessageStatus.SENT)
    reason = sorted(resend_on_resume())[0]
    with session_scope(engine) as session:
        assert suppressions.fail_messages(session, [suppressions.Failed(bounced, reason)]) == 1
        assert suppressions.fail_messages(session, [suppressions.Failed(bounced, reason)]) == 0
    assert _agree(engine, [wave], case)[wave].failed == 1
    waves.pause(engine, "case-email")
    assert waves.resume(engine, "case-email", LATER).endswith("1 dropped messages to send again)")
    assert _agree(engine, [wave], case)[wave].failed == 0

    # An unsubscribe cancels the supporter's messages not yet handed over (the fourth batch).
    (last,) = _ids(engine, fourth)
    with session_scope(engine) as session:
        owner = session.get_one(Message, last).supporter_id
        assert suppressions.cancel_pending(session, [owner], SuppressionReason.UNSUBSCRIBED) == 1
    assert _agree(engine, [wave], case)[wave].by_status[MessageStatus.CANCELLED] == 1

    # The case kill switch: nothing is released, a claimed batch is held.
    set_case_status(engine, "nassima", CaseStatus.PAUSED)
    pending = pending_messages(engine, "nassima")
    clock.at = LATER
    with session_scope(engine) as session:
        assert repo.release_due(session, LATER, 100) == []
        session.execute(update(Batch).where(Batch.id == second).values(status="queued"))
    assert send_batch(second, sender).outcome is BatchOutcome.HELD
    assert pending_messages(engine, "nassima") == pending == 3 + 2 + 1  # second, third, first
    _agree(engine, [wave], case)
    set_case_status(engine, "nassima", CaseStatus.ACTIVE)

    # Sent again; then the wave is cancelled with a batch still waiting.
    with session_scope(engine) as session:
        released = repo.release_due(session, LATER, 100)
    assert sorted(released) == sorted([first, second, third])
    assert send_batch(second, sender).sent == 3
    _agree(engine, [wave], case)
    waves.cancel(engine, "case-email")
    assert _batch_status(engine, first) == BatchStatus.CANCELLED
    final = _agree(engine, [wave], case)[wave]
    assert (final.remaining, final.planned) == (0, 10)
    assert final.by_status == {
        MessageStatus.SENT: 1 + 3,  # third's reconciled one, second
        MessageStatus.SKIPPED: 2,
        MessageStatus.CANCELLED: 1 + 1 + 2,  # the unsubscribe; first's resend, third's two
    }
    assert pending_messages(engine, "nassima") == 0


def test_an_expired_batch_and_a_message_without_a_batch(any_engine: Engine) -> None:
    engine = any_engine
    case = add_case(engine, SETTINGS)
    people = add_supporters(engine, [case], EMAILS[:4])
    wave, loose = add_wave(engine, SETTINGS), add_wave(engine, SETTINGS, name="reminder")
    plan_wave(engine, SETTINGS, wave, DEC1)
    with session_scope(engine) as session:
        session.add(Message(wave_id=loose, supporter_id=people[0], case_id=case, language="en"))
    assert _agree(engine, [wave, loose], case)[loose].remaining == 1
    with session_scope(engine) as session:
        assert repo.expire_batches(session, DEC1 + timedelta(days=3)) == 2
    found = _agree(engine, [wave, loose], case, since=NINE)
    assert found[wave].by_status == {MessageStatus.CANCELLED: 4}
    assert found[loose].by_status == {MessageStatus.PLANNED: 1}
    with session_scope(engine) as session:
        assert counts.planned_of_case(session, case) == 1


def test_message_counts_fold_statuses_into_the_figures_people_read(any_engine: Engine) -> None:
    seeded = seed(any_engine)
    since = NOW - timedelta(minutes=1)
    ids = [seeded.wave_id, seeded.draft_wave_id]
    with session_scope(any_engine) as session:
        found = counts.message_counts(session, ids, sent_since=since)
        assert found == counts.message_counts_scan(session, ids, sent_since=since)
        assert counts.message_counts(session, []) == counts.message_counts_scan(session, []) == {}
    assert set(found) == {seeded.wave_id}  # a draft has no messages
    wave = found[seeded.wave_id]
    assert (wave.planned, wave.sent, wave.failed, wave.remaining, wave.skipped) == (10, 4, 1, 5, 0)
    assert wave.sent_recently == 3
    assert MessageCounts({"skipped": 2, "cancelled": 1}).skipped == 3


def test_the_send_path_never_leaves_a_tally_behind(pg_engine: Engine) -> None:
    """A supporter unsubscribed by status only (no suppression) is skipped at send time."""
    case = add_case(pg_engine, SETTINGS)
    people = add_supporters(pg_engine, [case], EMAILS[:3])
    wave = add_wave(pg_engine, SETTINGS)
    plan_wave(pg_engine, SETTINGS, wave, DEC1)
    with session_scope(pg_engine) as session:
        session.execute(
            update(Supporter)
            .where(Supporter.id.in_(people[:2]))
            .values(status=SupporterStatus.UNSUBSCRIBED)
        )
        (batch,) = repo.release_due(session, NINE, 100)
    sender = make_sender(pg_engine, SETTINGS, RecordingTransport(), MovableClock(NINE))
    assert send_batch(batch, sender).sent == 1
    with session_scope(pg_engine) as session:
        row = session.get_one(Batch, batch)
        tallies = (row.planned_count, row.sent_count, row.skipped_count, row.size)
    assert tallies == (0, 1, 2, 3)
