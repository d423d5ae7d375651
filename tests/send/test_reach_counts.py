"""The launch confirmation's counts: started once, stored as wave_reach counts, fresh a while."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine, func, select

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import ReachCount, Wave
from sender.core.vocabulary import ReachState, WaveStatus
from sender.send import reach_counts
from sender.send.reach import wave_reach
from sender.send.reach_counts import (
    MAX_AGE,
    STUCK_AFTER,
    count_reach,
    is_fresh,
    read_count,
    start_count,
    wave_fingerprint,
)

SETTINGS = Settings(secret_key="test")
CAP = timedelta(hours=SETTINGS.frequency_cap_hours)
NOW = DEC1 - timedelta(days=1)


def a_draft(engine: Engine) -> int:
    case = add_case(engine, SETTINGS)
    add_supporters(engine, [case], ["ana@x.org", "ben@x.org", "cai@x.org"])
    add_supporters(engine, [case], ["dee@x.org"], consent=False)
    return add_wave(engine, SETTINGS, status=WaveStatus.DRAFT)


def rows(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(ReachCount)) or 0)


def test_a_count_stores_what_wave_reach_counts(any_engine: Engine) -> None:
    wave_id = a_draft(any_engine)
    count, started = start_count(any_engine, wave_id, NOW, CAP)
    assert started and count.state is ReachState.COUNTING and count.reach is None
    done = count_reach(any_engine, wave_id, count.attempt, CAP)
    assert done is not None and done.state is ReachState.DONE and done.counted_for == NOW
    assert done.reach == wave_reach(any_engine, wave_id, NOW, CAP)
    assert done.reach is not None and done.reach.total == 3
    assert done.reach.excluded() == {"no_consent": 1}


def test_a_second_start_while_counting_starts_nothing(any_engine: Engine) -> None:
    wave_id = a_draft(any_engine)
    first, started = start_count(any_engine, wave_id, NOW, CAP)
    again, restarted = start_count(any_engine, wave_id, NOW + timedelta(seconds=5), CAP, again=True)
    assert started and not restarted and again.attempt == first.attempt
    assert rows(any_engine) == 1


def racing_starts(engine: Engine, wave_id: int) -> list[bool]:
    gate = threading.Barrier(6)

    def start() -> bool:
        gate.wait(10)  # every "gunicorn worker" reads the same row (or none), then claims
        return start_count(engine, wave_id, NOW, CAP, again=True)[1]

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(lambda _: start(), range(6)))


def test_workers_starting_the_first_count_at_once_start_one(pg_engine: Engine) -> None:
    wave_id = a_draft(pg_engine)
    assert racing_starts(pg_engine, wave_id).count(True) == 1
    assert attempt_of(pg_engine, wave_id) == 1 and rows(pg_engine) == 1


def test_workers_counting_again_at_once_start_one_count(pg_engine: Engine) -> None:
    wave_id = a_draft(pg_engine)
    first, _ = start_count(pg_engine, wave_id, NOW, CAP)
    count_reach(pg_engine, wave_id, first.attempt, CAP)
    assert racing_starts(pg_engine, wave_id).count(True) == 1
    assert attempt_of(pg_engine, wave_id) == first.attempt + 1


def attempt_of(engine: Engine, wave_id: int) -> int:
    found = read_count(engine, wave_id)
    assert found is not None
    return found.attempt


def test_a_fresh_count_is_kept_a_stale_or_edited_one_counted_again(any_engine: Engine) -> None:
    wave_id = a_draft(any_engine)
    first, _ = start_count(any_engine, wave_id, NOW, CAP)
    count_reach(any_engine, wave_id, first.attempt, CAP)
    kept, started = start_count(any_engine, wave_id, NOW + MAX_AGE - timedelta(seconds=1), CAP)
    assert not started and kept.state is ReachState.DONE
    stale, started = start_count(any_engine, wave_id, NOW + MAX_AGE, CAP)
    assert started and stale.attempt == first.attempt + 1
    count_reach(any_engine, wave_id, stale.attempt, CAP)
    with session_scope(any_engine) as session:
        session.get_one(Wave, wave_id).audience = "no_action_yet"
    edited, started = start_count(any_engine, wave_id, NOW + MAX_AGE + timedelta(seconds=1), CAP)
    assert started and edited.attempt == first.attempt + 2
    assert rows(any_engine) == 1


def test_count_again_replaces_a_fresh_count(any_engine: Engine) -> None:
    wave_id = a_draft(any_engine)
    first, _ = start_count(any_engine, wave_id, NOW, CAP)
    count_reach(any_engine, wave_id, first.attempt, CAP)
    again, started = start_count(any_engine, wave_id, NOW, CAP, again=True)
    assert started and again.state is ReachState.COUNTING


def test_a_replaced_attempt_writes_nothing(any_engine: Engine) -> None:
    wave_id = a_draft(any_engine)
    lost, _ = start_count(any_engine, wave_id, NOW, CAP)
    newer, started = start_count(any_engine, wave_id, NOW + STUCK_AFTER, CAP)  # lost its worker
    assert started and newer.attempt == lost.attempt + 1
    late = count_reach(any_engine, wave_id, lost.attempt, CAP)
    assert late is not None and late.state is ReachState.COUNTING and late.attempt == newer.attempt


def test_a_failed_count_keeps_its_error(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    wave_id = a_draft(any_engine)

    def broken(*_args: object) -> None:
        raise RuntimeError("canceling statement due to statement timeout")

    monkeypatch.setattr(reach_counts, "wave_reach", broken)
    count, _ = start_count(any_engine, wave_id, NOW, CAP)
    failed = count_reach(any_engine, wave_id, count.attempt, CAP)
    assert failed is not None and failed.state is ReachState.FAILED and failed.reach is None
    assert failed.error == "canceling statement due to statement timeout"
    assert is_fresh(failed, wave_fingerprint(any_engine, wave_id, CAP), NOW)


def test_the_fingerprint_follows_the_wave_and_the_cap(pg_engine: Engine) -> None:
    wave_id = a_draft(pg_engine)
    before = wave_fingerprint(pg_engine, wave_id, CAP)
    assert wave_fingerprint(pg_engine, wave_id, CAP) == before
    assert wave_fingerprint(pg_engine, wave_id, CAP * 2) != before
    with session_scope(pg_engine) as session:
        session.get_one(Wave, wave_id).subject_test = {"share": 0.2}
    assert wave_fingerprint(pg_engine, wave_id, CAP) != before
    assert read_count(pg_engine, wave_id) is None
