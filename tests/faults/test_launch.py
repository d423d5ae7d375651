"""Launching twice, and waves outside the campaign window.

Two `campaign wave launch` processes race for the same wave while two
workers run the ticks they enqueue: the wave is planned once and every
supporter is mailed once. A wave reaching outside the campaign window is
refused with the dates, by `wave create` and by `plan apply`, and nothing
else is changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from faults.fault_fixtures import (
    ROOT,
    WAVE,
    World,
    add_audience,
    declare_wave,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
)
from sender.cli import app
from sender.core.config import reset_settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput
from sender.core.models import Batch, Wave
from sender.core.vocabulary import MessageStatus, WaveStatus

pytest_plugins = ("faults.fault_fixtures",)
SUPPORTERS = 1000
CAMPAIGN = Path(sys.executable).with_name("campaign")


@pytest.mark.slow
def test_a_wave_launched_twice_concurrently_is_sent_once(world: World) -> None:
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], SUPPORTERS)
    wave_id = declare_wave(world.engine, world.settings)
    world.start_workers(2)
    launches = [
        subprocess.Popen(
            [str(CAMPAIGN), "wave", "launch", WAVE],
            cwd=ROOT,
            env=world.worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in launches]
    assert [p.returncode for p in launches] == [0, 0], outputs
    launched = [o for o in outputs if f"wave {WAVE} launched\n" in o]
    assert len(launched) == 1, outputs  # the other says it was launched meanwhile / already
    # A third launch, after the fact, changes nothing either.
    assert "nothing changed" in launch_wave(world.engine, world.settings)
    world.drive(wave_id)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: SUPPORTERS}
    with session_scope(world.engine) as session:
        planned = session.scalar(select(func.sum(Batch.size)).where(Batch.wave_id == wave_id))
    assert planned == SUPPORTERS  # planned once: no second set of batches


def _write_plan(path: Path, waves: list[tuple[str, str, str]]) -> Path:
    lines = ["campaign: w4r-2020", "waves:"]
    for name, start, end in waves:
        lines += [
            f"  - name: {name}",
            "    kind: case_email",
            f"    start: {start}",
            f"    end: {end}",
            "    subjects:",
            '      en: "{{ first_name }}, one letter can change a life"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _wave_names(engine: Engine) -> dict[str, str]:
    with session_scope(engine) as session:
        return {w.name: w.status for w in session.scalars(select(Wave))}


def test_a_wave_outside_the_campaign_window_is_refused(
    pg_url: str,
    pg_engine: Engine,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("SECRET_KEY", "test-secret")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    reset_settings()
    add_2020_campaign(pg_engine)
    good = runner.invoke(
        app,
        ["wave", "create", "december", "--kind", "case_email", "--start", "2020-12-01",
         "--end", "2020-12-03", "--subject", "en=Write now"],
    )  # fmt: skip
    assert good.exit_code == 0, good.output

    late = runner.invoke(
        app,
        ["wave", "create", "march", "--kind", "case_email", "--start", "2021-03-01",
         "--end", "2021-03-03", "--subject", "en=Too late"],
    )  # fmt: skip
    assert isinstance(late.exception, InvalidInput)
    assert "'march'" in str(late.exception)
    assert "outside the campaign window 2020-10-01–2021-02-01" in str(late.exception)

    # A plan with one good wave and one that starts before the window: all refused.
    plan = _write_plan(
        tmp_path / "plan.yaml",
        [
            ("new-year", "2021-01-05T00:00:00Z", "2021-01-07T00:00:00Z"),
            ("september", "2020-09-20T00:00:00Z", "2020-09-22T00:00:00Z"),
        ],
    )
    refused = runner.invoke(app, ["plan", "apply", str(plan)])
    assert isinstance(refused.exception, InvalidInput)
    assert "'september'" in str(refused.exception)
    # The installed command prints it on one line and exits 2.
    shell = subprocess.run(
        [str(CAMPAIGN), "plan", "apply", str(plan)],
        env={**os.environ, "DATABASE_URL": pg_url, "SECRET_KEY": "test-secret"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 2
    assert "error: wave 'september' runs 2020-09-20 00:00–2020-09-22 00:00 UTC, outside" in (
        shell.stdout.replace("\n", "")
    )
    # Nothing half-applied, nothing valid lost.
    assert _wave_names(pg_engine) == {"december": WaveStatus.DRAFT}
    reset_settings()
