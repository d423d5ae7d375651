"""The local SendGrid retries webhook posts not answered 2xx, re-signed, over a horizon.

SendGrid's Event Webhook troubleshooting page: any answer but 2xx is retried "at
increasing intervals for up to 24 hours after the event occurs". The last test
takes the project's own webhook down for a (compressed) hour and checks that
every event lands once when the retries get through.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid_fixtures import API_KEY, mail_json, sendgrid_process, sg
from sqlalchemy import Engine, func, select
from webhook_fixtures import URL, url_of

from sender.core.config import Settings
from sender.core.models import Event
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.local_sendgrid.retries import NO_ANSWER, Retrier, RetryPolicy
from sender.devtools.local_sendgrid.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Signer
from sender.devtools.waiting import wait_until
from sender.devtools.webapp import serving
from sender.web import create_app

__all__ = ["sendgrid_process", "sg"]  # fixtures used by name

FAST = 1 / 36_000  # a simulated hour of back-off in a tenth of a real second


@dataclass
class FakeReceiver:
    """Answers each attempt from a script; the wall clock jumps an hour per attempt."""

    answers: list[int]
    now: float = 1_700_000_000.0
    seen: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> float:
        return self.now

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        with self.lock:
            self.seen.append((self.now, dict(headers), body))
            self.now += 3600
            return self.answers.pop(0) if self.answers else 200


def _verifies(signer: Signer, headers: Mapping[str, str], body: bytes) -> bool:
    verifier = EventWebhook()
    key = verifier.convert_public_key_to_ecdsa(signer.public_key)
    return bool(
        verifier.verify_signature(
            body.decode(), headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], key
        )
    )


def test_each_retry_is_signed_with_the_time_it_leaves() -> None:
    signer = Signer.load_or_create(None)
    fake = FakeReceiver(answers=[503, 500, NO_ANSWER, 403])
    retrier = Retrier(signer, RetryPolicy(time_scale=FAST), fake.post, fake.clock)
    body = b'[{"event":"unsubscribe","sg_event_id":"a","timestamp":1700000000}]'
    assert retrier.deliver("http://hook", body) == 503
    wait_until(lambda: retrier.snapshot()["pending"] == 0, 10, "the retries to get through")
    assert len(fake.seen) == 5  # four failures, then a 2xx
    for at, headers, sent in fake.seen:
        assert sent == body
        assert headers[TIMESTAMP_HEADER] == str(int(at))  # the time of that attempt
        assert _verifies(signer, headers, sent)
    assert len({h[TIMESTAMP_HEADER] for _, h, _ in fake.seen}) == 5
    state = retrier.snapshot()
    assert (state["delivered_after_retry"], state["given_up"], state["retry_attempts"]) == (1, 0, 4)


def test_a_batch_never_answered_2xx_is_given_up_at_the_horizon() -> None:
    policy = RetryPolicy(horizon_seconds=2 * 3600, time_scale=FAST)
    # 1, 2, 4, 8, 16, 32 minutes, then an hour would pass the two hours: six retries.
    assert policy.schedule() == [60, 180, 420, 900, 1860, 3780]
    fake = FakeReceiver(answers=[500] * 100)
    retrier = Retrier(Signer.load_or_create(None), policy, fake.post, fake.clock)
    retrier.deliver("http://hook", b"[]")
    wait_until(lambda: retrier.snapshot()["given_up"] == 1, 10, "the batch to be given up")
    assert len(fake.seen) == 1 + len(policy.schedule())
    assert retrier.snapshot()["pending"] == 0
    # SendGrid's default: increasing intervals for up to 24 hours.
    default = RetryPolicy()
    assert default.horizon_seconds == 24 * 3600 and default.schedule()[-1] <= 24 * 3600


def test_a_2xx_at_once_is_not_retried_and_the_policy_is_checked() -> None:
    fake = FakeReceiver(answers=[204])
    retrier = Retrier(Signer.load_or_create(None), RetryPolicy(time_scale=FAST), fake.post)
    assert retrier.deliver("http://hook", b"[]") == 204
    assert retrier.snapshot()["delivered_first_time"] == 1 and len(fake.seen) == 1
    with pytest.raises(ValueError, match="unknown retry settings"):
        RetryPolicy.from_json({"horizon": 1})
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy.from_json({"time_scale": 0})


class Outage:
    """WSGI middleware in front of the real web app: 503 on the event webhook while down."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.down = True
        self.attempts: list[tuple[bool, str, int]] = []  # (during outage, timestamp, status)
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != URL:
            return self.app(environ, start_response)
        stamp = environ.get("HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if self.down:
            with self.lock:
                self.attempts.append((True, stamp, 503))
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]

        def recording(status: str, headers: Any, *rest: Any) -> Any:
            with self.lock:
                self.attempts.append((False, stamp, int(status.split()[0])))
            return start_response(status, headers, *rest)

        return self.app(environ, recording)


@pytest.fixture
def webhook_behind_outage(sg: LocalSendGrid, pg_engine: Engine) -> Iterator[tuple[str, Outage]]:
    settings = Settings(
        database_url=url_of(pg_engine),
        secret_key="test-secret",
        sendgrid_webhook_public_key=sg.public_key,
        redis_url=None,
    )
    outage = Outage(create_app(settings).wsgi_app)
    with serving(outage) as base_url:
        yield base_url + URL, outage


def test_an_hour_of_webhook_outage_loses_nothing_and_stores_each_event_once(
    sg: LocalSendGrid, pg_engine: Engine, webhook_behind_outage: tuple[str, Outage]
) -> None:
    events_url, outage = webhook_behind_outage
    hour_in_real_seconds = 3.0
    sg.admin.set_retries(time_scale=hour_in_real_seconds / 3600)
    answer = requests.post(
        f"{sg.base_url}/v3/mail/send",
        json=mail_json(40),
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 202
    began = time.monotonic()
    # Two batches: the simulated events, and a legacy one posted as given.
    result = sg.admin.simulate(
        events_url=events_url, open_rate=0.5, unsubscribe_rate=0.2, legacy_rate=0.3, seed=4
    )
    extra = [{"event": "delivered", "email": "p0@example.net", "timestamp": 1_700_000_000}]
    assert sg.admin.post_events(extra, events_url=events_url) == 503
    posted = result["events"] + len(extra)
    assert result["statuses"] == [503]
    wait_until(
        lambda: (
            time.monotonic() - began >= hour_in_real_seconds
            and sg.admin.retries()["retry_attempts"] >= 6
        ),
        timeout=60,
        what="an hour of the outage, simulated, with its retries",
    )
    assert sg.admin.retries()["given_up"] == 0
    outage.down = False
    wait_until(
        lambda: sg.admin.retries()["pending"] == 0,
        timeout=60,
        what="the retries to get through once the webhook is back",
    )
    state = sg.admin.stats()["webhook_retries"]
    assert (state["delivered_after_retry"], state["given_up"]) == (2, 0)
    with pg_engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Event))
        distinct = connection.scalar(select(func.count(func.distinct(Event.provider_event_id))))
    assert stored == distinct == posted  # every event once
    during = [a for a in outage.attempts if a[0]]
    after = [a for a in outage.attempts if not a[0]]
    assert len(during) >= 2 + 6 and len(after) == 2
    # Each retry passed the signature check on a timestamp of its own, later than the
    # first attempts': it was signed again when it left.
    assert all(status == 200 for _, _, status in after)
    assert min(int(stamp) for _, stamp, _ in after) > min(int(stamp) for _, stamp, _ in during)
