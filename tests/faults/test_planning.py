"""Faults during planning: the planner SIGKILLed mid-plan, a pause and a kill switch mid-plan.

To stop the planner at a known point, the test holds a row lock on the second
case (`SELECT ... FOR UPDATE`): the planner commits the first case's chunks
(and releases their batches), then waits on that row when the first batch
of the second case checks its foreign key. So it is mid-plan for certain:
some batches planned and released, the rest still staged.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, func, select, text

from faults.fault_fixtures import (
    LIVE_GRACE,
    ROOT,
    World,
    add_audience,
    batch_counts,
    declare_wave,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
    wave_of,
)
from sender.campaign.cases import set_case_status
from sender.campaign.waves import pause, resume
from sender.core.db import session_scope
from sender.core.models import Assignment, Batch, Case, PlanRow, Supporter
from sender.core.vocabulary import BatchStatus, CaseStatus, MessageStatus, WaveStatus
from sender.devtools.waiting import wait_until
from sender.send.scheduler import TickReport

pytest_plugins = ("faults.fault_fixtures",)
SUPPORTERS = 2000  # two cases, two languages: four variants of five batches of 100
FIRST_CASE = SUPPORTERS // 2
# What the staff controls may take while a plan runs.
PROMPT = 2.0


def _prepare(world: World) -> tuple[int, list[str], list[int]]:
    cases = open_campaign(world.engine, world.settings)[:2]
    emails = add_audience(world.engine, cases, SUPPORTERS)
    wave_id = declare_wave(world.engine, world.settings)
    launch_wave(world.engine, world.settings)
    return wave_id, emails, cases


@contextmanager
def _holding(world: World, case_id: int) -> Iterator[Connection]:
    """A transaction holding the case's row lock until the block ends."""
    with world.engine.connect() as connection:
        connection.execute(text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
        try:
            yield connection
        finally:
            connection.rollback()


def _planner_blocked(world: World) -> bool:
    with world.engine.connect() as connection:
        waiting = connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        return bool(waiting.scalar_one())


def _staged(world: World, wave_id: int) -> int:
    with session_scope(world.engine) as session:
        return session.scalar(select(func.count()).where(PlanRow.wave_id == wave_id)) or 0


def _case_batches(world: World, case_id: int) -> dict[str, int]:
    with session_scope(world.engine) as session:
        rows = session.execute(
            select(Batch.status, func.count())
            .where(Batch.case_id == case_id)
            .group_by(Batch.status)
        )
        return {str(status): int(n) for status, n in rows}


def _assigned(world: World, case_id: int) -> set[str]:
    with session_scope(world.engine) as session:
        return set(
            session.scalars(
                select(Supporter.email)
                .join(Assignment, Assignment.supporter_id == Supporter.id)
                .where(Assignment.case_id == case_id)
            )
        )


def _wait_mid_plan(world: World, wave_id: int, first_case: int) -> None:
    wait_until(lambda: _planner_blocked(world), 60, "the planner to reach the held case")
    assert sum(_case_batches(world, first_case).values()) == 10
    assert _staged(world, wave_id) == SUPPORTERS - FIRST_CASE


def _start_planner(world: World) -> subprocess.Popen[bytes]:
    """The beat's tick as a worker runs it (sender.tasks.tick_task), in its own process."""
    code = "import worker; from sender.tasks import tick_task; tick_task()"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=world.worker_env(),
        stdout=(world.directory / "planner.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_a_planner_killed_mid_plan_is_resumed_and_nobody_is_planned_twice_or_missed(
    world: World,
) -> None:
    wave_id, emails, (first, second) = _prepare(world)
    world.start_worker()
    with _holding(world, second):
        planner = _start_planner(world)
        _wait_mid_plan(world, wave_id, first)
        planner.kill()  # SIGKILL, mid-plan
        planner.wait(timeout=30)
    # The first case's batches were released before the kill and go out meanwhile.
    wait_until(lambda: world.sg.admin.count() == FIRST_CASE, 60, "the first case's mail")
    assert wave_of(world.engine, wave_id).status == WaveStatus.SENDING
    assert _staged(world, wave_id) == SUPPORTERS - FIRST_CASE
    # A tick while the dead planner's lease holds leaves the plan alone.
    assert world.tick().planned == ()
    # The lease ran out; the grace period moves with the clock, so the live
    # worker's requests are not taken for a dead one's.
    ahead = timedelta(minutes=3)
    report = world.tick(datetime.now(UTC) + ahead, grace=LIVE_GRACE + ahead)
    assert [(p.resumed, p.messages, p.complete) for p in report.planned] == [
        (True, SUPPORTERS - FIRST_CASE, True)
    ]
    world.drive(wave_id)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: SUPPORTERS}
    assert _staged(world, wave_id) == 0


def _tick_in_thread(world: World) -> tuple[threading.Thread, list[TickReport]]:
    reports: list[TickReport] = []
    thread = threading.Thread(target=lambda: reports.append(world.tick()), daemon=True)
    thread.start()
    return thread, reports


def _timed(action: object) -> float:
    started = time.monotonic()
    assert callable(action)
    action()
    return time.monotonic() - started


@pytest.mark.slow
def test_a_pause_during_planning_takes_effect_at_once(world: World) -> None:
    wave_id, emails, (first, second) = _prepare(world)
    with _holding(world, second):
        thread, reports = _tick_in_thread(world)
        _wait_mid_plan(world, wave_id, first)
        assert _timed(lambda: pause(world.engine, "faults-wave")) < PROMPT
    thread.join(timeout=60)
    assert not thread.is_alive()
    plan = reports[0].planned[0]
    assert (plan.messages, plan.complete) == (FIRST_CASE, False)  # stopped at the pause
    assert wave_of(world.engine, wave_id).status == WaveStatus.PAUSED
    assert _staged(world, wave_id) == SUPPORTERS - FIRST_CASE
    # The batches released before the pause reach a worker, which holds them.
    world.start_worker()
    wait_until(
        lambda: batch_counts(world.engine, wave_id) == {BatchStatus.PENDING: 10},
        60,
        "the queued batches to be held",
    )
    assert world.sg.admin.count() == 0
    resume(world.engine, "faults-wave", datetime.now(UTC))
    world.drive(wave_id)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert _staged(world, wave_id) == 0


@pytest.mark.slow
def test_a_case_kill_switch_during_planning_takes_effect_at_once(world: World) -> None:
    wave_id, emails, (first, second) = _prepare(world)
    with session_scope(world.engine) as session:
        slug = session.get_one(Case, first).slug
    with _holding(world, second):
        thread, _ = _tick_in_thread(world)
        _wait_mid_plan(world, wave_id, first)
        assert _timed(lambda: set_case_status(world.engine, slug, CaseStatus.PAUSED)) < PROMPT
    thread.join(timeout=60)
    assert not thread.is_alive()
    world.start_worker()
    # The second case's mail goes; the first case's batches, released before the
    # switch, are held by the worker's re-check.
    wait_until(
        lambda: (
            _case_batches(world, second) == {BatchStatus.SENT: 10}
            and _case_batches(world, first) == {BatchStatus.PENDING: 10}
        ),
        60,
        "the second case sent and the first held",
    )
    assert world.sg.admin.count() == SUPPORTERS - FIRST_CASE
    assert set(delivery(world.sg, wave_id, emails).counts) == _assigned(world, second)
    set_case_status(world.engine, slug, CaseStatus.ACTIVE)
    world.drive(wave_id)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
