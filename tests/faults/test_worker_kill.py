"""SIGKILL of a worker mid-wave, at several points; a fresh worker finishes the wave once.

Kill points:
- `claimed`: as soon as a batch is SENDING in the database (the worker is
  reading recipients, rendering, or has its request on the wire);
- `accepted`: the server recorded the batch and holds the answer back
  (`accept_then_hang`), so the worker dies after acceptance, before its commit;
- `idle`: the worker has sent everything it was given and waits for more.

Afterwards the server posts `processed` events for what it recorded (zero
reaction rates), the tick reconciles the dead worker's SENDING batch and
re-releases QUEUED batches whose broker message died with the worker, and a
fresh worker sends the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from faults.fault_fixtures import (
    World,
    add_audience,
    batch_counts,
    declare_wave,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
)
from sender.campaign.cases import set_case_status
from sender.core.db import session_scope
from sender.core.models import Assignment, Batch, Case
from sender.core.vocabulary import BatchStatus, CaseStatus, MessageStatus
from sender.devtools.waiting import wait_until
from sender.send.planner import plan_wave

pytest_plugins = ("faults.fault_fixtures",)
SUPPORTERS = 2000


def _sending(world: World, wave_id: int) -> int:
    with session_scope(world.engine) as session:
        return len(
            list(
                session.scalars(
                    select(Batch.id).where(
                        Batch.wave_id == wave_id, Batch.status == BatchStatus.SENDING
                    )
                )
            )
        )


def _prepare(world: World) -> tuple[int, list[str]]:
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], SUPPORTERS)
    wave_id = declare_wave(world.engine, world.settings)
    launch_wave(world.engine, world.settings)
    return wave_id, emails


def _kill_when_claimed(world: World, wave_id: int) -> None:
    victim = world.start_worker()
    world.tick()
    wait_until(lambda: _sending(world, wave_id) > 0, 30, "a claimed batch", step=0.01)
    victim.kill()


def _kill_after_acceptance(world: World, wave_id: int) -> None:
    world.sg.admin.set_faults(rates={"accept_then_hang": 1.0}, hang_seconds=30)
    victim = world.start_worker()
    world.tick()
    wait_until(lambda: world.sg.admin.count() > 0, 30, "the server to record a batch")
    assert _sending(world, wave_id) == 1  # accepted by the server, not yet committed
    victim.kill()
    world.sg.admin.set_faults()


def _kill_when_idle(world: World, wave_id: int) -> None:
    # The second case is held, so the worker sends the first case's batches
    # and then waits, the wave half done, until the case is resumed.
    plan_wave(world.engine, world.settings, wave_id, datetime.now(UTC))
    held = _second_case(world)
    set_case_status(world.engine, held, CaseStatus.PAUSED)
    victim = world.start_worker()
    world.tick()

    def idle() -> bool:
        counts = batch_counts(world.engine, wave_id)
        return counts.get(BatchStatus.SENT, 0) > 0 and counts.keys() == {
            BatchStatus.SENT,
            BatchStatus.PENDING,
        }

    wait_until(idle, 40, "the first case's batches to be sent")
    victim.kill()
    set_case_status(world.engine, held, CaseStatus.ACTIVE)


def _second_case(world: World) -> str:
    with session_scope(world.engine) as session:
        ids = sorted(set(session.scalars(select(Assignment.case_id))))
        case = session.get(Case, ids[1])
        assert case is not None
        return case.slug


KILLS = {
    "claimed": _kill_when_claimed,
    "accepted": _kill_after_acceptance,
    "idle": _kill_when_idle,
}


@pytest.mark.slow
@pytest.mark.parametrize("point", sorted(KILLS))
def test_a_killed_worker_loses_and_repeats_nothing(world: World, point: str) -> None:
    wave_id, emails = _prepare(world)
    KILLS[point](world, wave_id)
    recorded_before = world.sg.admin.count()
    # No worker alive: reconciling now cannot race a live request.
    world.post_events()
    report = world.tick(
        datetime.now(UTC), grace=timedelta(seconds=0), queued_timeout=timedelta(seconds=0)
    )
    if point == "accepted":
        assert [(sent, left) for _, sent, left in report.reconciled] == [(100, 0)]
    world.start_worker()
    world.drive(wave_id)
    result = delivery(world.sg, wave_id, emails)
    result.assert_exactly_once()
    assert world.sg.admin.count() == SUPPORTERS >= recorded_before
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: SUPPORTERS}
