"""The launch confirmation's figures, counted in the background and kept per wave.

At a million supporters `wave_reach` takes seconds (a million-by-million join
and a scan of the recently mailed), so the page only starts a count here and
polls it; a Celery worker or a thread runs `count_reach`. One row per wave
(models.ReachCount) holds the latest count: what it was counted for (a
fingerprint of the wave's row and its cap, and the instant), its state, its
rows. Starting is a compare-and-set on that row in the database, so a reload,
a second tab or another gunicorn worker finds the count already running
instead of starting another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import Campaign, ReachCount, Wave
from sender.core.subject_test import SubjectTestSpec
from sender.core.vocabulary import ReachState
from sender.send.eligibility import campaign_cap
from sender.send.reach import Reach, ReachRow, wave_reach

# How long a finished count is shown without counting again. Short, because the
# figures move underneath the wave's own row, where no fingerprint can see them:
# suppressions arrive with every webhook, imports and assignments add supporters,
# other waves' sends move people under the frequency cap. A minute keeps a
# campaigner's reloads cheap; "Count again" asks for a new count at any time.
MAX_AGE = timedelta(seconds=60)
# A count still counting after this long lost its worker (a deploy, a killed
# thread): the next poll of the page starts another, so a page never waits on a
# dead count for longer. Well past the slowest honest count (about 30 s at
# 5,000,000 supporters); a late finish of the lost one writes nothing (`attempt`).
STUCK_AFTER = timedelta(minutes=5)
MAX_ERROR = 2000


@dataclass(frozen=True)
class ReachCountView:
    wave_id: int
    attempt: int
    state: ReachState
    fingerprint: str
    counted_for: datetime  # the instant whose rules were applied
    started_at: datetime
    finished_at: datetime | None
    reach: Reach | None  # once done
    error: str | None  # once failed

    @property
    def finished(self) -> bool:
        return self.state is not ReachState.COUNTING


def is_fresh(count: ReachCountView, fingerprint: str, now: datetime) -> bool:
    """A finished count made for this wave as it stands, less than MAX_AGE ago."""
    return count.finished and count.fingerprint == fingerprint and now - count.counted_for < MAX_AGE


def is_stuck(count: ReachCountView, now: datetime) -> bool:
    return count.state is ReachState.COUNTING and now - count.started_at >= STUCK_AFTER


def wave_fingerprint(engine: Engine, wave_id: int, default_cap: timedelta) -> str:
    """What of the wave's own row changes the answer: one primary-key read of two rows."""
    with session_scope(engine) as session:
        wave = session.get_one(Wave, wave_id)
        campaign = session.get_one(Campaign, wave.campaign_id)
        cap = campaign_cap(campaign.frequency_cap_hours, default_cap)
        inputs = [
            wave.campaign_id,
            wave.status,
            wave.audience,
            wave.subjects,
            wave.subject_test or {},
            cap.total_seconds(),
        ]
    encoded = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def start_count(
    engine: Engine, wave_id: int, now: datetime, default_cap: timedelta, *, again: bool = False
) -> tuple[ReachCountView, bool]:
    """The wave's count to show and whether it was started here (the caller then runs it).

    A count already counting is never doubled. Without `again` a fresh finished
    count is kept; with it (the "Count again" button) any finished one is replaced.
    """
    fingerprint = wave_fingerprint(engine, wave_id, default_cap)
    current = read_count(engine, wave_id)
    if current is not None:
        if current.state is ReachState.COUNTING and not is_stuck(current, now):
            return current, False
        if not again and is_fresh(current, fingerprint, now):
            return current, False
    started = _claim(engine, wave_id, current, fingerprint, now)
    found = read_count(engine, wave_id)
    if found is None:  # the wave went meanwhile (its count with it)
        raise LookupError(f"no count for wave #{wave_id}")
    return found, started


def _claim(
    engine: Engine,
    wave_id: int,
    current: ReachCountView | None,
    fingerprint: str,
    now: datetime,
) -> bool:
    """Insert the first count, or move the row on from the attempt read: True if this won."""
    values = {
        "fingerprint": fingerprint,
        "counted_for": now,
        "state": ReachState.COUNTING.value,
        "started_at": now,
        "finished_at": None,
        "rows": [],
        "error": None,
    }
    if current is None:
        try:
            with session_scope(engine) as session:
                session.add(ReachCount(wave_id=wave_id, attempt=1, **values))
            return True
        except IntegrityError:  # another request inserted it first: theirs stands
            return False
    with session_scope(engine) as session:
        moved = session.execute(
            update(ReachCount)
            .where(ReachCount.wave_id == wave_id, ReachCount.attempt == current.attempt)
            .values(attempt=current.attempt + 1, **values)
        )
        return bool(moved.rowcount)  # type: ignore[attr-defined]


def count_reach(
    engine: Engine, wave_id: int, attempt: int, default_cap: timedelta
) -> ReachCountView | None:
    """Count `attempt` of the wave's reach (wave_reach at its `counted_for`) and store it."""
    count = read_count(engine, wave_id)
    if count is None or count.attempt != attempt or count.state is not ReachState.COUNTING:
        return count  # a redelivered task, or one a newer count replaced
    try:
        reach = wave_reach(engine, wave_id, count.counted_for, default_cap)
    except Exception as error:  # any failure ends the count and is shown on the page
        _finish(engine, wave_id, attempt, ReachState.FAILED, error=str(error)[:MAX_ERROR])
    else:
        rows = [[r.case, r.language, r.reason, r.supporters] for r in reach.rows]
        _finish(engine, wave_id, attempt, ReachState.DONE, rows=rows)
    return read_count(engine, wave_id)


def _finish(
    engine: Engine, wave_id: int, attempt: int, state: ReachState, **values: object
) -> None:
    # Only while this attempt is the row's: a stuck count that wakes late writes nothing.
    with session_scope(engine) as session:
        session.execute(
            update(ReachCount)
            .where(ReachCount.wave_id == wave_id, ReachCount.attempt == attempt)
            .values(state=state.value, finished_at=SystemClock().now(), **values)
        )


def read_count(engine: Engine, wave_id: int) -> ReachCountView | None:
    with session_scope(engine) as session:
        found = session.scalar(select(ReachCount).where(ReachCount.wave_id == wave_id))
        if found is None:
            return None
        state = ReachState(found.state)
        reach = None
        if state is ReachState.DONE:
            # The test comes from the wave: a count is shown only while the wave's
            # fingerprint (its test included) is the one it was counted for.
            test = session.get_one(Wave, wave_id).subject_test
            rows = tuple(ReachRow(str(c), str(lg), str(r), int(n)) for c, lg, r, n in found.rows)
            reach = Reach(rows, SubjectTestSpec.from_json(test))
        return ReachCountView(
            found.wave_id,
            found.attempt,
            state,
            found.fingerprint,
            found.counted_for,
            found.started_at,
            found.finished_at,
            reach,
            found.error,
        )
