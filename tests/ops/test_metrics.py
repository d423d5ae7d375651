"""Metric names, scrape-time collectors and multiprocess aggregation."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time as _time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from ops_fixtures import ops_redis_fixture  # noqa: F401 - provides ops_redis_url
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from replies_fixtures import (
    INBOUND_SECRET,
    SECRET,
    message_ref,
    multipart,
    parse_fields,
    reply_address,
)
from replies_fixtures import seed as seed_replies
from replies_fixtures import settings_for as reply_settings
from sendgrid_fixtures import API_KEY, sendgrid_process, sg  # noqa: F401 - fixtures
from sending_fixtures import DEC1, add_case, add_supporters, add_wave
from sqlalchemy import Engine, func, select
from web_fixtures import make_app
from webhook_fixtures import URL, Signer, app_for, body_of, event, stored_count

from sender.core.clock import MovableClock
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Reply
from sender.devtools.local_sendgrid.process import LocalSendGrid
from sender.devtools.waiting import wait_until
from sender.ops import metrics
from sender.send import store as repo
from sender.send.batch import BatchOutcome
from sender.send.batch_store import SqlSendStore
from sender.send.pipeline import Sender, send_batch
from sender.send.planner import plan_wave
from sender.send.ratelimit import LocalTokenBucket
from sender.send.transport.sendgrid import SendGridTransport


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_appear_under_the_agreed_names() -> None:
    before = metrics.MESSAGES_SENT.labels(wave="7", case="bird")._value.get()
    metrics.MESSAGES_SENT.labels(wave="7", case="bird").inc(3)
    metrics.WEBHOOK_REFUSALS.labels(endpoint="events", reason="signature").inc()
    metrics.BATCH_SECONDS.observe(0.2)
    found = _samples(metrics.render())
    assert found[("messages_sent_total", (("case", "bird"), ("wave", "7")))] == before + 3
    assert found[("webhook_refusals_total", (("endpoint", "events"), ("reason", "signature")))] >= 1
    assert found[("batch_seconds_count", ())] >= 1
    for name in (
        "messages_failed",
        "sendgrid_responses",
        "send_retries",
        "events_ingested",
        "replies",
    ):
        assert f"# TYPE {name}_total counter" in metrics.render().decode()


def test_scrape_time_collectors_report_what_the_callables_return() -> None:
    depths = {"celery": 4, "sending": 0}
    counts = [metrics.WaveCount("3", "sent", 120), metrics.WaveCount("3", "failed", 2)]
    body = metrics.render(
        [metrics.QueueDepthCollector(lambda: depths), metrics.WaveMessagesCollector(lambda: counts)]
    )
    found = _samples(body)
    assert found[("queue_depth", (("queue", "celery"),))] == 4
    assert found[("queue_depth", (("queue", "sending"),))] == 0
    assert found[("wave_messages", (("status", "sent"), ("wave", "3")))] == 120
    depths["celery"] = 9  # read again at every scrape, never cached
    found = _samples(metrics.render([metrics.QueueDepthCollector(lambda: depths)]))
    assert found[("queue_depth", (("queue", "celery"),))] == 9


def test_worker_port_comes_from_the_environment() -> None:
    assert metrics.worker_port({}) == metrics.DEFAULT_WORKER_PORT
    assert metrics.worker_port({"WORKER_METRICS_PORT": "9900"}) == 9900


_CHILD = """
import sys
from sender.ops import metrics
metrics.MESSAGES_SENT.labels(wave="1", case="c").inc(int(sys.argv[1]))
"""


def test_multiprocess_mode_sums_counters_of_separate_processes(tmp_path: Path) -> None:
    """What gunicorn workers and Celery children rely on: separate processes, one view."""
    environ = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    for count in (2, 5):
        subprocess.run([sys.executable, "-c", _CHILD, str(count)], env=environ, check=True)
    reader = "import sys; from sender.ops import metrics; sys.stdout.buffer.write(metrics.render())"
    body = subprocess.run(
        [sys.executable, "-c", reader], env=environ, check=True, capture_output=True
    ).stdout
    assert _samples(body)[("messages_sent_total", (("case", "c"), ("wave", "1")))] == 7


def test_worker_metrics_server_answers_http(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve_worker_metrics(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert b"messages_sent_total" in response.read()


@pytest.mark.slow
def test_celery_worker_serves_summed_metrics_and_logs_json(
    tmp_path: Path, ops_redis_url: str
) -> None:
    """The real `celery -A worker worker`: /metrics on WORKER_METRICS_PORT, JSON logs."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    # A count left by another process (a prefork child) must show in the worker's view.
    seed_env = {**os.environ, metrics.MULTIPROC_ENV: str(multiproc)}
    subprocess.run([sys.executable, "-c", _CHILD, "3"], env=seed_env, check=True)
    environ = {
        **seed_env,
        "REDIS_URL": ops_redis_url,
        "WORKER_METRICS_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "worker.log"
    root = Path(__file__).resolve().parents[2]
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"t{port}@%h",
            ],
            cwd=root,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def scrape() -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return bytes(r.read())

    try:
        body = wait_until(scrape, 60, "the worker's /metrics", step=0.3, ignoring=(OSError,))
        assert _samples(body)[("messages_sent_total", (("case", "c"), ("wave", "1")))] == 3
        wait_until(lambda: " ready." in log_path.read_text(), 60, "the worker to be ready")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert lines, log_path.read_text()[-2000:]
    assert all("level" in json.loads(line) for line in lines)


# --- the pipeline's counters, read back from GET /metrics or the registry ---------------

SEND_SETTINGS = Settings(secret_key="test", batch_size=3)
NINE = DEC1 + timedelta(hours=9)


def _value(name: str, **labels: str) -> float:
    """A sample of this process's registry; absent counts as zero."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return _samples(response.get_data())


def _planned_wave(engine: Engine, server: LocalSendGrid) -> tuple[str, list[int], Sender]:
    case = add_case(engine, SEND_SETTINGS, slug="metrics-case")
    add_supporters(engine, [case], [f"m{i}@example.net" for i in range(6)])
    wave = add_wave(engine, SEND_SETTINGS)
    plan_wave(engine, SEND_SETTINGS, wave, DEC1)
    with session_scope(engine) as session:
        batches = repo.release_due(session, NINE, 100)
    sender = Sender(
        store=SqlSendStore.from_settings(engine, SEND_SETTINGS),
        settings=SEND_SETTINGS,
        transport=SendGridTransport(API_KEY, host=server.base_url, timeout_seconds=5),
        bucket=LocalTokenBucket(),
        clock=MovableClock(NINE),
        sleep=lambda _: None,
    )
    return str(wave), batches, sender


def test_sent_batches_show_on_metrics_by_wave_case_and_202(
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
) -> None:
    wave, batches, sender = _planned_wave(pg_engine, sg)
    # Every scrape reads the database here; the cache is tested on its own (tests/web/test_ops.py).
    client = make_app(pg_engine, metrics_refresh_seconds=0).test_client()
    before = _scrape(client)
    assert [send_batch(b, sender).outcome for b in batches] == [
        BatchOutcome.SENT,
        BatchOutcome.SENT,
    ]
    assert [send_batch(b, sender).outcome for b in batches] == [BatchOutcome.NOT_MINE] * 2
    after = _scrape(client)

    def grew(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(sorted(labels)))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("messages_sent_total", ("wave", wave), ("case", "metrics-case")) == 6
    assert grew("messages_failed_total", ("wave", wave), ("case", "metrics-case")) == 0
    assert grew("sendgrid_responses_total", ("status", "202")) == 2  # one per batch
    assert grew("batch_seconds_count") == 2  # a batch someone else had is not timed
    assert after[("wave_messages", (("status", "sent"), ("wave", wave)))] == 6


def test_refusals_retries_and_failures_are_counted_by_reason(
    pg_engine: Engine,
    sg: LocalSendGrid,  # noqa: F811
) -> None:
    wave, batches, sender = _planned_wave(pg_engine, sg)
    sg.admin.set_faults(
        forced=[
            {"status": 429, "remaining": 1},
            {"status": 503, "remaining": 1},
            {"status": 400, "email": "m4@example.net"},
        ]
    )
    labels = {"wave": wave, "case": "metrics-case"}
    before = {
        "retry429": _value("send_retries_total", reason="429"),
        "retry5xx": _value("send_retries_total", reason="5xx"),
        "400": _value("sendgrid_responses_total", status="400"),
        "503": _value("sendgrid_responses_total", status="503"),
        "sent": _value("messages_sent_total", **labels),
        "failed": _value("messages_failed_total", **labels),
    }
    outcomes = [send_batch(b, sender).outcome for b in batches]
    assert outcomes == [BatchOutcome.SENT, BatchOutcome.FAILED]
    assert _value("send_retries_total", reason="429") == before["retry429"] + 1
    assert _value("send_retries_total", reason="5xx") == before["retry5xx"] + 1
    assert _value("sendgrid_responses_total", status="503") == before["503"] + 1
    assert _value("sendgrid_responses_total", status="400") == before["400"] + 1
    assert _value("messages_sent_total", **labels) == before["sent"] + 3
    assert _value("messages_failed_total", **labels) == before["failed"] + 3


@pytest.mark.parametrize(
    ("status", "answer", "reason"),
    [
        (None, "timeout", "timeout"),
        (429, "429", "429"),
        (502, "502", "5xx"),
        (418, "418", "unknown"),
    ],
)
def test_answers_and_retry_reasons_stay_a_small_set(
    status: int | None, answer: str, reason: str
) -> None:
    assert metrics.answer_label(status) == answer
    assert metrics.retry_reason(status) == reason


def _webhook(engine: Engine) -> tuple[FlaskClient, Signer]:
    signer = Signer.generate()
    return app_for(engine, signer).test_client(), signer


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("bad_signature", 403, "bad_signature"),
        ("stale", 403, "stale_timestamp"),
        ("future", 403, "stale_timestamp"),
        ("malformed", 400, "malformed"),
        ("too_large", 413, "too_large"),
    ],
)
def test_each_webhook_refusal_is_counted_and_stores_nothing(
    any_engine: Engine, case: str, status: int, reason: str
) -> None:
    client, signer = _webhook(any_engine)
    good = body_of([event(1), event(2, "open", sg_machine_open=False)])
    headers = signer.headers(good)
    body = good
    if case == "bad_signature":
        headers = signer.headers(body_of([event(9)]))  # signed for another body
    elif case == "stale":
        headers = signer.headers(good, timestamp=int(_time.time()) - 26 * 3600)  # past 25 h
    elif case == "future":
        headers = signer.headers(good, timestamp=int(_time.time()) + 3600)
    elif case == "malformed":
        body = b'{"not": "a list"}'
        headers = signer.headers(body)
    elif case == "too_large":
        body = b"[" + b" " * (5 * 1024 * 1024) + b"]"
        headers = signer.headers(body)
    before = _value("webhook_refusals_total", endpoint="events", reason=reason)
    response = client.post(URL, data=body, headers=headers)
    assert response.status_code == status
    assert _value("webhook_refusals_total", endpoint="events", reason=reason) == before + 1
    assert stored_count(any_engine) == 0
    # The refusal took nothing with it: the real batch still goes in, counted by type.
    delivered = _value("events_ingested_total", type="delivered")
    assert client.post(URL, data=good, headers=signer.headers(good)).status_code == 200
    assert stored_count(any_engine) == 2
    assert _value("events_ingested_total", type="delivered") == delivered + 1


def test_events_are_counted_once_per_type_per_batch(any_engine: Engine) -> None:
    client, signer = _webhook(any_engine)
    body = body_of([event(1), event(2), event(3, "bounce", type="bounce")])
    delivered = _value("events_ingested_total", type="delivered")
    bounced = _value("events_ingested_total", type="bounced")
    assert client.post(URL, data=body, headers=signer.headers(body)).status_code == 200
    assert _value("events_ingested_total", type="delivered") == delivered + 2
    assert _value("events_ingested_total", type="bounced") == bounced + 1


def _inbound_auth(password: str) -> dict[str, str]:
    token = base64.b64encode(f"sendgrid:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_inbound_bad_auth_is_a_refusal_and_a_parsed_reply_counts_its_status(
    any_engine: Engine,
) -> None:
    from sender.web import create_app

    settings = reply_settings(any_engine)
    seeded = seed_replies(any_engine, settings)
    client = create_app(settings).test_client()
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="Hi")
    body, content_type = multipart(fields)
    refused = _value("webhook_refusals_total", endpoint="inbound", reason="bad_auth")
    matched = _value("replies_total", status="matched")
    wrong = client.post(
        "/webhooks/sendgrid/inbound",
        data=body,
        content_type=content_type,
        headers=_inbound_auth("wrong"),
    )
    assert wrong.status_code == 401
    assert _value("webhook_refusals_total", endpoint="inbound", reason="bad_auth") == refused + 1
    assert _value("replies_total", status="matched") == matched
    good = client.post(
        "/webhooks/sendgrid/inbound",
        data=body,
        content_type=content_type,
        headers=_inbound_auth(INBOUND_SECRET),
    )
    assert good.status_code == 200
    assert _value("replies_total", status="matched") == matched + 1
    with session_scope(any_engine) as session:
        assert session.scalar(select(func.count()).select_from(Reply)) == 1


def test_link_clicks_and_bad_tokens_are_counted(any_engine: Engine) -> None:
    from sender.core.models import Action
    from sender.core.tokens import TokenSigner
    from sender.web import create_app

    settings = reply_settings(any_engine)
    seeded = seed_replies(any_engine, settings)
    client = create_app(settings).test_client()
    token = TokenSigner(SECRET).action(message_ref(seeded, "bob@example.org"))
    clicks = _value("link_actions_total", kind="clicked")
    invalid = _value("invalid_links_total")
    assert client.get(f"/a/{token}x").status_code == 400
    assert _value("invalid_links_total") == invalid + 1
    with session_scope(any_engine) as session:
        assert session.scalar(select(func.count()).select_from(Action)) == 0
    assert client.get(f"/a/{token}").status_code == 302
    assert client.get(f"/a/{token}").status_code == 302
    assert _value("link_actions_total", kind="clicked") == clicks + 2  # repeats included
    with session_scope(any_engine) as session:
        assert session.scalar(select(func.count()).select_from(Action)) == 1  # stored once


def test_a_cached_value_is_loaded_at_most_once_per_interval() -> None:
    now = [100.0]
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    cached = metrics.Cached(load, 60, monotonic=lambda: now[0])
    assert [cached.get() for _ in range(5)] == [1] * 5
    now[0] += 59.9
    assert cached.get() == 1
    now[0] += 0.1
    assert cached.get() == 2 and cached.loads == 2
