"""Every state-changing command: refused below its role (recorded, nothing changed), else recorded.

The world is the 2020 demo campaign on real PostgreSQL with one case, two supporters
and a draft wave; each command runs through the real CLI with `--as`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign
from sending_fixtures import add_case, add_supporters
from sqlalchemy import Engine
from staff_cli_fixtures import (
    ADMIN,
    CAMPAIGNER,
    GOOD_PASSWORD,
    VIEWER,
    add_one_per_role,
    audit_rows,
    invoke,
    snapshot,
)
from typer.testing import CliRunner

from sender.core.config import get_settings, reset_settings
from sender.staff.actions import NEEDED, SYSTEM_ONLY, What
from sender.staff.roles import Role

ROOT = Path(__file__).resolve().parents[2]
W4R = ROOT / "audiences" / "w4r-2020"
WAVE = [
    "--kind",
    "case_email",
    "--start",
    "2020-12-01T00:00:00Z",
    "--end",
    "2020-12-02T00:00:00Z",
    "--subject",
    "en=Write today, {{ first_name }}",
]
LAUNCH = ["wave", "launch", "case-email", "--now", "2020-11-30T00:00:00Z"]
CSV = "Email Address,First Name,Last Name,Country,Consent\nnew@example.org,New,One,GB,yes\n"


@dataclass(frozen=True)
class Command:
    args: tuple[str, ...]
    what: What
    prep: tuple[tuple[str, ...], ...] = ()  # run first as the OS user
    stdin: str | None = None
    on_campaign: bool = True  # the row names the 2020 campaign
    before: str | None = None
    after: str | None = None
    detail: str | None = None


COMMANDS = [
    Command(("campaigns", "create", str(W4R)), What.CAMPAIGN_CREATE, detail="folder w4r-2020"),
    Command(
        ("campaigns", "close", "w4r-2020", "--yes"),
        What.CAMPAIGN_CLOSE,
        before="status=open",
        after="status=closed",
    ),
    Command(
        ("cases", "load", str(W4R / "cases.yaml")), What.CASES_LOAD, detail="file cases.yaml: "
    ),
    Command(("case", "pause", "nassima"), What.CASE_PAUSE, before="status=active"),
    Command(
        ("case", "resume", "nassima"),
        What.CASE_RESUME,
        prep=(("case", "pause", "nassima"),),
        before="status=paused",
        after="status=active",
    ),
    Command(("case", "resolve", "nassima"), What.CASE_RESOLVE, after="status=resolved"),
    Command(
        ("supporters", "import", "list.csv"),
        What.IMPORT,
        on_campaign=False,
        detail="1 rows: 1 imported, 0 updated, 0 unchanged, 0 rejected",
    ),
    Command(("assign", "--reassign"), What.ASSIGN, detail="2 created, 2 replaced"),
    Command(
        ("supporters", "forget", "ana@example.org"),
        What.FORGET,
        on_campaign=False,
        detail="1 supporter erased (#",
    ),
    Command(
        ("plan", "apply", str(W4R / "plan.yaml")),
        What.PLAN_APPLY,
        detail="file plan.yaml: 2 created, 1 updated",
    ),
    Command(("wave", "create", "second", *WAVE), What.WAVE_CREATE, after="status=draft"),
    Command(tuple(LAUNCH), What.WAVE_LAUNCH, before="status=draft", after="status=scheduled"),
    Command(
        ("wave", "pause", "case-email"),
        What.WAVE_PAUSE,
        prep=(tuple(LAUNCH),),
        after="status=paused",
    ),
    Command(
        ("wave", "resume", "case-email", "--now", "2020-11-30T01:00:00Z"),
        What.WAVE_RESUME,
        prep=(tuple(LAUNCH), ("wave", "pause", "case-email")),
        before="status=paused",
    ),
    Command(("wave", "cancel", "case-email"), What.WAVE_CANCEL, after="status=cancelled"),
    Command(("wave", "retry-failed", "case-email"), What.WAVE_RETRY, detail="0 failed batches"),
    Command(
        ("wave", "test", "case-email", "--to", "staff@example.org"),
        What.WAVE_PROOF,
        detail="1 variants to 1 addresses",
    ),
    Command(("replies", "parse"), What.REPLY_PARSE, on_campaign=False),
    Command(
        ("suppressions", "add", "gone@example.org", "--reason", "asked by phone"),
        What.SUPPRESS,
        on_campaign=False,
        before="not suppressed",
        after="suppressed (manual)",
    ),
    Command(
        ("suppressions", "remove", "gone@example.org"),
        What.UNSUPPRESS,
        prep=(("suppressions", "add", "gone@example.org", "--reason", "asked by phone"),),
        on_campaign=False,
        before="suppressed (manual)",
        after="not suppressed",
    ),
    Command(
        ("staff", "add", "new@example.org", "--role", "viewer", "--password-stdin"),
        What.STAFF_ADD,
        stdin=GOOD_PASSWORD + "\n",
        on_campaign=False,
        after="role=viewer",
    ),
    Command(
        ("staff", "disable", VIEWER),
        What.STAFF_DISABLE,
        on_campaign=False,
        before="active",
        after="disabled",
    ),
    Command(
        ("staff", "enable", VIEWER),
        What.STAFF_ENABLE,
        prep=(("staff", "disable", VIEWER),),
        on_campaign=False,
        after="active",
    ),
    Command(
        ("staff", "passwd", VIEWER, "--password-stdin"),
        What.STAFF_PASSWORD,
        stdin="a-new-and-rather-long-pass-phrase\n",
        on_campaign=False,
    ),
    Command(("staff", "reset-2fa", VIEWER), What.STAFF_RESET_2FA, on_campaign=False),
    Command(
        ("staff", "role", VIEWER, "campaigner", "--campaign", "w4r-2020"),
        What.STAFF_ROLE,
        on_campaign=False,
        before="role=viewer campaigns=all",
        after="role=campaigner campaigns=w4r-2020",
    ),
]


@pytest.fixture
def world(env: pytest.MonkeyPatch, pg_engine: Engine, pg_url: str, tmp_path: Path) -> int:
    """The 2020 campaign's id; its case nassima, two supporters and the draft wave case-email."""
    env.setenv("DATABASE_URL", pg_url)
    reset_settings()
    campaign_id = add_2020_campaign(pg_engine)
    case = add_case(pg_engine, get_settings())
    add_supporters(pg_engine, [case], ["ana@example.org", "ben@example.org"])
    add_one_per_role(pg_engine)
    (tmp_path / "list.csv").write_text(CSV, encoding="utf-8")
    result = invoke(CliRunner(), "wave", "create", "case-email", *WAVE)
    assert result.exit_code == 0, result.output
    return campaign_id


def _prepare(runner: CliRunner, command: Command) -> None:
    for step in command.prep:
        result = invoke(runner, *step)
        assert result.exit_code == 0, (step, result.output)


def _below(what: What) -> str:
    """An account one role short of what the action needs."""
    return CAMPAIGNER if NEEDED[what] is Role.ADMIN else VIEWER


def _allowed(what: What) -> tuple[str, Role]:
    return (ADMIN, Role.ADMIN) if NEEDED[what] is Role.ADMIN else (CAMPAIGNER, Role.CAMPAIGNER)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c.args[:2]))
def test_a_lower_role_is_refused_recorded_and_changes_nothing(
    world: int, pg_engine: Engine, runner: CliRunner, command: Command
) -> None:
    _prepare(runner, command)
    before, rows_before = snapshot(pg_engine), len(audit_rows(pg_engine))
    actor = _below(command.what)
    result = invoke(runner, "--as", actor, *command.args, stdin=command.stdin)
    assert result.exit_code != 0
    assert "needs the" in result.output + str(result.exception)
    assert snapshot(pg_engine) == before
    rows = audit_rows(pg_engine)
    assert len(rows) == rows_before + 1
    refused = rows[-1]
    assert (refused.actor, refused.action, refused.outcome) == (actor, command.what, "refused")
    assert refused.detail is not None and f"needs the {NEEDED[command.what]} role" in refused.detail


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c.args[:2]))
def test_the_allowed_role_runs_it_and_a_done_row_says_what_changed(
    world: int, pg_engine: Engine, runner: CliRunner, command: Command
) -> None:
    _prepare(runner, command)
    actor, role = _allowed(command.what)
    result = invoke(runner, "--as", actor, *command.args, stdin=command.stdin)
    assert result.exit_code == 0, (result.output, result.exception)
    done = audit_rows(pg_engine)[-1]
    assert (done.actor, done.actor_role, done.action, done.outcome) == (
        actor,
        role,
        command.what,
        "done",
    )
    assert done.campaign_id == (world if command.on_campaign else None)
    assert done.address  # the host the command ran on
    for expected, found in (
        (command.before, done.before),
        (command.after, done.after),
        (command.detail, done.detail),
    ):
        assert expected is None or (found is not None and expected in found), (expected, found)


def test_every_state_changing_action_of_the_cli_is_covered() -> None:
    covered = {c.what for c in COMMANDS}
    cli_actions = (
        {w for w in What if NEEDED[w] is not None}
        - SYSTEM_ONLY
        - {
            What.REPLY_REVIEW,  # the web app's review page
            What.SUPPRESSION_LOOKUP,  # the dashboard's look-up (tests/web/test_staff_roles.py)
            What.SUPPORTER_LOOKUP,  # the workspace search (tests/web/test_workspace_supporters.py)
            What.AUDIT_VIEW,  # reading, not a change (tests/cli/test_audit.py)
            What.REPORT_VIEW,  # reading, web only (tests/web/test_workspace_reports.py)
            What.CASE_EDIT,  # the workspace's case texts (tests/web/test_workspace_cases.py)
            What.WAVE_EDIT,  # the workspace's draft form (tests/web/test_workspace_waves.py)
            What.WAVE_PICK,  # needs a running test (tests/cli/test_subject_test_commands.py)
            What.DB_APP_ROLE,  # tests/cli/test_db_app_role.py, which needs its own role
            # Need a reply waiting for a decision: tests/cli/test_replies.py (recorded),
            # tests/web/test_workspace_replies.py (refused below campaigner).
            What.REPLY_ASSIGN,
            What.REPLY_DISMISS,
            What.REPLY_UNSUBSCRIBE,
            What.REPLY_DELIVERED,
        }
    )
    assert cli_actions <= covered
