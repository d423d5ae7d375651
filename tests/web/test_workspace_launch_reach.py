"""The launch confirmation answers at once; who the wave reaches is counted in the background."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from wave_workspace_fixtures import (
    changes,
    client_as,
    counted_launch_page,
    post,
    reach_state,
    seed_assigned,
    wave_status,
)
from web_fixtures import csrf_token

from sender.core.clock import SystemClock
from sender.core.db import session_scope
from sender.core.models import ReachCount, Wave
from sender.core.vocabulary import ReachState, WaveStatus
from sender.devtools.waiting import wait_until
from sender.send import reach_counts
from sender.send.reach import wave_reach
from sender.send.reach_counts import MAX_AGE, read_count
from sender.staff.roles import Role
from sender.web.workspace import reach_panel

CAP = timedelta(hours=72)


class Held:
    """count_reach, held until released, counting how often a count was started."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.calls = 0
        real = reach_panel.count_reach

        def held(*args: Any) -> object:
            self.calls += 1
            self.release.wait(30)
            return real(*args)

        monkeypatch.setattr(reach_panel, "count_reach", held)


def launch_path(wave_id: int) -> str:
    return f"/workspace/waves/{wave_id}/launch"


def attempt(engine: Engine, wave_id: int) -> int:
    found = read_count(engine, wave_id)
    assert found is not None
    return found.attempt


def test_the_page_answers_with_a_panel_and_counts_in_the_background(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_assigned(pg_engine)
    held = Held(monkeypatch)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    page = client.get(launch_path(seeded.draft_wave_id)).get_data(as_text=True)
    assert 'data-state="counting"' in page and 'role="status"' in page
    assert f'hx-get="{launch_path(seeded.draft_wave_id)}/reach"' in page
    assert f'href="{launch_path(seeded.draft_wave_id)}"' in page  # without JavaScript: a link
    assert "Launch now" not in page and "Who will get it" not in page and "Count again" not in page
    held.release.set()
    wait_until(lambda: reach_state(client, seeded.draft_wave_id) == "done", 30.0, "the count")
    fragment = client.get(f"{launch_path(seeded.draft_wave_id)}/reach").get_data(as_text=True)
    assert "<html" not in fragment and "hx-get" not in fragment  # polling stops
    assert "Launch now" in fragment and "Count again" in fragment and "Counted at " in fragment
    found = read_count(pg_engine, seeded.draft_wave_id)
    assert found is not None and found.reach is not None
    assert found.reach == wave_reach(pg_engine, seeded.draft_wave_id, found.counted_for, CAP)
    assert f"Who will get it: {found.reach.total} supporters" in fragment
    assert held.calls == 1 and changes(pg_engine) == []  # reading and counting are no change


def test_a_reload_during_the_count_starts_no_second_one(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_assigned(pg_engine)
    held = Held(monkeypatch)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    for _ in range(3):
        assert 'data-state="counting"' in client.get(launch_path(seeded.draft_wave_id)).text
        assert reach_state(client, seeded.draft_wave_id) == "counting"
    assert post(client, f"{launch_path(seeded.draft_wave_id)}/count") == 303
    assert held.calls == 1 and attempt(pg_engine, seeded.draft_wave_id) == 1
    held.release.set()
    wait_until(lambda: reach_state(client, seeded.draft_wave_id) == "done", 30.0, "the count")


def test_a_stale_or_edited_wave_is_counted_again(any_engine: Engine) -> None:
    seeded = seed_assigned(any_engine)
    client = client_as(any_engine, Role.CAMPAIGNER)
    wave_id = seeded.draft_wave_id
    assert "Who will get it: 6 supporters" in " ".join(counted_launch_page(client, wave_id).split())
    assert "Launch now" in client.get(launch_path(wave_id)).text  # fresh: shown, not counted
    assert attempt(any_engine, wave_id) == 1
    with session_scope(any_engine) as session:
        session.execute(
            update(ReachCount).values(counted_for=SystemClock().now() - MAX_AGE)  # a minute on
        )
    counted_launch_page(client, wave_id)
    assert attempt(any_engine, wave_id) == 2
    with session_scope(any_engine) as session:
        session.get_one(Wave, wave_id).audience = "no_action_yet"
    counted_launch_page(client, wave_id)
    assert attempt(any_engine, wave_id) == 3


def test_count_again_replaces_the_figures(pg_engine: Engine) -> None:
    seeded = seed_assigned(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    counted_launch_page(client, seeded.draft_wave_id)
    response = client.post(
        f"{launch_path(seeded.draft_wave_id)}/count",
        data={"csrf_token": csrf_token(client, "/dashboard/account")},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(launch_path(seeded.draft_wave_id))
    counted_launch_page(client, seeded.draft_wave_id)
    assert attempt(pg_engine, seeded.draft_wave_id) == 2
    assert changes(pg_engine) == []


def test_a_failed_count_shows_its_error_and_count_again(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_assigned(pg_engine)

    def broken(*_args: object) -> None:
        raise RuntimeError("canceling statement due to statement timeout")

    monkeypatch.setattr(reach_counts, "wave_reach", broken)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    page = counted_launch_page(client, seeded.draft_wave_id)
    assert 'data-state="failed"' in page and 'role="alert"' in page
    assert "The count stopped: canceling statement due to statement timeout" in page
    assert "Count again" in page and "Launch now" not in page
    found = read_count(pg_engine, seeded.draft_wave_id)
    assert found is not None and found.state is ReachState.FAILED


def test_a_viewer_sees_the_figures_without_controls(pg_engine: Engine) -> None:
    seeded = seed_assigned(pg_engine)
    client = client_as(pg_engine, Role.VIEWER)
    page = counted_launch_page(client, seeded.draft_wave_id)
    assert "Who will get it: 6 supporters" in " ".join(page.split())
    assert "Count again" not in page and "Launch now" not in page
    assert post(client, f"{launch_path(seeded.draft_wave_id)}/count") == 403
    assert post(client, launch_path(seeded.draft_wave_id)) == 403
    assert attempt(pg_engine, seeded.draft_wave_id) == 1
    assert wave_status(pg_engine, seeded.draft_wave_id) == WaveStatus.DRAFT


def test_the_count_of_a_missing_wave_is_not_found(pg_engine: Engine) -> None:
    seed_assigned(pg_engine)
    client = client_as(pg_engine, Role.CAMPAIGNER)
    assert client.get("/workspace/waves/999999/launch/reach").status_code == 404
    assert post(client, "/workspace/waves/999999/launch/count") == 404
