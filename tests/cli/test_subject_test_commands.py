"""`wave create --variant`, `wave pick`, `report --by variant` and `status` on a subject test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine
from staff_cli_fixtures import CAMPAIGNER, VIEWER, add_one_per_role, audit_rows
from subject_test_fixtures import audience, recipients, signal
from typer.testing import CliRunner

from sender.cli import app
from sender.cli.common import console
from sender.core import db
from sender.core.config import Settings, reset_settings
from sender.core.db import session_scope
from sender.core.models import SubjectTest, Wave
from sender.core.vocabulary import ActionKind, SubjectState

SETTINGS = Settings(secret_key="test")


@pytest.fixture
def campaign_db(env: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'campaign.db'}"
    engine = db.get_engine(url)
    db.upgrade(engine)
    add_2020_campaign(engine)
    audience(engine, SETTINGS, per_stratum=30)
    env.setenv("DATABASE_URL", url)
    env.setenv("CAMPAIGN_MODE", "dev")
    reset_settings()
    return engine


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_subject_test_from_the_command_line_to_the_report(
    campaign_db: Engine, runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    env.setattr(console, "width", 200)
    _ok(
        runner,
        "wave", "create", "case-email", "--kind", "case_email",
        "--start", "2020-12-01T00:00:00Z", "--end", "2020-12-04T00:00:00Z",
        "--subject", "en=Stand with Nassima", "--subject", "es=Con Nassima",
        "--variant", "A:en=A: Nassima needs you", "--variant", "A:es=A: Nassima te necesita",
        "--variant", "B:en=B: Nassima needs you", "--variant", "B:es=B: Nassima te necesita",
        "--test-share", "0.5", "--test-min-sends", "5", "--test-confidence", "0.9",
    )  # fmt: skip
    proofs = _ok(runner, "wave", "test", "case-email", "--to", "staff@example.org")
    assert "proof nassima/es/B → staff@example.org" in proofs
    assert "8 variants sent to staff" in proofs  # 2 cases × 2 languages × 2 variants
    _ok(runner, "wave", "launch", "case-email", "--now", "2020-11-30T00:00:00Z")
    _ok(runner, "tick", "--now", "2020-12-01T09:00:00Z")
    with session_scope(campaign_db) as session:
        (wave,) = session.query(Wave).all()
        wave_id = wave.id
        assert wave.subject_test["confidence"] == 0.9
    share = recipients(campaign_db, wave_id)
    assert len(share) == 60  # half of 4 strata of 30
    status = _ok(runner, "status")
    assert (
        "subject test A/B on human_clicks (A 0/30, B 0/30): decides at 2020-12-01 13:00" in status
    )
    b_side = [s for s, (v, *_) in share.items() if v == "B"]
    signal(campaign_db, wave_id, b_side[:5], ActionKind.CLICKED)
    signal(campaign_db, wave_id, b_side, ActionKind.OPENED_MACHINE)
    refused = runner.invoke(app, ["wave", "pick", "case-email", "C"])
    assert refused.exit_code != 0 and "has no variant 'C'" in str(refused.exception)
    with session_scope(campaign_db) as session:
        assert session.get_one(SubjectTest, wave_id).state == SubjectState.TESTING
    add_one_per_role(campaign_db)
    pick_b = ("wave", "pick", "case-email", "B", "--now", "2020-12-01T10:00:00Z")
    viewer = runner.invoke(app, ["--as", VIEWER, *pick_b])
    assert viewer.exit_code != 0 and "needs the campaigner role" in str(viewer.exception)
    with session_scope(campaign_db) as session:
        assert session.get_one(SubjectTest, wave_id).state == SubjectState.TESTING
    picks = audit_rows(campaign_db, "wave.pick")
    assert picks[0].actor.startswith("os:")  # the shell user, without --as
    assert [(r.outcome, r.detail) for r in picks] == [
        ("failed", "wave case-email has no variant 'C' (A, B)"),
        ("refused", "wave.pick needs the campaigner role; viewer@example.org is viewer"),
    ]
    _ok(runner, "--as", CAMPAIGNER, *pick_b)
    assert [(r.actor, r.outcome) for r in audit_rows(campaign_db, "wave.pick")][-1] == (
        CAMPAIGNER,
        "done",
    )
    _ok(runner, "tick", "--now", "2020-12-01T10:30:00Z")
    _ok(runner, "tick", "--now", "2020-12-02T09:00:00Z")
    assert len(recipients(campaign_db, wave_id)) == 120
    table = _ok(runner, "report", "--by", "variant")
    assert "wave case-email by variant" in table and "B (winner)" in table
    data = json.loads(_ok(runner, "report", "--by", "variant", "--format", "json"))
    (test,) = data
    assert (test["wave"], test["state"], test["winner"]) == ("case-email", "finished", "B")
    rows = {(r["variant"], r["part"]): r for r in test["rows"]}
    assert rows[("B", "test")]["human_clicks"] == 5
    assert rows[("B", "test")]["machine_opens"] == 30
    assert rows[("B", "test")]["human_opens"] == 0
    assert rows[("B", "remainder")]["sent"] == 60
    assert rows[("A", "test")]["rate"] == 0.0
    assert (
        0 < rows[("B", "test")]["low"] < rows[("B", "test")]["rate"] < rows[("B", "test")]["high"]
    )
    assert "B won, sent to the rest" in _ok(runner, "status")
