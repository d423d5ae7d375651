"""`campaign db app-role NAME`: a real login role that reads and writes rows but cannot rewrite
the audit log. Roles belong to the whole server, so each test makes its own and drops it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from campaign_fixtures import add_2020_campaign
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from staff_cli_fixtures import CAMPAIGNER, add_one_per_role, audit_rows, invoke
from typer.testing import CliRunner

from sender.core.app_role import check_name
from sender.core.config import reset_settings
from sender.core.errors import Forbidden, InvalidInput
from sender.core.models import Campaign
from sender.core.staff_models import AuditEntry


@pytest.fixture
def role(env: pytest.MonkeyPatch, pg_engine: Engine, pg_url: str) -> Iterator[str]:
    env.setenv("DATABASE_URL", pg_url)
    reset_settings()
    name = f"app_{uuid.uuid4().hex[:12]}"
    yield name
    with pg_engine.begin() as connection:
        if connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}):
            connection.execute(text(f'DROP OWNED BY "{name}"'))
            connection.execute(text(f'DROP ROLE "{name}"'))


def _as_role(pg_url: str, name: str) -> Engine:
    return create_engine(make_url(pg_url).set(username=name, password=None))


def test_the_role_writes_rows_but_only_appends_to_the_audit_log(
    role: str, pg_engine: Engine, pg_url: str, runner: CliRunner
) -> None:
    campaign_id = add_2020_campaign(pg_engine)
    result = invoke(runner, "db", "app-role", role)
    assert result.exit_code == 0, result.output
    assert f"role {role} created" in result.output
    [row] = audit_rows(pg_engine)
    assert (row.action, row.outcome, row.target) == ("db.app-role", "done", f"role {role}")
    app = _as_role(pg_url, role)
    try:
        with app.begin() as connection:
            connection.execute(
                text("UPDATE campaigns SET name = 'Renamed' WHERE id = :i"), {"i": campaign_id}
            )
            connection.execute(
                text(
                    "INSERT INTO audit_log (at, actor, actor_role, address, action, outcome,"
                    " target) VALUES (now(), 'app', 'admin', 'host', 'login', 'done', 'x')"
                )
            )
        for statement in (
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "DELETE FROM alembic_version",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"), app.begin() as c:
                c.execute(text(statement))
    finally:
        app.dispose()
    with pg_engine.connect() as connection:
        actors = connection.scalars(select(AuditEntry.actor).order_by(AuditEntry.id)).all()
        assert actors == [row.actor, "app"]  # the INSERT went in, nothing else changed
        assert connection.scalar(select(func.count()).select_from(text("alembic_version"))) == 1
        assert connection.scalar(select(Campaign.name)) == "Renamed"


def test_running_it_again_refreshes_the_rights(
    role: str, pg_engine: Engine, runner: CliRunner
) -> None:
    assert invoke(runner, "db", "app-role", role).exit_code == 0
    again = invoke(runner, "db", "app-role", role)
    assert again.exit_code == 0 and f"role {role} updated" in again.output


def test_a_campaigner_may_not_make_roles(role: str, pg_engine: Engine, runner: CliRunner) -> None:
    add_one_per_role(pg_engine)
    result = invoke(runner, "--as", CAMPAIGNER, "db", "app-role", role)
    assert isinstance(result.exception, Forbidden)
    with pg_engine.connect() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": role})
    assert exists is None
    assert audit_rows(pg_engine)[-1].outcome == "refused"


def test_a_superuser_or_a_bad_name_is_refused(
    role: str, pg_engine: Engine, runner: CliRunner
) -> None:
    superuser = invoke(runner, "db", "app-role", "postgres")
    assert isinstance(superuser.exception, InvalidInput)
    assert "superuser" in str(superuser.exception)
    for bad in ('x"; DROP TABLE campaigns; --', "Upper", "pg_app", ""):
        with pytest.raises(InvalidInput, match="lower-case letters"):
            check_name(bad)
    with pg_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Campaign)) == 0
