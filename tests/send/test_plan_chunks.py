"""Planning a chunk of batches per transaction (sender.send.plan_chunks): resumable, pausable."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta

import pytest
from sending_fixtures import DEC1, add_case, add_supporters, add_wave, statuses, wave_status
from sqlalchemy import Engine, func, select, text, update

from sender.campaign.waves import cancel, pause, resume
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Batch, Case, Message, PlanRow, Supporter, Wave
from sender.core.vocabulary import BatchStatus, MessageStatus, WaveStatus
from sender.devtools.waiting import wait_until
from sender.send import store
from sender.send.pipeline import SendPolicy
from sender.send.plan_chunks import Chunking
from sender.send.planner import plan_wave
from sender.send.scheduler import tick

SMALL = Settings(secret_key="test", batch_size=3)
ONE_BATCH = Chunking(batches=1)
POLICY = SendPolicy(reconcile_grace=timedelta(minutes=5), queued_timeout=timedelta(minutes=5))
LATER = timedelta(minutes=10)  # past a dead planner's lease
COUNT = 20


@dataclass
class RecordingDispatcher:
    """Keeps the ids it is handed and sends nothing."""

    seen: list[int] = field(default_factory=list)

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        self.seen.extend(batch_ids)


class PlannerDied(Exception):
    """Raised after a chunk's commit: the planner stops there, as if killed."""


def _world(engine: Engine) -> tuple[int, list[str]]:
    first = add_case(engine, SMALL, "first")
    second = add_case(engine, SMALL, "second")
    emails = [f"fan{n}@example.org" for n in range(COUNT)]
    add_supporters(engine, [first], emails[: COUNT // 2])
    add_supporters(engine, [second], emails[COUNT // 2 :])
    return add_wave(engine, SMALL, window=(time(0), time(23))), emails


def _planned(engine: Engine, wave_id: int) -> Counter[int]:
    with session_scope(engine) as session:
        return Counter(
            session.scalars(select(Message.supporter_id).where(Message.wave_id == wave_id))
        )


def _staged(engine: Engine, wave_id: int) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).where(PlanRow.wave_id == wave_id)) or 0


def _wave(engine: Engine, wave_id: int) -> Wave:
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        session.expunge(wave)
        return wave


def _sizes(engine: Engine, wave_id: int) -> list[int]:
    with session_scope(engine) as session:
        return sorted(session.scalars(select(Batch.size).where(Batch.wave_id == wave_id)))


def _batches_match_messages(engine: Engine, wave_id: int) -> None:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Batch.size, func.count(Message.id))
            .join(Message, Message.batch_id == Batch.id)
            .where(Batch.wave_id == wave_id)
            .group_by(Batch.id)
        ).all()
    assert rows and all(size == linked for size, linked in rows)


def test_a_plan_in_chunks_makes_full_batches_and_leaves_nothing_staged(any_engine: Engine) -> None:
    wave, _ = _world(any_engine)
    result = plan_wave(any_engine, SMALL, wave, DEC1, ONE_BATCH)
    assert result is not None and (result.messages, result.batches) == (COUNT, 8)
    assert result.complete and not result.resumed
    assert _sizes(any_engine, wave) == [1, 1, 3, 3, 3, 3, 3, 3]  # 10 per case: 3 + 3 + 3 + 1
    assert set(_planned(any_engine, wave).values()) == {1}
    _batches_match_messages(any_engine, wave)
    assert _staged(any_engine, wave) == 0
    assert _wave(any_engine, wave).planning_until is None
    assert plan_wave(any_engine, SMALL, wave, DEC1 + LATER, ONE_BATCH) is None  # once only


@dataclass
class WatchingDispatcher:
    """Notes, at each hand-out, how many batches it got and how many messages were planned."""

    engine: Engine
    calls: list[tuple[int, int]] = field(default_factory=list)

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        if batch_ids:
            with session_scope(self.engine) as session:
                planned = session.scalar(select(func.count()).select_from(Message)) or 0
            self.calls.append((len(batch_ids), planned))


def test_each_chunk_is_released_while_the_plan_goes_on(any_engine: Engine) -> None:
    _world(any_engine)
    dispatcher = WatchingDispatcher(any_engine)
    report = tick(any_engine, SMALL, DEC1, dispatcher, POLICY, ONE_BATCH)
    assert report.planned[0].messages == COUNT and report.released == 8
    # A batch at a time, each before the next chunk was planned.
    assert dispatcher.calls == [(1, 3), (1, 6), (1, 9), (1, 10), (1, 13), (1, 16), (1, 19), (1, 20)]
    assert statuses(any_engine, Batch) == {BatchStatus.QUEUED: 8}


def test_a_planner_that_dies_mid_plan_is_taken_over_once_its_lease_runs_out(
    any_engine: Engine,
) -> None:
    wave, _ = _world(any_engine)
    chunks: list[int] = []

    def die_after_three() -> None:
        chunks.append(1)
        if len(chunks) == 3:
            raise PlannerDied

    with pytest.raises(PlannerDied):
        plan_wave(any_engine, SMALL, wave, DEC1, ONE_BATCH, on_chunk=die_after_three)
    assert sum(_planned(any_engine, wave).values()) == 9 and _staged(any_engine, wave) == 11
    half = _wave(any_engine, wave)
    assert half.status == WaveStatus.SENDING and half.planning_until is not None
    with session_scope(any_engine) as session:  # not done while rows wait
        assert store.finished_waves(session, DEC1 + LATER) == []
    # While the lease holds, nobody else plans it: its planner may be alive.
    assert plan_wave(any_engine, SMALL, wave, DEC1 + timedelta(seconds=30), ONE_BATCH) is None
    report = tick(any_engine, SMALL, DEC1 + LATER, RecordingDispatcher(), POLICY, ONE_BATCH)
    assert [(p.resumed, p.messages, p.batches) for p in report.planned] == [(True, 11, 5)]
    planned = _planned(any_engine, wave)
    assert len(planned) == COUNT and set(planned.values()) == {1}
    assert _sizes(any_engine, wave) == [1, 1, 3, 3, 3, 3, 3, 3]
    _batches_match_messages(any_engine, wave)
    assert _staged(any_engine, wave) == 0 and _wave(any_engine, wave).planning_until is None


def test_a_pause_mid_plan_stops_the_planner_and_resume_plans_the_rest(any_engine: Engine) -> None:
    wave, _ = _world(any_engine)
    chunks: list[int] = []

    def pause_after_two() -> None:
        chunks.append(1)
        if len(chunks) == 2:
            pause(any_engine, "case-email")

    dispatcher = RecordingDispatcher()
    result = plan_wave(any_engine, SMALL, wave, DEC1, ONE_BATCH, on_chunk=pause_after_two)
    assert result is not None and not result.complete and result.messages == 6
    assert wave_status(any_engine, wave)[0] == WaveStatus.PAUSED
    assert _staged(any_engine, wave) == COUNT - 6  # the chunk after the pause rolled back
    # Paused: no tick plans or releases it.
    report = tick(any_engine, SMALL, DEC1 + LATER, dispatcher, POLICY)
    assert (report.planned, report.released, dispatcher.seen) == ((), 0, [])
    resume(any_engine, "case-email", DEC1 + LATER)
    report = tick(any_engine, SMALL, DEC1 + LATER, dispatcher, POLICY)
    assert [(p.resumed, p.messages, p.complete) for p in report.planned] == [(True, 14, True)]
    assert report.released == 8 and len(set(dispatcher.seen)) == 8
    planned = _planned(any_engine, wave)
    assert len(planned) == COUNT and set(planned.values()) == {1}
    assert _staged(any_engine, wave) == 0


def test_a_wave_cancelled_mid_plan_drops_its_staged_rows(any_engine: Engine) -> None:
    wave, _ = _world(any_engine)
    chunks: list[int] = []

    def cancel_after_one() -> None:
        chunks.append(1)
        if len(chunks) == 1:
            cancel(any_engine, "case-email")

    result = plan_wave(any_engine, SMALL, wave, DEC1, ONE_BATCH, on_chunk=cancel_after_one)
    assert result is not None and not result.complete and result.messages == 3
    assert _staged(any_engine, wave) == 0 and _wave(any_engine, wave).planning_until is None
    assert statuses(any_engine, Message) == {MessageStatus.CANCELLED: 3}
    report = tick(any_engine, SMALL, DEC1 + LATER, RecordingDispatcher(), POLICY)
    assert (report.planned, report.released) == ((), 0)
    assert sum(_planned(any_engine, wave).values()) == 3


def test_a_plan_in_progress_holds_up_no_reader_or_writer(pg_engine: Engine) -> None:
    """Mid-plan (the planner waits on a case row the test holds), the tables stay usable."""
    wave, _ = _world(pg_engine)
    with session_scope(pg_engine) as session:
        second = session.scalars(select(Case.id).where(Case.slug == "second")).one()
    results: list[object] = []
    with pg_engine.connect() as holder:
        holder.execute(text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": second})
        planner = threading.Thread(
            target=lambda: results.append(plan_wave(pg_engine, SMALL, wave, DEC1, ONE_BATCH))
        )
        planner.start()
        wait_until(lambda: _waiting(pg_engine), 30, "the planner to wait on the held case")
        with pg_engine.connect() as other:
            other.execute(text("SET lock_timeout = '1s'"))
            # What links, unsubscribes, the webhook and the dashboard do meanwhile.
            assert other.execute(select(func.count()).select_from(Message)).scalar_one() == 10
            other.execute(
                update(Supporter)
                .where(Supporter.email == "fan0@example.org")
                .values(status="unsubscribed")
            )
            other.execute(select(func.count()).select_from(Batch)).scalar_one()
            other.commit()
        holder.rollback()
    planner.join(timeout=30)
    assert [getattr(r, "messages", None) for r in results] == [COUNT]


def _waiting(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        return bool(waiting.scalar_one())
