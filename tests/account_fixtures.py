"""A wave sent through the real pipeline to the local SendGrid, whose events reach the real
web app over HTTP: the world of the account-stop and report tests.

Everything runs for real except the clock (pinned to the wave's first window); the web
app has no Redis, so it processes each event batch inline, as the embedded default does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine

from sender.core.clock import MovableClock
from sender.core.config import Settings, reset_settings
from sender.core.db import session_scope
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.webapp import serving
from sender.send import store as repo
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender
from sender.send.planner import plan_wave
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.sendgrid import SendGridTransport
from sender.web import create_app

NINE = DEC1 + timedelta(hours=9)
WAVE_NAME = "case-email"
SECRET = "account-test-secret"


@dataclass
class Sent:
    engine: Engine
    settings: Settings
    sg: LocalSendGrid
    events_url: str
    wave_id: int
    emails: list[str]
    batches: list[int]  # released, in send order
    sender: Sender

    def post_events(self, after_id: int = 0, **scenario: float) -> int:
        """The local server's events for what it recorded after `after_id`, all answered 200."""
        answer = self.sg.admin.simulate(
            events_url=self.events_url, after_id=after_id, seed=1, **scenario
        )
        assert answer["statuses"] and set(answer["statuses"]) == {200}, answer
        return int(answer["events"])

    def post_event(self, **fields: object) -> dict[str, object]:
        answer = self.sg.admin.post_event(events_url=self.events_url, **fields)
        assert answer["status"] == 200, answer
        return answer


@contextmanager
def sent_world(
    engine: Engine, database_url: str, sg: LocalSendGrid, people: int, api_key: str
) -> Iterator[Sent]:
    """`people` supporters in one planned wave (batches of 3), released, nothing sent yet."""
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        batch_size=3,
        sendgrid_webhook_public_key=sg.public_key,
    )
    case = add_case(engine, settings)
    emails = [f"q{n}@example.net" for n in range(people)]
    add_supporters(engine, [case], emails)
    wave_id = add_wave(engine, settings, name=WAVE_NAME)
    plan_wave(engine, settings, wave_id, DEC1)
    with session_scope(engine) as session:
        batches = repo.release_due(session, NINE, 100)
    sender = Sender(
        store=SqlSendStore.from_settings(engine, settings),
        settings=settings,
        transport=SendGridTransport(api_key, host=sg.base_url, timeout_seconds=5),
        bucket=LocalTokenBucket(),
        clock=MovableClock(NINE),
        sleep=lambda _: None,
    )
    with serving(create_app(settings)) as web:
        yield Sent(
            engine,
            settings,
            sg,
            f"{web}/webhooks/sendgrid/events",
            wave_id,
            emails,
            batches,
            sender,
        )


def cli_env(monkeypatch: pytest.MonkeyPatch, world: Sent, api_key: str) -> None:
    """The CLI in this process, on the world's database and local SendGrid, without Redis."""
    for key in ("REDIS_URL", "SENDGRID_WEBHOOK_PUBLIC_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABASE_URL", str(world.settings.database_url))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("SENDGRID_API_KEY", api_key)
    monkeypatch.setenv("SENDGRID_API_HOST", world.sg.base_url)
    monkeypatch.setenv("BATCH_SIZE", "3")
    reset_settings()
