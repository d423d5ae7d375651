"""What the provider answers: mixed failures, a refused batch, refused credentials.

- 20% of requests fail (429, 500, 503, hangs past the client timeout,
  connections dropped before and after the server recorded the mail): every
  supporter still gets the wave exactly once; batches whose answer was lost
  are settled from `processed` events before anything is resent.
- One address makes its batch answer 400: that batch fails with SendGrid's
  error text, visible in `campaign status`; the rest is sent; after the fix,
  `campaign wave retry-failed` sends the failed batch, once.
- The key is refused (401): the wave pauses with a clear reason, nothing is
  marked sent and the server recorded nothing; with the right key and
  `campaign wave resume`, everyone is mailed once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cli_tables import row
from typer.testing import CliRunner

from faults.fault_fixtures import (
    WAVE,
    World,
    add_audience,
    batch_counts,
    batch_errors,
    declare_wave,
    delivery,
    launch_wave,
    message_counts,
    open_campaign,
    wave_of,
)
from sender.cli import app
from sender.core.config import reset_settings
from sender.core.vocabulary import BatchStatus, MessageStatus, WaveStatus
from sender.devtools.waiting import wait_until

pytest_plugins = ("faults.fault_fixtures",)

FAULT_MIX = {  # 20% of requests in all
    "rate_limited": 0.04,
    "server_error": 0.03,
    "unavailable": 0.03,
    "hang": 0.03,
    "drop_before": 0.03,
    "drop_after": 0.02,
    "accept_then_hang": 0.02,
}


def _start(world: World, supporters: int) -> tuple[int, list[str]]:
    cases = open_campaign(world.engine, world.settings)
    emails = add_audience(world.engine, cases[:2], supporters)
    wave_id = declare_wave(world.engine, world.settings)
    launch_wave(world.engine, world.settings)
    return wave_id, emails


def _settled(world: World, wave_id: int) -> bool:
    counts = batch_counts(world.engine, wave_id)
    return not counts.get(BatchStatus.QUEUED) and not counts.get(BatchStatus.SENDING)


def _cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI in this process, on the world's database and Redis (ticks go to workers)."""
    monkeypatch.setenv("DATABASE_URL", world.database_url)
    monkeypatch.setenv("REDIS_URL", world.redis_url)
    monkeypatch.setenv("SECRET_KEY", "fault-test-secret")
    reset_settings()


@pytest.mark.slow
def test_a_fifth_of_requests_failing_still_delivers_everyone_once(world: World) -> None:
    supporters = 3000
    wave_id, emails = _start(world, supporters)
    plan = world.sg.admin.set_faults(
        rates=FAULT_MIX, seed=4, hang_seconds=6, rate_limit_reset_seconds=1
    )
    assert sum(plan["rates"].values()) == pytest.approx(0.2)
    world.start_workers(2)
    # A batch given back after four failed attempts returns 30 s later or
    # more: tick that far ahead so the test need not wait (the grace period
    # grows by as much, so requests in flight stay protected).
    world.drive(wave_id, timeout=50, ahead=timedelta(seconds=30))
    stats = world.sg.admin.stats()
    counters = stats["counters"]
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: supporters}
    faults = {k: v for k, v in counters.items() if k.startswith("fault_")}
    assert sum(faults.values()) >= 3, counters  # the faults really happened
    assert counters["requests"] > stats["accepted_requests"]


@pytest.mark.slow
def test_a_batch_refused_with_400_fails_visibly_and_retry_failed_sends_it_once(
    world: World, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    supporters = 1000
    wave_id, emails = _start(world, supporters)
    world.sg.admin.set_faults(forced=[{"status": 400, "email": "fan7@example.net"}])
    world.start_worker()
    world.tick()
    wait_until(lambda: _settled(world, wave_id), 40, "every batch to be answered")
    assert batch_counts(world.engine, wave_id) == {BatchStatus.SENT: 9, BatchStatus.FAILED: 1}
    [error] = batch_errors(world.engine, wave_id, BatchStatus.FAILED)
    assert "provider refused the batch (400)" in error
    failed = message_counts(world.engine, wave_id)[MessageStatus.FAILED]
    assert world.sg.admin.count() == supporters - failed  # nothing of that batch recorded
    assert world.sg.admin.count(email="fan7@example.net") == 0

    _cli_env(world, monkeypatch)
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "400" in status.output  # the failed batch, with the provider's reason
    listing = runner.invoke(app, ["wave", "list"], env={"COLUMNS": "200"})
    assert row(listing.output, WAVE)[-1] == str(failed)  # the failed column

    world.sg.admin.set_faults()  # the "fix"
    retried = runner.invoke(app, ["wave", "retry-failed", WAVE])
    assert retried.exit_code == 0, retried.output
    assert "1 failed batches queued again" in retried.output
    world.drive(wave_id)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: supporters}


@pytest.mark.slow
def test_a_refused_key_pauses_the_wave_and_resume_sends_everyone_once(
    world: World, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    supporters = 1000
    wave_id, emails = _start(world, supporters)
    wrong = world.start_worker(SENDGRID_API_KEY="SG.revoked-key")
    world.tick()
    wait_until(lambda: wave_of(world.engine, wave_id).status == WaveStatus.PAUSED, 40, "the pause")
    wait_until(lambda: _settled(world, wave_id), 30, "the held batches to go back")
    wave = wave_of(world.engine, wave_id)
    assert wave.status_reason is not None
    assert "refused our credentials (401" in wave.status_reason
    assert f"campaign wave resume {WAVE}" in wave.status_reason
    assert world.sg.admin.count() == 0
    assert world.sg.admin.stats()["counters"].get("status_401", 0) >= 1
    assert message_counts(world.engine, wave_id) == {MessageStatus.PLANNED: supporters}
    assert batch_counts(world.engine, wave_id) == {BatchStatus.PENDING: 10}

    wrong.kill()  # the fix: workers restarted with the right key
    world.start_worker()
    _cli_env(world, monkeypatch)
    resumed = runner.invoke(app, ["wave", "resume", WAVE])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed" in resumed.output
    world.drive(wave_id)
    delivery(world.sg, wave_id, emails).assert_exactly_once()
    assert message_counts(world.engine, wave_id) == {MessageStatus.SENT: supporters}
