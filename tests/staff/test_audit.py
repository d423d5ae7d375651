from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from sender.core.db import session_scope
from sender.core.errors import Forbidden, InvalidInput
from sender.core.staff_models import AuditEntry
from sender.staff import audit
from sender.staff.actions import NEEDED, What
from sender.staff.audit import Actor, Outcome
from sender.staff.roles import Role

VIEWER = Actor("vera@example.org", Role.VIEWER, "198.51.100.7")
CAMPAIGNER = Actor("cam@example.org", Role.CAMPAIGNER, "198.51.100.8", frozenset({1}))


def test_every_action_says_which_role_it_needs() -> None:
    assert set(NEEDED) == set(What)


def test_a_refusal_is_recorded_and_nothing_runs(any_engine: Engine) -> None:
    ran: list[str] = []
    with pytest.raises(Forbidden, match="needs the campaigner role"):
        audit.audited(
            any_engine, VIEWER, What.WAVE_PAUSE, "wave case-email", lambda: ran.append("x")
        )
    assert ran == []
    with session_scope(any_engine) as session:
        (row,) = audit.entries(session)
    assert (row.actor, row.action, row.outcome) == ("vera@example.org", "wave.pause", "refused")
    assert row.address == "198.51.100.7" and row.actor_role == "viewer"


def test_campaign_limit_refuses_other_campaigns(any_engine: Engine) -> None:
    assert audit.allowed(CAMPAIGNER, What.WAVE_PAUSE, 1)
    with pytest.raises(Forbidden, match="may not act on this campaign"):
        audit.audited(any_engine, CAMPAIGNER, What.WAVE_PAUSE, "w", lambda: 1, campaign_id=2)


def test_done_and_failed_changes_are_recorded(any_engine: Engine) -> None:
    result = audit.audited(
        any_engine,
        CAMPAIGNER,
        What.WAVE_PAUSE,
        "wave case-email",
        lambda: "paused",
        campaign_id=1,
        before="status=sending",
        after=lambda r: f"status={r}",
    )
    assert result == "paused"

    def fails() -> None:
        raise InvalidInput("wave case-email is already finished")

    with pytest.raises(InvalidInput):
        audit.audited(any_engine, CAMPAIGNER, What.WAVE_RESUME, "wave case-email", fails)
    with session_scope(any_engine) as session:
        failed, done = audit.entries(session)
        assert (done.outcome, done.before, done.after) == (
            "done",
            "status=sending",
            "status=paused",
        )
        assert failed.outcome == Outcome.FAILED and "already finished" in (failed.detail or "")
        assert [e.action for e in audit.entries(session, what=["wave"])] == [
            "wave.resume",
            "wave.pause",
        ]
        assert audit.entries(session, who="vera@example.org") == []


def test_long_summaries_are_cut(any_engine: Engine) -> None:
    audit.record_now(any_engine, audit.system_actor(), What.IMPORT, "x", detail="y" * 5000)
    with session_scope(any_engine) as session:
        (row,) = audit.entries(session)
    assert row.detail is not None and len(row.detail) == audit.SHORT


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"],
)
def test_rows_cannot_be_changed_or_deleted(any_engine: Engine, statement: str) -> None:
    audit.record_now(any_engine, VIEWER, What.LOGIN, "vera@example.org")
    with pytest.raises(DBAPIError, match="append-only"), any_engine.begin() as connection:
        connection.execute(text(statement))
    with session_scope(any_engine) as session:
        assert session.scalar(select(AuditEntry.actor)) == "vera@example.org"
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_truncate_is_refused_on_postgresql(pg_engine: Engine) -> None:
    audit.record_now(pg_engine, VIEWER, What.LOGIN, "vera@example.org")
    with pytest.raises(DBAPIError, match="append-only"), pg_engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_log"))
    with session_scope(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
