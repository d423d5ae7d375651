"""`campaign staff ...` and the `--as` actor, on real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign_fixtures import add_2020_campaign, campaign_yaml
from sqlalchemy import Engine
from staff_cli_fixtures import (
    ADMIN,
    CAMPAIGNER,
    GOOD_PASSWORD,
    NOW,
    VIEWER,
    add_one_per_role,
    add_staff,
    audit_rows,
    invoke,
    snapshot,
)
from typer.testing import CliRunner

from sender.campaign.folder import parse_campaign
from sender.campaign.registry import store_campaign
from sender.core.config import reset_settings
from sender.core.db import session_scope
from sender.core.errors import Forbidden, InvalidInput
from sender.staff import accounts
from sender.staff.roles import Role


@pytest.fixture
def pg(env: pytest.MonkeyPatch, pg_engine: Engine, pg_url: str) -> Engine:
    env.setenv("DATABASE_URL", pg_url)
    reset_settings()
    add_2020_campaign(pg_engine)
    return pg_engine


def _account(engine: Engine, email: str) -> accounts.Account | None:
    with session_scope(engine) as session:
        return accounts.find(session, email)


def test_a_common_password_is_refused_with_the_rule_and_creates_nothing(
    pg: Engine, runner: CliRunner
) -> None:
    result = invoke(
        runner, "staff", "add", "omar@example.org", "--role", "admin", "--password-stdin",
        stdin="password1234\n",
    )  # fmt: skip
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidInput)
    assert "list of common passwords" in str(result.exception)
    assert _account(pg, "omar@example.org") is None
    [failed] = audit_rows(pg)
    assert (failed.action, failed.outcome, failed.target) == (
        "staff.add",
        "failed",
        "omar@example.org",
    )
    assert "password1234" not in " ".join(str(v) for v in vars(failed).values())


def test_the_password_is_asked_twice_and_must_match(pg: Engine, runner: CliRunner) -> None:
    args = ("staff", "add", "lena@example.org", "--role", "campaigner", "--campaign", "w4r-2020")
    mismatch = invoke(runner, *args, stdin=f"{GOOD_PASSWORD}\nsomething-else-entirely\n")
    assert mismatch.exit_code != 0 and _account(pg, "lena@example.org") is None
    result = invoke(runner, *args, stdin=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert GOOD_PASSWORD not in result.output  # the prompt hides it
    account = _account(pg, "lena@example.org")
    assert account is not None and account.role is Role.CAMPAIGNER
    assert account.campaigns == ("w4r-2020",)
    with session_scope(pg) as session:
        assert accounts.verify_login(session, "lena@example.org", GOOD_PASSWORD, NOW) is not None
    assert audit_rows(pg)[-1].after == account.summary()


def test_list_shows_each_account_within_80_columns(pg: Engine, runner: CliRunner) -> None:
    add_one_per_role(pg)
    assert invoke(runner, "staff", "disable", VIEWER).exit_code == 0
    result = invoke(runner, "staff", "list", columns=80)
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    assert "…" not in result.output
    viewer = [line for line in result.output.splitlines() if VIEWER in line]
    assert viewer and "disabled" in " ".join(viewer) and "off" in " ".join(viewer)
    assert result.output.count("never") == 3  # nobody has signed in yet
    refused = invoke(runner, "--as", CAMPAIGNER, "staff", "list")
    assert isinstance(refused.exception, Forbidden) and VIEWER not in refused.output


def test_as_without_any_account_is_a_clear_error(pg: Engine, runner: CliRunner) -> None:
    result = invoke(runner, "--as", ADMIN, "campaigns", "list")
    assert result.exit_code != 0
    assert "there are no staff accounts yet" in str(result.exception)
    assert audit_rows(pg) == []


def test_as_an_unknown_or_disabled_account_reads_and_changes_nothing(
    pg: Engine, runner: CliRunner
) -> None:
    add_one_per_role(pg)
    assert invoke(runner, "--as", VIEWER, "campaigns", "list").exit_code == 0  # a read
    assert invoke(runner, "staff", "disable", VIEWER).exit_code == 0
    before, rows = snapshot(pg), len(audit_rows(pg))
    for actor in (VIEWER, "nobody@example.org"):
        for args in (("campaigns", "list"), ("case", "pause", "nassima")):
            result = invoke(runner, "--as", actor, *args)
            assert isinstance(result.exception, Forbidden), (actor, args)
    assert "disabled" in str(invoke(runner, "--as", VIEWER, "status").exception)
    assert snapshot(pg) == before and len(audit_rows(pg)) == rows


def test_the_environment_names_the_actor_too(
    pg: Engine, runner: CliRunner, env: pytest.MonkeyPatch
) -> None:
    add_one_per_role(pg)
    env.setenv("CAMPAIGN_AS", VIEWER)
    result = invoke(runner, "staff", "disable", CAMPAIGNER)
    assert isinstance(result.exception, Forbidden)
    assert audit_rows(pg)[-1].actor == VIEWER
    account = _account(pg, CAMPAIGNER)
    assert account is not None and not account.disabled


def test_a_campaign_limit_refuses_another_campaign(pg: Engine, runner: CliRunner) -> None:
    with session_scope(pg) as session:
        store_campaign(session, parse_campaign(campaign_yaml("other", NOW), "other"), Path("x"))
    add_staff(pg, "limited@example.org", Role.CAMPAIGNER, ["other"])
    before = snapshot(pg)
    result = invoke(
        runner, "--as", "limited@example.org", "wave", "create", "w", "--campaign", "w4r-2020",
        "--kind", "case_email", "--start", "2020-12-01T00:00:00Z",
        "--end", "2020-12-02T00:00:00Z", "--subject", "en=Hello",
    )  # fmt: skip
    assert isinstance(result.exception, Forbidden)
    assert "may not act on this campaign" in str(result.exception)
    assert snapshot(pg) == before
    assert audit_rows(pg)[-1].outcome == "refused"


def test_role_change_limits_and_lifts_and_ends_sessions(pg: Engine, runner: CliRunner) -> None:
    add_one_per_role(pg)
    first = _account(pg, VIEWER)
    assert first is not None
    assert invoke(runner, "--as", ADMIN, "staff", "role", VIEWER, "admin").exit_code == 0
    promoted = _account(pg, VIEWER)
    assert promoted is not None and promoted.role is Role.ADMIN
    assert promoted.session_version > first.session_version
    result = invoke(runner, "staff", "role", VIEWER, "campaigner", "--campaign", "w4r-2020")
    assert result.exit_code == 0
    lifted = invoke(runner, "staff", "role", VIEWER, "campaigner", "--all-campaigns")
    assert lifted.exit_code == 0
    last = _account(pg, VIEWER)
    assert last is not None and last.campaigns == ()
    assert audit_rows(pg)[-1].before == "role=campaigner campaigns=w4r-2020 active 2fa=off"
    bad = invoke(runner, "staff", "role", VIEWER, "owner")
    assert isinstance(bad.exception, InvalidInput) and "choose one of" in str(bad.exception)


def test_passwd_replaces_the_password_and_a_weak_one_keeps_the_old(
    pg: Engine, runner: CliRunner
) -> None:
    add_one_per_role(pg)
    first = _account(pg, VIEWER)
    weak = invoke(runner, "staff", "passwd", VIEWER, "--password-stdin", stdin="viewer123456\n")
    assert isinstance(weak.exception, InvalidInput)
    new = "plum-orchard-quietly-hums-4096"
    assert invoke(runner, "staff", "passwd", VIEWER, "--password-stdin", stdin=new).exit_code == 0
    with session_scope(pg) as session:
        assert accounts.verify_login(session, VIEWER, GOOD_PASSWORD, NOW) is None
        assert accounts.verify_login(session, VIEWER, new, NOW) is not None
    last = _account(pg, VIEWER)
    assert first is not None and last is not None
    assert last.session_version == first.session_version + 1  # the weak try changed nothing
    rows = audit_rows(pg)[-2:]
    assert [r.outcome for r in rows] == ["failed", "done"]
    assert all(new not in str(vars(r)) and "viewer123456" not in str(vars(r)) for r in rows)
