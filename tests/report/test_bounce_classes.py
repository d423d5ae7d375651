"""Bounce classification and deferrals in the report; events without our custom args.

Shapes posted by the local SendGrid (sender/devtools/local_sendgrid/account_events.py),
each from SendGrid's Event Webhook reference: bounce with `bounce_classification`,
deferred with `attempt` and `response`, group_unsubscribe / group_resubscribe with
`asm_group_id`, and an asynchronous bounce carrying only the address, sg_message_id
and the bounce fields.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from account_fixtures import Sent, sent_world
from sendgrid_fixtures import API_KEY, sendgrid_process, sg  # noqa: F401 - fixtures
from sqlalchemy import Engine, select
from typer.testing import CliRunner
from web_fixtures import log_in, make_app

from sender.cli import app
from sender.core.addresses import email_hash
from sender.core.config import reset_settings
from sender.core.db import session_scope
from sender.core.models import Event, Supporter, Suppression
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.report.totals import Dimension, build_report
from sender.send.pipeline import send_batch

_CLASS = {"Invalid Address": "invalid_address", "Reputation": "reputation"}


def _state(engine: Engine, email: str) -> tuple[str, str | None]:
    """(supporter status, suppression reason or None)."""
    with session_scope(engine) as session:
        status = session.scalar(select(Supporter.status).where(Supporter.email == email))
        reason = session.scalar(
            select(Suppression.reason).where(Suppression.email_hash == email_hash(email))
        )
    return str(status), reason


def _simulated_classes(engine: Engine) -> Counter[str]:
    with session_scope(engine) as session:
        raws = session.scalars(select(Event.raw).where(Event.event_type == "bounced")).all()
    return Counter(_CLASS[r["bounce_classification"]] for r in raws if "wave_id" in r)


def _send_and_post(world: Sent) -> None:
    first, second = world.batches
    send_batch(first, world.sender)
    world.post_events(bounce_rate=1.0)  # q0-q2 bounce, each with SendGrid's class
    send_batch(second, world.sender)
    world.post_events(after_id=3)  # q3-q5 delivered
    q3, q4, q5 = world.emails[3:]
    world.post_event(event="deferred", email=q3, attempt="2", response="421 4.7.28 slow down")
    world.post_event(event="group_unsubscribe", email=q4, asm_group_id=42)
    world.post_event(event="group_resubscribe", email=q4, asm_group_id=42)
    world.post_event(event="bounce", email=q5, bounce_classification="Mailbox Unavailable")


def test_bounce_classes_and_deferrals_reach_the_report_and_cli(
    pg_url: str,
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with sent_world(pg_engine, pg_url, sg, people=6, api_key=API_KEY) as world:
        _send_and_post(world)
    classes = _simulated_classes(pg_engine)
    assert sum(classes.values()) == 3
    report = build_report(pg_engine, Dimension.WAVE)
    rows = {row["key"]: row for row in report["rows"]}
    wave = rows[str(world.wave_id)]
    assert wave["counts"]["bounces"] == 3 and wave["counts"]["deferrals"] == 1
    assert {k: v for k, v in wave["bounces"].items() if v} == dict(classes)
    # The async bounce has no wave: it is counted under "(unknown)", classed all the same.
    assert rows["(unknown)"]["bounces"]["mailbox_unavailable"] == 1
    assert report["bounce_totals"]["mailbox_unavailable"] == 1
    assert sum(report["bounce_totals"].values()) == 4

    monkeypatch.setenv("DATABASE_URL", pg_url)
    reset_settings()
    table = runner.invoke(app, ["report", "--by", "wave"])
    assert table.exit_code == 0, table.output
    assert "Bounces by classification, by wave" in table.output
    assert "mailbox" in table.output and "invalid" in table.output
    assert "not attributable to any campaign (kept out of the totals): 1 bounces" in " ".join(
        table.output.split()
    )
    as_json = json.loads(runner.invoke(app, ["report", "--by", "wave", "--format", "json"]).output)
    # The campaign's own report: its three bounces; the async one is shown apart.
    assert sum(as_json["bounce_totals"].values()) == 3
    assert as_json["unattributed"]["bounces"]["mailbox_unavailable"] == 1
    assert {k: v for k, v in as_json["bounce_totals"].items() if v} == dict(classes)
    assert "deferrals" in as_json["metrics"]
    reset_settings()

    staff = make_app(pg_engine).test_client()
    assert log_in(staff) == 302
    html = staff.get("/workspace/reports/?by=wave").get_data(as_text=True)
    assert "Bounces by classification, by wave" in html and "mailbox unavailable" in html


def test_events_without_our_custom_args_still_act_on_the_right_supporter(
    pg_url: str,
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
) -> None:
    with sent_world(pg_engine, pg_url, sg, people=6, api_key=API_KEY) as world:
        _send_and_post(world)
    q3, q4, q5 = world.emails[3:]
    # Matched by address hash alone: the async bounce suppresses q5, nobody else.
    assert _state(pg_engine, q5) == ("bounced", "bounced")
    # The group unsubscribe holds; a resubscribe event never undoes it (the person
    # opts in again with us, not through the provider).
    assert _state(pg_engine, q4) == ("unsubscribed", "unsubscribed")
    # A deferral is recorded, never acted on.
    assert _state(pg_engine, q3) == ("subscribed", None)
    with session_scope(pg_engine) as session:
        deferred = session.scalars(select(Event.raw).where(Event.event_type == "deferred")).one()
    assert (deferred["attempt"], deferred["wave_id"]) == ("2", str(world.wave_id))
