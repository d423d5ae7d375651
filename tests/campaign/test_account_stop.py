"""Account-level stops (issue 12): a quota drop mid-wave or a suspension pauses every wave
at once with a reason staff can read; nobody is suppressed; `campaign wave resume` sends
the rest, and the mail SendGrid dropped for the quota, exactly once.

The drop reason is SendGrid's (Event Webhook reference, "dropped"); the
account_status_change shape and its `type` values are from the Event Webhook
reference's account events (see sender/devtools/local_sendgrid/account_events.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from account_fixtures import NINE, WAVE_NAME, Sent, cli_env, sent_world
from audit_fixtures import audit_rows
from cli_tables import row
from sendgrid_fixtures import API_KEY, sendgrid_process, sg  # noqa: F401 - fixtures
from sending_fixtures import add_wave, wave_status
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner
from web_fixtures import log_in, make_app

from sender.cli import app
from sender.core.config import reset_settings
from sender.core.db import session_scope
from sender.core.models import Event, Message, Supporter, Suppression
from sender.core.vocabulary import WaveStatus
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.pipeline import send_batch

QUOTA = "Recipient List over Package Quota"


def _messages(engine: Engine) -> Counter[tuple[str, str | None]]:
    with session_scope(engine) as session:
        rows = session.execute(select(Message.status, Message.skip_reason)).all()
    return Counter((str(status), reason) for status, reason in rows)


def _nobody_suppressed(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        assert set(session.scalars(select(Supporter.status))) == {"subscribed"}


def test_a_quota_drop_mid_wave_pauses_it_and_resume_sends_the_rest_once(
    pg_url: str,
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with sent_world(pg_engine, pg_url, sg, people=9, api_key=API_KEY) as world:
        first, second, third = world.batches
        sg.admin.set_quota(4)  # four more recipients, then SendGrid drops the rest
        assert [send_batch(b, world.sender).outcome for b in (first, second)] == [
            BatchOutcome.SENT,
            BatchOutcome.SENT,
        ]
        world.post_events()  # 4 x processed + delivered, then 2 x dropped for the quota

        status, reason = wave_status(pg_engine, world.wave_id)
        assert status == WaveStatus.PAUSED
        assert reason is not None and f"SendGrid dropped mail: {QUOTA} (at " in reason
        assert "raise the plan's quota (or wait for the next billing period), then " in reason
        assert reason.endswith(f"`campaign wave resume {WAVE_NAME}`")
        # Paused at once: the batch still queued is held, SendGrid gets nothing more.
        assert send_batch(third, world.sender).outcome == BatchOutcome.HELD
        assert sg.admin.count() == 6
        # Nobody suppressed; the two dropped messages failed with SendGrid's reason.
        _nobody_suppressed(pg_engine)
        assert _messages(pg_engine) == {
            ("sent", None): 4,
            ("failed", f"dropped: {QUOTA}"): 2,
            ("planned", None): 3,
        }

        staff = make_app(pg_engine).test_client()
        assert log_in(staff) == 302
        page = staff.get("/dashboard/").get_data(as_text=True)
        assert 'data-testid="wave-reason"' in page and QUOTA in page

        cli_env(monkeypatch, world, API_KEY)
        listing = runner.invoke(app, ["wave", "list"], env={"COLUMNS": "200"})
        assert listing.exit_code == 0, listing.output
        assert QUOTA in " ".join(listing.output.split())
        assert row(listing.output, WAVE_NAME)[-1] == "2"  # the failed column
        shown = runner.invoke(app, ["status"])
        assert shown.exit_code == 0, shown.output
        assert QUOTA in " ".join(shown.output.split())  # the reason, however it wraps

        # Staff raise the quota, then resume: the rest and the dropped mail go, once.
        sg.admin.set_quota(None)
        resumed = runner.invoke(app, ["wave", "resume", WAVE_NAME, "--now", NINE.isoformat()])
        assert resumed.exit_code == 0, resumed.output
        assert "2 dropped messages to send again" in resumed.output
        world.post_events(after_id=6)
        again = runner.invoke(app, ["wave", "resume", WAVE_NAME, "--now", NINE.isoformat()])
        assert "nothing changed" in again.output  # a second resume sends nothing
        reset_settings()

    rows = sg.admin.recipients(limit=1000)
    delivered = Counter(str(r["email"]) for r in rows if not r["dropped"])
    assert delivered == Counter(world.emails)  # each supporter exactly once, none missing
    assert [r["dropped"] for r in rows if r["dropped"]] == [QUOTA, QUOTA]
    assert len(rows) == 11
    assert _messages(pg_engine) == {("sent", None): 9}
    assert wave_status(pg_engine, world.wave_id)[0] == WaveStatus.DONE
    _nobody_suppressed(pg_engine)


def _other_waves(world: Sent) -> dict[str, int]:
    """A scheduled wave, a staff-paused one and a finished one beside the sending wave."""
    later = NINE + timedelta(days=5)
    ids = {
        "scheduled": add_wave(world.engine, world.settings, name="later", starts_at=later),
        "staff": add_wave(world.engine, world.settings, name="held", status=WaveStatus.PAUSED),
        "done": add_wave(world.engine, world.settings, name="over", status=WaveStatus.DONE),
    }
    with session_scope(world.engine) as session:
        repo.move_wave(session, ids["staff"], [WaveStatus.PAUSED], WaveStatus.PAUSED, "by Ana")
    return ids


def test_a_suspension_pauses_every_wave_and_a_reactivation_resumes_none(
    pg_url: str,
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with sent_world(pg_engine, pg_url, sg, people=3, api_key=API_KEY) as world:
        others = _other_waves(world)
        world.post_event(event="account_status_change", type="compliance_suspend")
        for wave_id in (world.wave_id, others["scheduled"]):
            status, reason = wave_status(pg_engine, wave_id)
            assert status == WaveStatus.PAUSED
            assert reason and "SendGrid changed the account's status: compliance_suspend" in reason
            assert "settle the account with SendGrid support, then `campaign wave resume" in reason
        assert wave_status(pg_engine, others["staff"]) == (WaveStatus.PAUSED, "by Ana")
        assert wave_status(pg_engine, others["done"])[0] == WaveStatus.DONE
        pauses = audit_rows(pg_engine, "wave.auto-pause")
        assert {(p.actor, p.before, p.after) for p in pauses} == {
            ("system", "status=sending", "status=paused"),
            ("system", "status=scheduled", "status=paused"),
        }
        assert all("compliance_suspend" in (p.detail or "") for p in pauses)
        assert send_batch(world.batches[0], world.sender).outcome == BatchOutcome.HELD
        assert sg.admin.count() == 0

        world.post_event(event="account_status_change", type="compliance_reactivate")
        status, reason = wave_status(pg_engine, world.wave_id)
        assert status == WaveStatus.PAUSED  # staff decide when to go on
        assert reason and "compliance_suspend" in reason
        assert "compliance_reactivate" in reason and "nothing resumes by itself" in reason
        assert wave_status(pg_engine, others["staff"]) == (WaveStatus.PAUSED, "by Ana")
        with session_scope(pg_engine) as session:  # both events are kept
            kinds = session.scalars(select(Event.event_type)).all()
        assert kinds == ["account_status", "account_status"]

        cli_env(monkeypatch, world, API_KEY)
        resumed = runner.invoke(app, ["wave", "resume", WAVE_NAME, "--now", NINE.isoformat()])
        assert resumed.exit_code == 0, resumed.output
        reset_settings()
    assert Counter(str(r["email"]) for r in sg.admin.recipients()) == Counter(world.emails)
    _nobody_suppressed(pg_engine)
