"""Metric names, scrape-time collectors and multiprocess aggregation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from ops_fixtures import ops_redis_fixture  # noqa: F401 - provides ops_redis_url
from prometheus_client.parser import text_string_to_metric_families

from sender import metrics


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
from sender import metrics
metrics.MESSAGES_SENT.labels(wave="1", case="c").inc(int(sys.argv[1]))
"""


def test_multiprocess_mode_sums_counters_of_separate_processes(tmp_path: Path) -> None:
    """What gunicorn workers and Celery children rely on: separate processes, one view."""
    environ = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    for count in (2, 5):
        subprocess.run([sys.executable, "-c", _CHILD, str(count)], env=environ, check=True)
    reader = "import sys; from sender import metrics; sys.stdout.buffer.write(metrics.render())"
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
    import time

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
    root = Path(__file__).resolve().parents[1]
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
    try:
        body = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read()
            except OSError:
                time.sleep(0.3)
        assert body, log_path.read_text()[-2000:]
        assert _samples(body)[("messages_sent_total", (("case", "c"), ("wave", "1")))] == 3
        while time.monotonic() < deadline and " ready." not in log_path.read_text():
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert lines, log_path.read_text()[-2000:]
    assert all("level" in json.loads(line) for line in lines)
