"""The beat tick: everything time-driven, given `now`, safe to run anywhere, any number of times.

Far-future schedules live in the database (waves and batches with their
times), never in long-ETA broker messages, so a broker restart loses
nothing: a tick rebuilds the queue from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.vocabulary import WaveStatus
from sender.ops.logs import log_context
from sender.report import variant_counts
from sender.report.totals import ROLL_UP_CHUNK, catch_up
from sender.send import store as repo
from sender.send.pipeline import Sender, SendPolicy, send_batch
from sender.send.plan_chunks import DEFAULT_CHUNKING, Chunking, half_planned
from sender.send.planner import PlanResult, plan_wave
from sender.send.subject_tests import Verdict, advance
from sender.staff import audit
from sender.staff.actions import What

log = logging.getLogger(__name__)

RELEASE_PER_TICK = 5000  # batches handed out per tick; the rest wait for the next one
CATCH_UP_CHUNKS = 10  # roll-up chunks per tick (sender.report.totals.catch_up)


class Dispatcher(Protocol):
    def dispatch(self, batch_ids: Sequence[int]) -> None:
        """Have send_batch run for each id, now (in-process) or soon (a worker)."""
        ...


@dataclass
class InlineDispatcher:
    """The embedded default: this process sends the batches itself."""

    sender: Sender
    results: list[object] = field(default_factory=list)

    def dispatch(self, batch_ids: Sequence[int]) -> None:
        for batch_id in batch_ids:
            self.results.append(send_batch(batch_id, self.sender))


@dataclass(frozen=True)
class TickReport:
    missed: tuple[str, ...] = ()
    planned: tuple[PlanResult, ...] = ()
    released: int = 0
    requeued: int = 0
    expired: int = 0
    reconciled: tuple[tuple[int, int, int], ...] = ()  # (batch, confirmed sent, to resend)
    finished: tuple[str, ...] = ()
    decided: tuple[tuple[str, Verdict], ...] = ()  # subject tests: (wave, verdict)

    def lines(self) -> list[str]:
        out = [f"wave {name} missed: its time passed before it started" for name in self.missed]
        # Before the plans: a decision comes first, then the remainder it sends.
        out += [f"wave {name} subject test: {v.winner} ({v.reason})" for name, v in self.decided]
        out += [_planned_line(p) for p in self.planned]
        if self.released or self.requeued:
            out.append(f"released {self.released} batches, re-released {self.requeued}")
        if self.expired:
            out.append(f"{self.expired} batches missed their send window (not sent late)")
        out += [
            f"batch {b} reconciled: {s} confirmed by events, {r} to resend"
            for b, s, r in self.reconciled
        ]
        out += [f"wave {name} done" for name in self.finished]
        return out


def tick(
    engine: Engine,
    settings: Settings,
    now: datetime,
    dispatcher: Dispatcher,
    policy: SendPolicy | None = None,
    chunking: Chunking = DEFAULT_CHUNKING,
) -> TickReport:
    """Missed waves, due plans, subject tests' decisions and remainders, expired batches,
    reconciliation, releases, finished waves, actions rolled up into the report's totals."""
    policy = policy or SendPolicy.from_settings(settings)
    missed = _mark_missed(engine, now)
    released: list[int] = []

    def release() -> None:
        # Each planned chunk's batches go out at once, while the plan goes on.
        ids = _release(engine, now, RELEASE_PER_TICK - len(released))
        released.extend(ids)
        dispatcher.dispatch(ids)

    planned = tuple(
        result
        for wave_id in _due(engine, now)
        if (result := _plan(engine, settings, wave_id, now, chunking, release)) is not None
    )
    tests = advance(engine, settings, now)  # before the release: a remainder may be due now
    planned += tests.remainders
    with session_scope(engine) as session:
        expired = repo.expire_batches(session, now)
    reconciled = _reconcile(engine, now, policy)
    with session_scope(engine) as session:
        requeued = repo.stuck_queued(session, now, policy.queued_timeout)
    dispatcher.dispatch(requeued)
    release()
    with session_scope(engine) as session:
        finished = tuple(repo.finished_waves(session, now))
    # The report reads totals only; actions without a webhook event behind them
    # (replies, action-link clicks) are counted here, so within a tick; a
    # backlog is spread over ticks (ten chunks of 10,000 actions each).
    rolled = catch_up(engine, now, max_chunks=CATCH_UP_CHUNKS)
    if rolled < CATCH_UP_CHUNKS * ROLL_UP_CHUNK:  # nothing left waiting: "as of" now
        variant_counts.mark_counted(engine, now)
    report = TickReport(
        missed,
        planned,
        len(released),
        len(requeued),
        expired,
        reconciled,
        finished,
        tests.decided,
    )
    for line in report.lines():
        log.info(line)
    return report


def _planned_line(plan: PlanResult) -> str:
    verb = "plan resumed" if plan.resumed else "planned"
    line = f"wave {plan.wave} {verb}: {plan.messages} messages in {plan.batches} batches"
    line += f" ({plan.zones} time zones)"
    return line if plan.complete else f"{line}; paused mid-plan, the rest follows its resume"


def _release(engine: Engine, now: datetime, limit: int) -> list[int]:
    """PENDING batches whose slot opened, QUEUED and committed: a worker must find them so."""
    if limit <= 0:
        return []
    with session_scope(engine) as session:
        return repo.release_due(session, now, limit)


def _mark_missed(engine: Engine, now: datetime) -> tuple[str, ...]:
    names: list[str] = []
    with session_scope(engine) as session:
        for wave in repo.missed_waves(session, now):
            reason = f"missed: its end ({wave.ends_at:%Y-%m-%d %H:%M} UTC) passed before it started"
            if repo.move_wave(session, wave.id, [WaveStatus.SCHEDULED], WaveStatus.MISSED, reason):
                names.append(wave.name)
                audit.record(
                    session,
                    audit.system_actor(),
                    What.WAVE_MISSED,
                    f"wave {wave.name}",
                    before="status=scheduled",
                    after="status=missed",
                    detail=reason,
                    campaign_id=wave.campaign_id,
                )
    return tuple(names)


def _plan(
    engine: Engine,
    settings: Settings,
    wave_id: int,
    now: datetime,
    chunking: Chunking,
    on_chunk: Callable[[], None],
) -> PlanResult | None:
    with log_context(wave_id=wave_id):
        return plan_wave(engine, settings, wave_id, now, chunking, on_chunk)


def _due(engine: Engine, now: datetime) -> list[int]:
    """Waves to plan: due ones, and half-planned ones whose planner stopped."""
    with session_scope(engine) as session:
        return [w.id for w in repo.due_waves(session, now)] + half_planned(session, now)


def _reconcile(
    engine: Engine, now: datetime, policy: SendPolicy
) -> tuple[tuple[int, int, int], ...]:
    done: list[tuple[int, int, int]] = []
    with session_scope(engine) as session:
        for batch_id in repo.unreconciled(session, now, policy.reconcile_grace):
            with log_context(batch_id=batch_id):
                sent, left = repo.reconcile(session, batch_id, now)
            done.append((batch_id, sent, left))
    return tuple(done)
