"""`campaign audit`, erasure rows without personal data, and suppressions staff may not lift."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from campaign_fixtures import add_2020_campaign
from sending_fixtures import add_case, add_supporters
from sqlalchemy import Engine, select
from staff_cli_fixtures import ADMIN, CAMPAIGNER, add_one_per_role, audit_rows, invoke, snapshot
from typer.testing import CliRunner

from sender.core.addresses import email_hash
from sender.core.config import get_settings, reset_settings
from sender.core.db import session_scope
from sender.core.errors import Forbidden, InvalidInput
from sender.core.models import Supporter, Suppression
from sender.staff import audit
from sender.staff.actions import What
from sender.staff.roles import Role

PERSON = "ana.lopez@mail.example.net"


@pytest.fixture
def pg(env: pytest.MonkeyPatch, pg_engine: Engine, pg_url: str) -> Engine:
    env.setenv("DATABASE_URL", pg_url)
    reset_settings()
    add_2020_campaign(pg_engine)
    add_one_per_role(pg_engine)
    return pg_engine


def _every_field(engine: Engine) -> str:
    return " ".join(str(v) for row in audit_rows(engine) for v in vars(row).values())


def test_an_erasure_row_names_the_supporter_id_and_no_personal_data(
    pg: Engine, runner: CliRunner
) -> None:
    case = add_case(pg, get_settings())
    [supporter_id] = add_supporters(pg, [case], [PERSON], first_name="Ana", last_name="Lopez")
    missing = invoke(runner, "--as", ADMIN, "supporters", "forget", "nobody.here@mail.example.net")
    assert missing.exit_code == 2 and "no supporter has that address" in missing.output
    result = invoke(runner, "--as", ADMIN, "supporters", "forget", PERSON)
    assert result.exit_code == 0, result.output
    failed, done = audit_rows(pg)[-2:]
    assert failed.outcome == "failed" and done.outcome == "done"
    assert done.detail == f"1 supporter erased (#{supporter_id})"
    text = _every_field(pg).lower()
    for personal in ("ana", "lopez", "nobody.here", "example.net", email_hash(PERSON)[:12]):
        assert personal not in text, personal


def test_a_manual_suppression_names_a_hash_and_an_erasure_cannot_be_lifted(
    pg: Engine, runner: CliRunner
) -> None:
    case = add_case(pg, get_settings())
    add_supporters(pg, [case], [PERSON])
    added = invoke(runner, "suppressions", "add", "Gone@Example.org", "--reason", "asked us")
    assert added.exit_code == 0, added.output
    with session_scope(pg) as session:
        stored = session.scalars(select(Suppression)).one()
        assert (stored.reason, stored.email_hash) == ("manual", email_hash("gone@example.org"))
    row = audit_rows(pg)[-1]
    assert row.target == f"address sha256:{email_hash('gone@example.org')[:12]}"
    assert "gone" not in _every_field(pg).lower()
    assert invoke(runner, "supporters", "forget", PERSON).exit_code == 0
    before = snapshot(pg)
    refused = invoke(runner, "suppressions", "remove", PERSON)
    assert isinstance(refused.exception, InvalidInput)
    assert "suppressed as forgotten" in str(refused.exception)
    assert snapshot(pg) == before
    assert audit_rows(pg)[-1].outcome == "failed"
    with session_scope(pg) as session:
        status = session.scalar(select(Supporter.status).where(Supporter.email.is_(None)))
    assert status == "forgotten"


def test_the_log_filters_by_actor_action_campaign_and_age(pg: Engine, runner: CliRunner) -> None:
    campaign_id = add_2020_campaign(pg)
    add_case(pg, get_settings())
    assert invoke(runner, "--as", CAMPAIGNER, "case", "pause", "nassima").exit_code == 0
    assert invoke(runner, "--as", ADMIN, "staff", "disable", CAMPAIGNER).exit_code == 0
    old = audit.Actor("old@example.org", Role.ADMIN, "host")
    with session_scope(pg) as session:
        long_ago = datetime.now(UTC) - timedelta(days=30)
        audit.record(session, old, What.STAFF_ADD, "x@example.org", at=long_ago)

    def csv_rows(*args: str) -> list[dict[str, str]]:
        result = invoke(runner, "--as", ADMIN, "audit", "--format", "csv", *args)
        assert result.exit_code == 0, result.output
        return list(csv.DictReader(io.StringIO(result.output)))

    assert [r["actor"] for r in csv_rows("--who", CAMPAIGNER)] == [CAMPAIGNER]
    assert [r["action"] for r in csv_rows("--what", "staff")] == ["staff.disable", "staff.add"]
    assert [r["action"] for r in csv_rows("--since", "7d")] == ["staff.disable", "case.pause"]
    assert [r["action"] for r in csv_rows("--since", "2020-01-01", "--limit", "1")] == [
        "staff.disable"
    ]
    [paused] = csv_rows("--campaign", "w4r-2020")
    assert (paused["campaign_id"], paused["before"]) == (str(campaign_id), "status=active")
    table = invoke(runner, "audit", columns=80)
    assert table.exit_code == 0 and all(len(line) <= 80 for line in table.output.splitlines())
    assert "case.pause" in table.output


def test_csv_cells_cannot_run_as_formulas(pg: Engine, runner: CliRunner) -> None:
    actor = audit.Actor('=HYPERLINK("http://evil")', Role.ADMIN, "+cmd")
    audit.record_now(pg, actor, What.STAFF_ADD, "@SUM(A1)")
    result = invoke(runner, "audit", "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(result.output)))
    assert row["actor"].startswith("'=") and row["address"] == "'+cmd"
    assert row["target"] == "'@SUM(A1)"


def test_only_an_admin_reads_the_log(pg: Engine, runner: CliRunner) -> None:
    assert invoke(runner, "--as", ADMIN, "staff", "disable", "viewer@example.org").exit_code == 0
    result = invoke(runner, "--as", CAMPAIGNER, "audit", "--format", "csv")
    assert isinstance(result.exception, Forbidden)
    assert "staff.disable" not in result.output
    refused = audit_rows(pg)[-1]
    assert (refused.actor, refused.action, refused.outcome) == (CAMPAIGNER, "audit.view", "refused")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", datetime(2026, 12, 3, 12, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 27, 12, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T08:00:00+01:00", datetime(2026, 12, 1, 7, tzinfo=UTC)),
    ],
)
def test_since_takes_an_age_a_date_or_an_instant(text: str, expected: datetime) -> None:
    assert audit.parse_since(text, datetime(2026, 12, 4, 12, tzinfo=UTC)) == expected


def test_since_refuses_anything_else() -> None:
    with pytest.raises(InvalidInput, match="nor an age"):
        audit.parse_since("last week", datetime(2026, 12, 4, tzinfo=UTC))
