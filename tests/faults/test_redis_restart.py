"""Redis killed and restarted empty mid-wave: queued broker messages are lost, no mail is.

The tick finds the batches left QUEUED (their messages died with Redis) and
hands them out again once `queued_timeout` passes; a batch a worker was
sending when Redis went away (the rate-limit bucket lives in Redis) is
reconciled after the grace period. The server must still see everyone once.
"""

from __future__ import annotations

import pytest

from faults.fault_fixtures import (
    RestartableRedis,
    World,
    add_audience,
    batch_counts,
    declare_wave,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
)
from sender.core.vocabulary import BatchStatus, MessageStatus
from sender.devtools.waiting import wait_until

pytest_plugins = ("faults.fault_fixtures",)
SUPPORTERS = 2000


@pytest.mark.slow
def test_a_redis_restart_mid_wave_loses_and_repeats_nothing(
    world_own_redis: World, own_redis: RestartableRedis
) -> None:
    world = world_own_redis
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], SUPPORTERS)
    wave_id = declare_wave(world.engine, world.settings)
    launch_wave(world.engine, world.settings)
    worker = world.start_worker()
    world.tick()
    wait_until(lambda: world.sg.admin.count() >= 300, 40, "a few batches to be sent")
    own_redis.kill()
    left_queued = batch_counts(world.engine, wave_id).get(BatchStatus.QUEUED, 0)
    own_redis.start()
    assert left_queued > 0, "the wave finished before Redis went down"
    world.drive(wave_id, timeout=50)
    assert worker.alive(), "the worker should ride out the broker restart"
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: SUPPORTERS}
