from __future__ import annotations

from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign
from sending_fixtures import add_case, add_supporters
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner, Result

from sender.cli import app
from sender.cli.common import open_database
from sender.core.config import get_settings, reset_settings
from sender.core.db import session_scope
from sender.core.errors import InvalidInput, NotFound
from sender.core.models import Message, Wave

ROOT = Path(__file__).resolve().parents[2]
CREATE = [
    "wave",
    "create",
    "case-email",
    "--kind",
    "case_email",
    "--start",
    "2020-12-01T00:00:00Z",
    "--end",
    "2020-12-02T00:00:00Z",
    "--subject",
    "en=Write today, {{ first_name }}",
]


@pytest.fixture(autouse=True)
def _own_database(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Engines are cached by URL: an absolute path keeps each test's database its own.
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'campaign.db'}")
    reset_settings()
    add_2020_campaign(open_database())


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _fails(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0
    return result


def _seeded() -> Engine:
    settings = get_settings()
    engine = open_database(settings)
    case = add_case(engine, settings)
    add_supporters(engine, [case], ["ana@example.org", "ben@example.org"])
    add_supporters(engine, [case], ["kenji@example.org"], timezone="Asia/Tokyo")
    return engine


def _outbox() -> list[Path]:
    return sorted(p for p in Path("outbox").rglob("*") if p.is_file())


def _sent(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).where(Message.status == "sent")) or 0)


def test_plan_apply_twice_changes_nothing(env: pytest.MonkeyPatch, runner: CliRunner) -> None:
    plan = str(ROOT / "audiences" / "w4r-2020" / "plan.yaml")
    assert "created: case-email, human-rights-day-reminder, last-chance" in _ok(
        runner, "plan", "apply", plan
    )
    assert "unchanged: case-email, human-rights-day-reminder, last-chance" in _ok(
        runner, "plan", "apply", plan
    )
    listing = _ok(runner, "wave", "list")
    assert "human-rights-day-reminder" in listing and "draft" in listing


def test_a_bad_plan_is_refused_and_keeps_the_waves_there(
    env: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    _ok(runner, *CREATE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "waves:\n  - name: january\n    kind: last_chance\n"
        "    start: 2021-03-01T00:00:00Z\n    end: 2021-03-02T00:00:00Z\n"
        "    subjects: {en: Last chance}\n",
        encoding="utf-8",
    )
    result = _fails(runner, "plan", "apply", str(bad))
    assert isinstance(result.exception, InvalidInput)
    assert "outside the campaign window" in str(result.exception)
    listing = _ok(runner, "wave", "list")
    assert "case-email" in listing and "january" not in listing


def test_launch_tick_and_controls_send_each_supporter_once(
    env: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    engine = _seeded()
    _ok(runner, *CREATE)
    launched = _ok(runner, "wave", "launch", "case-email", "--now", "2020-12-01T00:00:00Z")
    assert "wave case-email launched" in launched
    assert "planned: 3 messages in 2 batches" in launched  # Tokyo's 09:00 is midnight UTC
    assert _sent(engine) == 1
    assert "already sending" in _ok(
        runner, "wave", "launch", "case-email", "--now", "2020-12-01T00:00:00Z"
    )
    _ok(runner, "tick", "--now", "2020-12-01T09:00:00Z")
    _ok(runner, "tick", "--now", "2020-12-01T09:30:00Z")
    assert _sent(engine) == 3 and len(_outbox()) == 3
    listing = _ok(runner, "wave", "list")
    assert "case-email" in listing and "done" in listing


def test_case_pause_stops_pending_batches(env: pytest.MonkeyPatch, runner: CliRunner) -> None:
    engine = _seeded()
    _ok(runner, *CREATE)
    _ok(runner, "wave", "launch", "case-email", "--now", "2020-12-01T00:00:00Z")
    assert "case nassima paused" in _ok(runner, "case", "pause", "nassima")
    _ok(runner, "tick", "--now", "2020-12-01T09:00:00Z")
    assert _sent(engine) == 1
    _ok(runner, "case", "resume", "nassima")
    _ok(runner, "tick", "--now", "2020-12-01T09:10:00Z")
    assert _sent(engine) == 3
    result = _fails(runner, "case", "pause", "nobody")
    assert isinstance(result.exception, NotFound)


def test_pause_resume_cancel_and_a_wave_outside_the_window(
    env: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    _ok(runner, *CREATE)
    assert "nothing changed" in _ok(runner, "wave", "pause", "case-email")  # still a draft
    _ok(runner, "wave", "launch", "case-email", "--now", "2020-11-30T00:00:00Z")
    assert "paused" in _ok(runner, "wave", "pause", "case-email")
    assert "resumed" in _ok(runner, "wave", "resume", "case-email", "--now", "2020-11-30T01:00:00Z")
    assert "cancelled" in _ok(runner, "wave", "cancel", "case-email")
    outside = [
        *CREATE[:2],
        "spring",
        *CREATE[3:5],
        "--start",
        "2021-04-01T00:00:00Z",
        "--end",
        "2021-04-02T00:00:00Z",
        *CREATE[9:],
    ]
    result = _fails(runner, *outside)
    assert "outside the campaign window" in str(result.exception)
    bad_time = _fails(runner, "tick", "--now", "yesterday")
    assert isinstance(bad_time.exception, InvalidInput)


def test_proofs_go_to_staff_only_and_record_nothing(
    env: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    engine = _seeded()
    _ok(runner, *CREATE)
    output = _ok(runner, "wave", "test", "case-email", "--to", "staff@example.org")
    assert "proof nassima/en → staff@example.org" in output
    files = _outbox()
    assert len(files) == 1 and "staff@example.org" in files[0].read_text(encoding="utf-8")
    refused = _fails(runner, "wave", "test", "case-email", "--to", "ana@example.org")
    assert "proofs go to staff only" in str(refused.exception)
    assert len(_outbox()) == 1
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        wave = session.scalars(select(Wave)).one()
        assert wave.status == "draft"


def test_run_drives_a_compressed_clock_to_the_end(
    env: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    engine = _seeded()
    _ok(runner, *CREATE)
    _ok(runner, "wave", "launch", "case-email", "--now", "2020-11-30T23:00:00Z")
    output = _ok(
        runner,
        "run",
        "--from",
        "2020-11-30T23:30:00Z",
        "--until",
        "2020-12-01T12:00:00Z",
        "--speed",
        "1000000",
        "--step",
        "1800",
    )
    assert "run finished" in output and "wave case-email done" in output
    assert _sent(engine) == 3
