from __future__ import annotations

import pytest

from sender.core.config import Settings
from sender.core.vocabulary import RunMode


def test_production_is_the_mode_unless_one_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMPAIGN_MODE", raising=False)
    assert Settings(_env_file=None).campaign_mode == RunMode.PRODUCTION  # type: ignore[call-arg]
    assert Settings(_env_file=None).is_production  # type: ignore[call-arg]
    monkeypatch.setenv("CAMPAIGN_MODE", "demo")
    assert Settings(_env_file=None).campaign_mode == RunMode.DEMO  # type: ignore[call-arg]


def test_an_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("CAMPAIGN_MODE", "relaxed")
    with pytest.raises(ValidationError, match="campaign_mode"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_suite_runs_in_dev_mode() -> None:
    assert Settings(_env_file=None).campaign_mode == RunMode.DEV  # type: ignore[call-arg]
