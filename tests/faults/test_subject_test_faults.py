"""A subject test's remainder through real workers, with a worker SIGKILLed and Redis
restarted empty while it is sent: everyone still gets the wave once, and the
remainder only ever carries the winner's subject (counted by the local server)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from faults.fault_fixtures import (
    SUBJECTS,
    WAVE,
    RestartableRedis,
    World,
    add_audience,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
    recorded,
)
from sender.campaign.plan_file import wave_spec
from sender.campaign.subject_tests import pick
from sender.campaign.waves import create_wave
from sender.core.db import session_scope
from sender.core.models import SubjectTest as SubjectTestRow
from sender.core.models import Wave
from sender.core.vocabulary import MessageStatus, SubjectState
from sender.devtools.waiting import wait_until
from sender.staff.audit import Actor
from sender.staff.roles import Role

pytest_plugins = ("faults.fault_fixtures",)


def _staff(name: str) -> Actor:
    return Actor(name, Role.CAMPAIGNER, "test")


SUPPORTERS = 2000
TESTED = SUPPORTERS // 5
B_SUBJECTS = {"en": "B: {{ first_name }}, write today", "fr": "B: {{ first_name }}, écrivez"}


def _declare(world: World, wait_hours: float = 4) -> int:
    now = datetime.now(UTC)
    spec = wave_spec(
        name=WAVE,
        kind="case_email",
        start=now - timedelta(minutes=5),
        end=now + timedelta(days=1),
        subjects={lang: SUBJECTS[lang] for lang in ("en", "fr")},
        window="00:00-24:00",
        subject_test={
            "share": 0.2,
            "seed": 3,
            "wait_hours": wait_hours,
            "min_sends": 50,
            "variants": [{"name": "A"}, {"name": "B", "subjects": B_SUBJECTS}],
        },
    )
    create_wave(world.engine, spec)
    with session_scope(world.engine) as session:
        return int(session.scalars(select(Wave.id).where(Wave.name == WAVE)).one())


@pytest.mark.slow
def test_a_killed_worker_and_a_redis_restart_during_the_remainder_send_everyone_once(
    world_own_redis: World, own_redis: RestartableRedis
) -> None:
    world = world_own_redis
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], SUPPORTERS)
    wave_id = _declare(world)
    launch_wave(world.engine, world.settings)
    first = world.start_worker()
    world.tick()
    wait_until(lambda: world.sg.admin.count() >= TESTED, 40, "the test share to be sent")
    assert world.sg.admin.count() == TESTED  # nothing more before the decision
    pick(world.engine, WAVE, "B", datetime.now(UTC), _staff("staff@example.org"))
    world.tick()  # plans the remainder with B and hands out its batches
    wait_until(lambda: world.sg.admin.count() > TESTED, 40, "the remainder to start")
    first.kill()
    own_redis.kill()
    own_redis.start()
    world.post_events()
    world.tick(datetime.now(UTC), grace=timedelta(seconds=0), queued_timeout=timedelta(seconds=0))
    world.start_worker()
    world.drive(wave_id, timeout=60)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: SUPPORTERS}
    # Half the test share had B's subject; every one of the remainder did.
    assert _b_subjects(world, wave_id) == {True: TESTED // 2 + SUPPORTERS - TESTED, False: 200}


def _b_subjects(world: World, wave_id: int) -> dict[bool, int]:
    """How many of the wave's mails the server recorded with B's subject, and without."""
    return dict(
        Counter(
            str(row["subject"]).startswith("B: ")
            for row in recorded(world.sg)
            if str((row.get("custom_args") or {}).get("wave_id")) == str(wave_id)
        )
    )


def _test_state(world: World, wave_id: int) -> SubjectTestRow | None:
    with session_scope(world.engine) as session:
        row = session.get(SubjectTestRow, wave_id)
        if row is not None:
            session.expunge(row)
        return row


@pytest.mark.slow
def test_people_clicking_more_on_b_in_the_local_servers_events_make_b_win(world: World) -> None:
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], SUPPORTERS)
    wave_id = _declare(world, wait_hours=0.02)  # one minute
    launch_wave(world.engine, world.settings)
    world.start_worker()
    world.tick()
    wait_until(lambda: world.sg.admin.count() >= TESTED, 40, "the test share to be sent")
    answer = world.sg.admin.simulate(
        after_id=0,
        events_url=f"{world.web_url}/webhooks/sendgrid/events",
        seed=5,
        open_rate=1.0,
        machine_open_rate=0.5,
        click_rate=0.1,
        subject_click_rates={"B: ": 0.6},  # the planted better subject
    )
    assert all(status == 200 for status in answer["statuses"]), answer

    def decided() -> bool:
        world.tick()
        state = _test_state(world, wave_id)
        return state is not None and state.state == SubjectState.FINISHED

    wait_until(decided, 120, "the rule to decide after its wait", step=2.0)
    state = _test_state(world, wave_id)
    assert state is not None and (state.winner, state.decided_by) == ("B", "rule")
    assert state.reason is not None and state.reason.startswith("B beat every other variant")
    world.drive(wave_id, timeout=60)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert _b_subjects(world, wave_id) == {True: TESTED // 2 + SUPPORTERS - TESTED, False: 200}
