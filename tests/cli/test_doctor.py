"""`campaign doctor`: exit codes, --campaign and CAMPAIGN, output that reads at 80 columns."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from doctor_fixtures import GOOD, add_campaign, add_case, add_wave, rows, text_in
from sendgrid_fixtures import API_KEY, sendgrid_process, sg
from typer.testing import CliRunner

from sender.cli import app
from sender.cli.doctor import finding_lines, summary
from sender.core import db
from sender.core.clock import SystemClock
from sender.core.config import reset_settings
from sender.core.vocabulary import WaveStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.ops.doctor import Finding, Status

__all__ = ["sendgrid_process", "sg"]  # fixtures used by name

DAY = timedelta(days=1)


@pytest.fixture
def installation(env: pytest.MonkeyPatch, tmp_path: Path, sg: LocalSendGrid) -> str:
    """A well-kept installation on SQLite, its key checked against the local SendGrid;
    one campaign running now, with a case and a wave. Returns the database URL."""
    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    for name, value in GOOD.items():
        if value is not None:
            env.setenv(name.upper(), value)
    env.setenv("DATABASE_URL", url)
    env.setenv("SENDGRID_API_KEY", API_KEY)
    env.setenv("SENDGRID_API_HOST", sg.base_url)
    env.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", sg.public_key)
    reset_settings()
    engine = db.get_engine(url)
    db.upgrade(engine)
    now = SystemClock().now()  # the command reads the real clock
    campaign = add_campaign(engine, window_start=now - 10 * DAY, window_end=now + 20 * DAY)
    add_case(engine, campaign, "nassima", text_in("en", "es"))
    add_wave(engine, campaign, "case-email", WaveStatus.SCHEDULED, now + DAY, now + 2 * DAY)
    return url


def test_a_well_kept_installation_exits_0(runner: CliRunner, installation: str) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "warn  SendGrid host" in result.output  # the local server, not SendGrid's
    assert "ok    SendGrid key" in result.output
    assert (
        result.output.splitlines()[-1]
        == "0 fail, 1 warn, 10 ok: nothing blocks sending; read the warnings"
    )


def test_any_failure_exits_1_and_says_how_to_fix_it(
    runner: CliRunner, installation: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("SECRET_KEY", "replace-with-a-long-random-string")
    env.setenv("SENDGRID_API_KEY", "SG.revoked")
    reset_settings()
    before = rows(db.get_engine(installation))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "FAIL secrets" in said and "SECRET_KEY is a value published in this repository" in said
    assert "FAIL  SendGrid key" in result.output and "refused the key (401)" in result.output
    assert "fix: set SECRET_KEY to the output of `campaign secret`" in said
    assert result.output.splitlines()[-1].startswith("2 fail, 1 warn, ")
    assert rows(db.get_engine(installation)) == before


def test_the_embedded_defaults_fail(runner: CliRunner, env: pytest.MonkeyPatch) -> None:
    env.delenv("SECRET_KEY")
    reset_settings()
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    for check in ("secrets", "public URL", "inbound domain"):
        assert f"FAIL  {check}" in result.output
    assert "mail goes to the outbox folder" in result.output
    assert not Path("campaign.db").exists()  # the doctor creates no database


def test_campaign_option_and_environment_choose_the_campaign(
    runner: CliRunner, installation: str, env: pytest.MonkeyPatch
) -> None:
    add_campaign(db.get_engine(installation), "de-2026", languages=["de"])
    both = runner.invoke(app, ["doctor"])
    assert "w4r-2026: window" in both.output and "de-2026: window" in both.output
    named = runner.invoke(app, ["doctor", "--campaign", "de-2026"])
    assert "de-2026: cases" in named.output and "w4r-2026" not in named.output
    env.setenv("CAMPAIGN", "w4r-2026")
    from_env = runner.invoke(app, ["doctor"])
    assert from_env.exit_code == 0, from_env.output
    assert "de-2026" not in from_env.output
    unknown = runner.invoke(app, ["doctor", "--campaign", "nope"])
    assert unknown.exit_code == 1
    assert "no campaign 'nope' here (campaigns: de-2026, w4r-2026)" in unknown.output


def test_output_reads_at_80_columns(
    runner: CliRunner, installation: str, env: pytest.MonkeyPatch
) -> None:
    env.setenv("INBOUND_DOMAIN", "parse.example.org")
    env.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "not-a-key")
    reset_settings()
    result = runner.invoke(app, ["doctor"])  # CliRunner's console is 80 columns wide
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "…" not in result.output
    assert "FAIL  webhook key" in lines and "FAIL  inbound domain" in lines


def test_a_finding_wraps_under_its_label() -> None:
    finding = Finding(
        "secrets", Status.FAIL, "word " * 30, "set SECRET_KEY to a long random value " * 3
    )
    lines = [line.plain for line in finding_lines(finding, 40)]
    assert lines[0] == "FAIL  secrets"
    assert all(len(line) <= 40 for line in lines)
    assert all(line.startswith(" " * 7) for line in lines[1:])
    fixes = [line for line in lines if "fix:" in line]
    assert len(fixes) == 1 and fixes[0].startswith("       fix: set")
    assert "fix:" not in "".join(
        x.plain for x in finding_lines(Finding("a", Status.OK, "b", "c"), 40)
    )


def test_summary_counts_and_verdict() -> None:
    found = [
        Finding("a", Status.OK, ""),
        Finding("b", Status.WARN, ""),
        Finding("c", Status.OK, ""),
    ]
    assert summary(found) == "0 fail, 1 warn, 2 ok: nothing blocks sending; read the warnings"
    assert summary(found[:1]) == "0 fail, 0 warn, 1 ok: ready to send"
    failing = [*found, Finding("d", Status.FAIL, "")]
    assert summary(failing) == "1 fail, 1 warn, 2 ok: fix the FAIL items before sending"
