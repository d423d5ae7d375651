"""A staged plan moved into batches and messages a few batches per transaction.

sender.send.planner stages every eligible row of a wave in `plan_rows`, numbered
into batches, in one statement that reads and locks nothing anyone waits for.
Here those rows become batches and messages one chunk at a time: a chunk's
transaction inserts its batches and messages and deletes its staged rows, so
a row is either staged or planned, never both, and its locks last as long as
a few thousand inserts. Each chunk's batches can be released at once.

The wave's `planning_until` is the planner's lease: every chunk renews it in
its own transaction, on condition that the wave is still sending and the
lease is still this planner's. A paused wave makes the chunk roll back and
the planner hand the lease back; a planner that dies leaves a lease that
runs out, and the next tick takes the plan over where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, and_, delete, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from sender.core.db import rowcount, session_scope
from sender.core.models import Batch, Message, PlanRow, Wave, WaveSlot
from sender.core.vocabulary import BatchStatus, MessageStatus, WaveStatus


@dataclass(frozen=True)
class Chunking:
    """How much one planning transaction takes on, and how long a silent planner owns a plan."""

    # Ten batches (10,000 messages at most): a transaction of a few hundred
    # milliseconds, whose row locks nobody else needs.
    batches: int = 10
    # Far longer than any chunk, so a live planner is never taken over.
    lease: timedelta = timedelta(minutes=2)


DEFAULT_CHUNKING = Chunking()


@dataclass(frozen=True)
class Chunk:
    """Consecutive batches of one case, language, variant and slot: one index range of
    plan_rows."""

    slot_at: datetime
    case_id: int
    language: str
    variant: str
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Moved:
    """What one planner moved out of plan_rows, and whether the plan is complete."""

    messages: int = 0
    batches: int = 0
    complete: bool = True


@dataclass
class Lease:
    """This planner's hold on a wave's plan: the `planning_until` it last wrote.

    Not frozen: `held` follows each renewal, and is compared with the row's
    value to tell whether the plan is still this planner's.
    """

    wave_id: int
    now: datetime
    length: timedelta
    held: datetime
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._started = time.monotonic()

    def next(self) -> datetime:
        """A new deadline: the plan's `now` moved on by the time this planner has run."""
        return self.now + timedelta(seconds=time.monotonic() - self._started) + self.length


def lease_for(wave_id: int, now: datetime, length: timedelta) -> Lease:
    return Lease(wave_id, now, length, now + length)


def take_over(session: Session, lease: Lease) -> bool:
    """A half-planned wave whose planner stopped renewing becomes this planner's.

    A paused wave is left alone: its plan goes on after `resume`.
    """
    result = session.execute(
        update(Wave)
        .where(
            Wave.id == lease.wave_id,
            Wave.planning_until.is_not(None),
            Wave.planning_until <= lease.now,
            Wave.status != WaveStatus.PAUSED,
        )
        .values(planning_until=lease.held)
    )
    return rowcount(result) > 0


def half_planned(session: Session, now: datetime) -> list[int]:
    """Waves whose planner stopped mid-plan (dead, or its wave was paused and resumed)."""
    return list(
        session.scalars(
            select(Wave.id)
            .where(
                Wave.planning_until.is_not(None),
                Wave.planning_until <= now,
                Wave.status != WaveStatus.PAUSED,
            )
            .order_by(Wave.id)
        )
    )


def move_staged(
    engine: Engine,
    lease: Lease,
    chunking: Chunking,
    on_chunk: Callable[[], None] | None = None,
) -> Moved:
    """Every staged row of the wave into batches and messages, a chunk per transaction."""
    with session_scope(engine) as session:
        chunks = remaining_chunks(session, lease.wave_id, chunking.batches)
    messages = batches = 0
    for number, chunk in enumerate(chunks):
        moved = _move_one(engine, lease, chunk, analyse=_doubled(number))
        if moved is None:
            _stop(engine, lease)
            return Moved(messages, batches, complete=False)
        messages, batches = messages + moved[0], batches + moved[1]
        if on_chunk is not None:
            on_chunk()
    with session_scope(engine) as session:
        _finish(session, lease)
    return Moved(messages, batches)


def remaining_chunks(session: Session, wave_id: int, per_chunk: int) -> list[Chunk]:
    """The staged batches, earliest slot first, cut into chunks of `per_chunk` batches."""
    rows = PlanRow.__table__.c
    columns = (rows.slot_at, rows.case_id, rows.language, rows.variant, rows.batch_seq)
    keys = session.execute(
        select(*columns).where(rows.wave_id == wave_id).group_by(*columns).order_by(*columns)
    ).all()
    found = ((k.slot_at, k.case_id, k.language, k.variant, k.batch_seq) for k in keys)
    return list(_cut(found, per_chunk))


ChunkKey = tuple[datetime, int, str, str, int]


def _cut(keys: Iterable[ChunkKey], per_chunk: int) -> Iterable[Chunk]:
    current: list[ChunkKey] = []
    for key in keys:
        if current and (key[:4] != current[0][:4] or len(current) >= per_chunk):
            yield _chunk(current)
            current = []
        current.append(key)
    if current:
        yield _chunk(current)


def _chunk(keys: list[ChunkKey]) -> Chunk:
    slot_at, case_id, language, variant, first = keys[0]
    return Chunk(slot_at, case_id, language, variant, first, keys[-1][4])


def _move_one(engine: Engine, lease: Lease, chunk: Chunk, analyse: bool) -> tuple[int, int] | None:
    """One chunk in one transaction; None (and nothing changed) if the lease was lost."""
    with session_scope(engine) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        batches = rowcount(
            session.execute(
                insert(Batch).from_select(_BATCH_COLUMNS, _grouped(lease, chunk)),
                execution_options={"preserve_rowcount": True},
            )
        )
        messages = rowcount(
            session.execute(
                insert(Message).from_select(_MESSAGE_COLUMNS, _linked(lease, chunk)),
                execution_options={"preserve_rowcount": True},
            )
        )
        session.execute(
            delete(PlanRow)
            .where(_in_chunk(lease.wave_id, chunk))
            # Else the ORM fetches every deleted key back (1.1 s of Python per 200,000 rows).
            .execution_options(synchronize_session=False)
        )
        # Last, so the wave row is locked for an instant: a staff pause waits
        # for this UPDATE, not for the whole chunk, and the chunk it overtakes
        # rolls back here.
        if not _renew(session, lease):
            session.rollback()
            return None
        if postgres and analyse:
            # The batches sent meanwhile re-check the frequency cap against
            # `messages`: with statistics from a table a fraction of its size,
            # that probe became a scan of the whole table per batch.
            session.execute(text("ANALYZE messages, batches"))
    return messages, batches


def _doubled(number: int) -> bool:
    """After chunks 1, 2, 4, 8...: whenever this plan may have doubled the table."""
    return (number + 1) & number == 0


def _renew(session: Session, lease: Lease) -> bool:
    until = lease.next()
    result = session.execute(
        update(Wave)
        .where(
            Wave.id == lease.wave_id,
            Wave.status == WaveStatus.SENDING,
            Wave.planning_until == lease.held,
        )
        .values(planning_until=until)
    )
    if rowcount(result) == 0:
        return False
    lease.held = until
    return True


def _stop(engine: Engine, lease: Lease) -> None:
    """The lease was lost: hand a paused plan back, drop a stopped wave's staged rows.

    If another planner holds the lease now, its plan it is, and nothing changes.
    """
    with session_scope(engine) as session:
        wave = session.get(Wave, lease.wave_id, with_for_update=True)
        if wave is None or wave.planning_until != lease.held:
            return
        if wave.status in (WaveStatus.PAUSED, WaveStatus.SENDING):
            # Ran out already, so the tick after `resume` goes on with it.
            wave.planning_until = lease.now
            return
        session.execute(
            delete(PlanRow)
            .where(PlanRow.wave_id == lease.wave_id)
            .execution_options(synchronize_session=False)
        )
        wave.planning_until = None


def _finish(session: Session, lease: Lease) -> None:
    """Nothing left staged: the plan is complete (the wave may be done once sent)."""
    session.execute(
        update(Wave)
        .where(Wave.id == lease.wave_id, Wave.planning_until == lease.held)
        .values(planning_until=None)
    )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE messages, batches"))


def _in_chunk(wave_id: int, chunk: Chunk) -> Any:
    rows = PlanRow.__table__.c
    return and_(
        rows.wave_id == wave_id,
        rows.slot_at == chunk.slot_at,
        rows.case_id == chunk.case_id,
        rows.language == chunk.language,
        rows.variant == chunk.variant,
        rows.batch_seq.between(chunk.first_seq, chunk.last_seq),
    )


_BATCH_COLUMNS = [
    "wave_id",
    "case_id",
    "language",
    "slot_at",
    "variant",
    "seq",
    "send_after",
    "send_before",
    "size",
    "planned_count",  # its messages, all planned: the tally starts at the size
    "status",
    "attempts",
    "created_at",
]
_MESSAGE_COLUMNS = [
    "wave_id",
    "supporter_id",
    "case_id",
    "language",
    "batch_id",
    "status",
    "created_at",
]


def _grouped(lease: Lease, chunk: Chunk) -> Select[Any]:
    """One batch per number: its zones' latest slot and their earliest window end."""
    rows = PlanRow.__table__.c
    return (
        select(
            literal(lease.wave_id),
            rows.case_id,
            rows.language,
            rows.slot_at,
            rows.variant,
            rows.batch_seq,
            func.max(WaveSlot.send_after),
            func.min(WaveSlot.send_before),
            func.count(),
            func.count(),
            literal(BatchStatus.PENDING.value),
            literal(0),
            literal(lease.now, Batch.created_at.type),
        )
        .select_from(PlanRow)
        .join(
            WaveSlot,
            and_(WaveSlot.wave_id == lease.wave_id, WaveSlot.timezone == rows.timezone),
        )
        .where(_in_chunk(lease.wave_id, chunk))
        .group_by(rows.case_id, rows.language, rows.slot_at, rows.variant, rows.batch_seq)
    )


def _linked(lease: Lease, chunk: Chunk) -> Select[Any]:
    """Each staged row of the chunk with the id of the batch just made for it."""
    rows = PlanRow.__table__.c
    return (
        select(
            literal(lease.wave_id),
            rows.supporter_id,
            rows.case_id,
            rows.language,
            Batch.id,
            literal(MessageStatus.PLANNED.value),
            literal(lease.now, Message.created_at.type),
        )
        .select_from(PlanRow)
        .join(
            Batch,
            and_(
                Batch.wave_id == lease.wave_id,
                Batch.case_id == rows.case_id,
                Batch.language == rows.language,
                Batch.slot_at == rows.slot_at,
                Batch.variant == rows.variant,
                Batch.seq == rows.batch_seq,
            ),
        )
        .where(_in_chunk(lease.wave_id, chunk))
        # A batch's rows together on few pages (its reads and its acceptance
        # touch 30 pages, not 1,000), in supporter order within it.
        .order_by(Batch.id, rows.supporter_id)
    )
