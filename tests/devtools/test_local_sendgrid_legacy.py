"""The local SendGrid posts legacy and malformed events when asked, and the project's
webhook stores the first kind and keeps the second raw, answering 2xx (issue 12)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sendgrid_fixtures import API_KEY, Receiver, mail_json, receiver, sendgrid_process, sg
from sqlalchemy import Engine, func, select
from webhook_fixtures import URL, url_of

from sender.core.config import Settings
from sender.core.models import Event, RejectedEvent
from sender.devtools.local_sendgrid.legacy_events import (
    LEGACY_KINDS,
    LONG_ID_LENGTH,
    MALFORMED_KINDS,
)
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.webapp import serving
from sender.web import create_app

__all__ = ["receiver", "sendgrid_process", "sg"]  # fixtures used by name


def _send(sg: LocalSendGrid, n: int) -> None:
    answer = requests.post(
        f"{sg.base_url}/v3/mail/send",
        json=mail_json(n),
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 202


def _posted(receiver: Receiver) -> list[Any]:
    return [item for post in receiver.posts for item in json.loads(post.body)]


def test_legacy_shapes_are_posted_in_turn(sg: LocalSendGrid, receiver: Receiver) -> None:
    _send(sg, 10)  # processed + delivered each: 20 events, 4 of each legacy kind
    result = sg.admin.simulate(events_url=receiver.url, legacy_rate=1, seed=3)
    events = _posted(receiver)
    assert len(events) == result["events"] == 20
    assert sum("sg_event_id" not in e for e in events) == 4
    assert sum(len(e.get("sg_event_id", "")) == LONG_ID_LENGTH for e in events) == 4
    stamps = [e["timestamp"] for e in events]
    assert sum(isinstance(t, str) and t.isdigit() for t in stamps) == 4
    assert sum(isinstance(t, int) and t > 10**12 for t in stamps) == 4
    assert sum(isinstance(t, float) for t in stamps) == 4
    counters = sg.admin.stats()["counters"]
    assert {k: counters[f"legacy_{k}"] for k in LEGACY_KINDS} == dict.fromkeys(LEGACY_KINDS, 4)


def test_no_mix_leaves_the_events_as_they_were(sg: LocalSendGrid, receiver: Receiver) -> None:
    _send(sg, 3)
    sg.admin.simulate(events_url=receiver.url, seed=3)
    events = _posted(receiver)
    assert all(isinstance(e["timestamp"], int) and len(e["sg_event_id"]) == 32 for e in events)


def test_an_unknown_kind_is_refused(sg: LocalSendGrid, receiver: Receiver) -> None:
    answer = requests.post(
        f"{sg.base_url}/_admin/simulate",
        json={"events_url": receiver.url, "legacy_rate": 1, "legacy_kinds": ["odd"]},
        timeout=10,
    )
    assert answer.status_code == 400 and "legacy_kinds" in answer.json()["error"]
    assert receiver.posts == []


@pytest.fixture
def webhook(sg: LocalSendGrid, pg_engine: Engine) -> Iterator[str]:
    settings = Settings(
        database_url=url_of(pg_engine),
        secret_key="test-secret",
        sendgrid_webhook_public_key=sg.public_key,
        redis_url=None,
    )
    with serving(create_app(settings)) as base_url:
        yield base_url + URL


def _counts(engine: Engine) -> tuple[int, Counter[str]]:
    with engine.connect() as connection:
        stored = int(connection.scalar(select(func.count()).select_from(Event)) or 0)
        kinds = Counter(connection.scalars(select(RejectedEvent.kind)))
    return stored, kinds


def test_the_webhook_stores_legacy_events_and_keeps_malformed_ones(
    sg: LocalSendGrid, pg_engine: Engine, webhook: str
) -> None:
    _send(sg, 10)  # 20 events, 2 of each kind
    kinds = [*LEGACY_KINDS, *MALFORMED_KINDS]
    result = sg.admin.simulate(events_url=webhook, legacy_rate=1, legacy_kinds=kinds, seed=5)
    assert result["statuses"] == [200]
    stored, kept = _counts(pg_engine)
    assert stored == 2 * len(LEGACY_KINDS)
    assert kept == {
        "missing_type": 2,
        "missing_timestamp": 4,  # no timestamp, and "yesterday"
        "not_an_object": 2,
        "invalid_text": 2,
    }
    assert sg.admin.retries()["pending"] == 0  # a 2xx: nothing to retry


def test_a_given_batch_is_posted_signed(sg: LocalSendGrid, pg_engine: Engine, webhook: str) -> None:
    legacy = {"event": "open", "email": "a@example.net", "timestamp": "1700000000"}
    assert sg.admin.post_events([legacy, 7], events_url=webhook) == 200
    assert sg.admin.post_events([legacy, 7], events_url=webhook) == 200  # a redelivery
    assert _counts(pg_engine) == (1, Counter({"not_an_object": 1}))
