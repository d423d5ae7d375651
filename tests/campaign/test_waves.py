from __future__ import annotations

from datetime import timedelta

import pytest
from sending_fixtures import DEC1, add_wave, wave_status
from sqlalchemy import Engine

from sender.campaign.waves import LaunchRefused, cancel, launch, pause, resume
from sender.core.config import Settings
from sender.core.vocabulary import WaveStatus

SETTINGS = Settings(secret_key="test")


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
    assert "paused" in pause(any_engine, "case-email")
    assert wave_status(any_engine, wave)[0] == WaveStatus.PAUSED
    assert "resumed (scheduled)" in resume(any_engine, "case-email", DEC1)
    assert "cancelled" in cancel(any_engine, "case-email")
    assert "nothing changed" in resume(any_engine, "case-email", DEC1)
    assert wave_status(any_engine, wave)[0] == WaveStatus.CANCELLED
