from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sending_fixtures import DEC1, add_wave, wave_status
from sqlalchemy import Engine

from sender.campaign.waves import LaunchRefused, cancel, launch, pause, resume
from sender.core.config import Settings
from sender.core.vocabulary import WaveStatus
from sender.send.slots import slot_for

SETTINGS = Settings(secret_key="test")
MORNING = (time(9), time(11))


# --- slots --------------------------------------------------------------------


def test_slot_is_the_local_window_start_after_the_wave_start() -> None:
    slot = slot_for("Europe/Madrid", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert slot.send_after == datetime(2020, 12, 1, 8, tzinfo=UTC)  # 09:00 CET
    assert slot.send_before == datetime(2020, 12, 1, 10, tzinfo=UTC)
    assert slot.slot_at == slot.send_after


def test_a_zone_already_inside_its_window_at_the_start_begins_at_the_start() -> None:
    slot = slot_for("Asia/Tokyo", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert slot.send_after == DEC1  # 09:00 in Tokyo is midnight UTC
    late_start = DEC1 + timedelta(minutes=30)
    tokyo = slot_for("Asia/Tokyo", late_start, DEC1 + timedelta(days=2), MORNING)
    assert tokyo is not None
    assert (tokyo.slot_at, tokyo.send_after) == (DEC1, late_start)


def test_a_window_already_over_at_the_start_moves_to_the_next_day() -> None:
    slot = slot_for(
        "America/Los_Angeles", DEC1 + timedelta(hours=20), DEC1 + timedelta(days=3), MORNING
    )
    assert slot is not None
    assert slot.send_after == datetime(2020, 12, 2, 17, tzinfo=UTC)


def test_half_hour_zones_floor_the_slot_but_never_send_early() -> None:
    slot = slot_for("Asia/Kolkata", DEC1, DEC1 + timedelta(days=2), MORNING)
    assert slot is not None
    assert slot.send_after == datetime(2020, 12, 1, 3, 30, tzinfo=UTC)
    assert slot.slot_at == datetime(2020, 12, 1, 3, tzinfo=UTC)
    assert slot.send_before == datetime(2020, 12, 1, 5, 30, tzinfo=UTC)


def test_daylight_saving_change_moves_the_utc_slot() -> None:
    # New York leaves summer time on 1 November 2020: 09:00 is 13:00 UTC before, 14:00 after.
    before = slot_for(
        "America/New_York",
        datetime(2020, 10, 31, tzinfo=UTC),
        datetime(2020, 11, 3, tzinfo=UTC),
        MORNING,
    )
    after = slot_for(
        "America/New_York",
        datetime(2020, 10, 31, 16, tzinfo=UTC),
        datetime(2020, 11, 3, tzinfo=UTC),
        MORNING,
    )
    assert before is not None and after is not None
    assert before.send_after == datetime(2020, 10, 31, 13, tzinfo=UTC)
    assert after.send_after == datetime(2020, 11, 1, 14, tzinfo=UTC)


def test_a_whole_day_window_puts_every_zone_in_one_slot() -> None:
    whole = (time(0), time(0))
    slots = {
        slot_for(zone, DEC1, DEC1 + timedelta(days=1), whole)
        for zone in ("UTC", "Asia/Tokyo", "America/Lima", "Asia/Kolkata")
    }
    assert {(s.slot_at, s.send_after) for s in slots if s} == {(DEC1, DEC1)}


def test_no_slot_when_no_window_opens_before_the_end() -> None:
    assert slot_for("America/Los_Angeles", DEC1, DEC1 + timedelta(hours=6), MORNING) is None


# --- lifecycle --------------------------------------------------------------------


def _ok(*_: object) -> list[str]:
    return []


def test_launch_refuses_on_template_problems_and_a_second_launch_changes_nothing(
    any_engine: Engine,
) -> None:
    wave = add_wave(any_engine, SETTINGS, status=WaveStatus.DRAFT)
    with pytest.raises(LaunchRefused, match=r"case_email\.html line 3"):
        launch(
            any_engine, SETTINGS, "case-email", DEC1, check=lambda *_: ["case_email.html line 3"]
        )
    assert wave_status(any_engine, wave)[0] == WaveStatus.DRAFT
    assert "launched" in launch(any_engine, SETTINGS, "case-email", DEC1, check=_ok)
    assert "already scheduled" in launch(any_engine, SETTINGS, "case-email", DEC1, check=_ok)


def test_launching_after_the_end_marks_the_wave_missed(any_engine: Engine) -> None:
    wave = add_wave(any_engine, SETTINGS, status=WaveStatus.DRAFT)
    with pytest.raises(LaunchRefused, match="passed before it could start"):
        launch(any_engine, SETTINGS, "case-email", DEC1 + timedelta(days=5), check=_ok)
    assert wave_status(any_engine, wave)[0] == WaveStatus.MISSED


def test_pause_resume_and_cancel(any_engine: Engine) -> None:
    wave = add_wave(any_engine, SETTINGS)
    assert "paused" in pause(any_engine, SETTINGS, "case-email")
    assert wave_status(any_engine, wave)[0] == WaveStatus.PAUSED
    assert "resumed (scheduled)" in resume(any_engine, SETTINGS, "case-email", DEC1)
    assert "cancelled" in cancel(any_engine, SETTINGS, "case-email")
    assert "nothing changed" in resume(any_engine, SETTINGS, "case-email", DEC1)
    assert wave_status(any_engine, wave)[0] == WaveStatus.CANCELLED
