"""A corporate mail gateway fetches every link of every message within 2 s of delivery.

The wave goes out through the real SendGrid transport to the local SendGrid,
which posts signed `processed`/`delivered` events to the real web app and
then, as the gateway, fetches every link of each delivered message with a
browser's user agent (scanner.py). Those supporters must still get the
`not_acted` reminder, the report must show their fetches as machine clicks
with the action rate unchanged, and when one of them really clicks later,
from a browser, that click counts and keeps them out of the next reminder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import requests
from campaign_fixtures import add_campaign_now
from sendgrid_fixtures import API_KEY, sendgrid_process, sg
from sending_fixtures import add_case, add_supporters, add_wave
from sqlalchemy import Engine, select

from sender.core.clock import MovableClock, SystemClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Action, Message, Supporter, Suppression
from sender.core.vocabulary import ActionKind, AudienceRule, MessageStatus, WaveKind
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.webapp import serving
from sender.report.totals import Dimension, build_report, catch_up
from sender.send import store as repo
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender, send_batch
from sender.send.planner import plan_wave
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.sendgrid import SendGridTransport
from sender.track.actions import process_pending_events
from sender.web import context, create_app

__all__ = ["sendgrid_process", "sg"]  # fixtures used by name

SECRET = "scanner-test-secret"
BEHIND_GATEWAY = ["ana@corp.example.com", "ben@corp.example.com"]
AT_HOME = ["cleo@example.net", "dev@example.net"]
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Safari/605.1.15"
)
WHOLE_DAY = (time(0), time(0))


@dataclass
class Campaign2026:
    engine: Engine
    sg: LocalSendGrid
    settings: Settings
    web_url: str
    clock: MovableClock
    case_id: int
    campaign_id: int


@pytest.fixture
def world(pg_engine: Engine, sg: LocalSendGrid) -> Iterator[Campaign2026]:
    database_url = pg_engine.url.render_as_string(hide_password=False)
    app_settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        sendgrid_webhook_public_key=sg.public_key,
        public_base_url="http://127.0.0.1",
    )
    app = create_app(app_settings)
    clock = MovableClock(datetime.now(UTC))
    app.extensions[context.CLOCK] = clock
    with serving(app) as web_url:
        # The links in the mail lead to this app, as they would to the public site.
        settings = app_settings.model_copy(
            update={"public_base_url": web_url, "frequency_cap_hours": 0, "batch_size": 10}
        )
        campaign_id = add_campaign_now(pg_engine, "w4r-2026", datetime.now(UTC), days_after=3)
        case_id = add_case(pg_engine, settings, campaign_id=campaign_id)
        add_supporters(pg_engine, [case_id], BEHIND_GATEWAY + AT_HOME)
        yield Campaign2026(pg_engine, sg, settings, web_url, clock, case_id, campaign_id)


def _send_wave(w: Campaign2026, name: str, kind: WaveKind, audience: AudienceRule) -> int:
    now = datetime.now(UTC)
    wave = add_wave(
        w.engine,
        w.settings,
        name,
        campaign_id=w.campaign_id,
        kind=kind,
        audience=audience,
        starts_at=now - timedelta(minutes=5),
        window=WHOLE_DAY,
    )
    plan_wave(w.engine, w.settings, wave, now)
    with session_scope(w.engine) as session:
        batches = repo.release_due(session, now, 100)
    sender = Sender(
        store=SqlSendStore.from_settings(w.engine, w.settings),
        settings=w.settings,
        transport=SendGridTransport(API_KEY, host=w.sg.base_url, timeout_seconds=10),
        bucket=LocalTokenBucket(),
        clock=SystemClock(),
        sleep=lambda _: None,
    )
    for batch in batches:
        send_batch(batch, sender)
    return wave


def _recipients_of(w: Campaign2026, wave: int) -> set[str]:
    with session_scope(w.engine) as session:
        rows = session.scalars(
            select(Supporter.email)
            .join(Message, Message.supporter_id == Supporter.id)
            .where(Message.wave_id == wave, Message.status == MessageStatus.SENT)
        )
        return {str(email) for email in rows}


def _deliver(w: Campaign2026, after_id: int) -> None:
    """The server's `processed` and `delivered` events, to the app's webhook, processed."""
    answer = w.sg.admin.simulate(
        after_id=after_id, events_url=f"{w.web_url}/webhooks/sendgrid/events", seed=3
    )
    assert all(status == 200 for status in answer["statuses"]), answer
    process_pending_events(w.engine, settings=w.settings)


def _clicks(w: Campaign2026) -> dict[str, list[str]]:
    with session_scope(w.engine) as session:
        rows = session.execute(
            select(Supporter.email, Action.kind)
            .join(Supporter, Supporter.id == Action.supporter_id)
            .where(Action.kind.in_([ActionKind.CLICKED, ActionKind.CLICKED_MACHINE]))
            .order_by(Action.id)
        )
        found: dict[str, list[str]] = {}
        for email, kind in rows:
            found.setdefault(str(email), []).append(kind)
        return found


def _report(engine: Engine) -> dict[str, Any]:
    """The report after a scheduler tick: link clicks reach the totals through its roll-up."""
    catch_up(engine, datetime.now(UTC))
    return build_report(engine, Dimension.CASE)


def test_a_gateway_scan_acts_for_nobody_and_a_later_click_counts(world: Campaign2026) -> None:
    w = world
    everyone = set(BEHIND_GATEWAY + AT_HOME)
    first = _send_wave(w, "case-email", WaveKind.CASE_EMAIL, AudienceRule.ALL_ASSIGNED)
    assert _recipients_of(w, first) == everyone
    w.clock.at = datetime.now(UTC)
    _deliver(w, after_id=0)
    before = _report(w.engine)["totals"]

    scanned = w.sg.admin.scan(emails=BEHIND_GATEWAY, methods=["GET"])  # browser agent only
    assert scanned["messages"] == 2 and scanned["seconds"] < 2.0
    # Per message: the action link, the hidden honeypot and the unsubscribe page.
    assert scanned["fetches"] == 6

    assert _clicks(w) == {email: [ActionKind.CLICKED_MACHINE] for email in BEHIND_GATEWAY}
    after = _report(w.engine)["totals"]
    assert (after["clicks"], after["machine_clicks"]) == (0, 2)
    assert (
        (after["acted"], after["action_rate"])
        == (before["acted"], before["action_rate"])
        == (
            0,
            0.0,
        )
    )
    with session_scope(w.engine) as session:  # the unsubscribe page was only looked at
        assert session.scalars(select(Suppression)).first() is None

    reminder = _send_wave(w, "reminder", WaveKind.ACTION_REMINDER, AudienceRule.NOT_ACTED)
    assert _recipients_of(w, reminder) == everyone  # the scanned supporters are reminded

    # Twenty minutes later Ana reads the reminder and clicks, from her browser.
    w.clock.advance(minutes=20)
    [ana] = w.sg.admin.recipients(email=BEHIND_GATEWAY[0], after_id=4)
    action_link = next(link for link in ana["links"] if "/a/" in link and "/x" not in link)
    answer = requests.get(
        action_link, headers={"User-Agent": BROWSER}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302
    assert _clicks(w)[BEHIND_GATEWAY[0]] == [ActionKind.CLICKED_MACHINE, ActionKind.CLICKED]
    final = _report(w.engine)["totals"]
    assert (final["clicks"], final["machine_clicks"], final["acted"]) == (1, 2, 1)

    last = _send_wave(w, "last-chance", WaveKind.LAST_CHANCE, AudienceRule.NOT_ACTED)
    assert _recipients_of(w, last) == everyone - {BEHIND_GATEWAY[0]}
