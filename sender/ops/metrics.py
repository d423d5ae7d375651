"""Prometheus metrics: the one place every module takes its counters from.

How numbers reach Prometheus
----------------------------
* Counters and the histogram below are process-local. Code that sends, ingests
  or refuses something increments them here and nothing else.
* Web (gunicorn, several worker processes) and Celery (prefork, several child
  processes) both run in prometheus-client *multiprocess mode* when
  ``PROMETHEUS_MULTIPROC_DIR`` is set before Python starts: each process writes
  its values to memory-mapped files in that directory and a scrape sums them.
  The directory must be empty when the service starts (docker-compose gives
  each container its own tmpfs).
* The web app serves ``GET /metrics`` (sender/web/ops.py). A Celery worker's
  parent process serves the same summed view on its own port
  (``WORKER_METRICS_PORT``, default 9808) once ``install_celery_hooks`` ran;
  Prometheus scrapes every worker container on that port.
* Numbers that must be right across machines are never counted in memory:
  per-wave sent/failed/planned and the Celery queue depth are *collected at
  scrape time* from PostgreSQL and Redis by the collectors at the bottom,
  which only the web app registers (so a fleet of workers does not report the
  same queue N times). A scrape costs O(1): queue depths are one LLEN per
  queue, and the per-wave counts (sums of the waves' batch tallies) come from a
  `Cached` value re-read at most every METRICS_REFRESH_SECONDS per process,
  however often (or by whom) /metrics is fetched.

Label conventions: ``wave`` is the wave id as a string, ``case`` the case slug.
Keep label values to that small, bounded set: never an address or a token.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter as CollectionCounter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_WORKER_PORT = 9808

MESSAGES_SENT = Counter("messages_sent", "Messages the provider accepted.", ["wave", "case"])
MESSAGES_FAILED = Counter(
    "messages_failed", "Messages the provider refused for good.", ["wave", "case"]
)
SENDGRID_RESPONSES = Counter(
    "sendgrid_responses", "Mail-send responses by HTTP status (or 'timeout').", ["status"]
)
SEND_RETRIES = Counter(
    "send_retries", "Batch sends retried, by reason (429, 5xx, timeout...).", ["reason"]
)
BATCH_SECONDS = Histogram(
    "batch_seconds",
    "Time to send one batch, from claim to recorded outcome.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
EVENTS_INGESTED = Counter(
    "events_ingested",
    "Provider events in accepted webhook batches, by normalised type (redeliveries included).",
    ["type"],
)
EVENTS_REJECTED = Counter(
    "events_rejected",
    "Webhook events kept raw instead of taking effect, by kind: could not be stored "
    "(not_an_object, missing_type, missing_timestamp, invalid_text) or stored but refused "
    "for not matching what we sent (mismatched, foreign).",
    ["kind"],
)
WEBHOOK_REFUSALS = Counter(
    "webhook_refusals",
    "Webhook requests refused (bad signature, too old, malformed...).",
    ["endpoint", "reason"],
)
REPLIES = Counter("replies", "Inbound replies parsed, by resulting status.", ["status"])
LINK_ACTIONS = Counter(
    "link_actions", "Supporter clicks on email links, by action kind (repeats included).", ["kind"]
)
INVALID_LINKS = Counter("invalid_links", "Email link requests whose token did not verify.")
LOGIN_THROTTLED = Counter(
    "login_throttled",
    "Requests refused by a failure brake (staff login, inbound secret), by the limit hit: "
    "user_address, address, inbound_address.",
    ["scope"],
)

T = TypeVar("T")


def answer_label(status_code: int | None) -> str:
    """``sendgrid_responses{status}``: the HTTP status, or "timeout" when no answer came."""
    return "timeout" if status_code is None else str(status_code)


def retry_reason(status_code: int | None) -> str:
    """``send_retries{reason}``: a small fixed set, so one odd status adds no new series."""
    if status_code is None:
        return "timeout"  # timed out or the connection was lost: no HTTP answer
    if status_code == 429:
        return "429"
    if 500 <= status_code <= 599:
        return "5xx"
    return "unknown"


def count_answer(status_code: int | None, *, retried: bool = False) -> None:
    """One provider answer to one batch request (never one per recipient)."""
    SENDGRID_RESPONSES.labels(status=answer_label(status_code)).inc()
    if retried:
        SEND_RETRIES.labels(reason=retry_reason(status_code)).inc()


def count_messages(wave: str, case: str, *, sent: int = 0, failed: int = 0) -> None:
    """A batch's outcome, counted once with the batch's totals."""
    if sent:
        MESSAGES_SENT.labels(wave=wave, case=case).inc(sent)
    if failed:
        MESSAGES_FAILED.labels(wave=wave, case=case).inc(failed)


def count_events(types: Iterable[str]) -> None:
    """One webhook batch: one increment per event type, by that type's count."""
    for kind, count in CollectionCounter(types).items():
        EVENTS_INGESTED.labels(type=kind).inc(count)


def count_rejected(kinds: Iterable[str]) -> None:
    """Events kept raw instead of taking effect (one webhook or processing batch), by kind."""
    for kind, count in CollectionCounter(kinds).items():
        EVENTS_REJECTED.labels(kind=kind).inc(count)


def count_refusal(endpoint: str, reason: str) -> None:
    WEBHOOK_REFUSALS.labels(endpoint=endpoint, reason=reason).inc()


def signature_refusal_reason(message: str) -> str:
    """ "stale_timestamp" for a replayed or future timestamp, else "bad_signature".

    sender.track.providers.sendgrid_signature raises one exception type for both; its age messages
    are the ones that speak of how old (or how far ahead) the timestamp is.
    """
    stale = message.startswith("timestamp is ") and ("old" in message or "future" in message)
    return "stale_timestamp" if stale else "bad_signature"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def process_registry() -> CollectorRegistry:
    """The counters of this process, or of every process sharing the multiproc dir."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


@dataclass(frozen=True)
class WaveCount:
    """Messages of one wave in one status, as counted in the database."""

    wave: str
    status: str
    count: int


class Cached(Generic[T]):
    """A value loaded at most once every `seconds`, however often it is asked for.

    One loader at a time: scrapes arriving together wait for the one load
    rather than each running it. `monotonic` is injectable for tests.
    """

    def __init__(
        self,
        load: Callable[[], T],
        seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._seconds, self._monotonic = load, seconds, monotonic
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at: float | None = None
        self.loads = 0

    def get(self) -> T:
        with self._lock:
            now = self._monotonic()
            stale = self._loaded_at is None or now - self._loaded_at >= self._seconds
            if stale or self._value is None:
                self._value = self._load()
                self._loaded_at = now
                self.loads += 1
            return self._value


class QueueDepthCollector(Collector):
    """``queue_depth{queue}`` read from Redis at scrape time."""

    def __init__(self, depths: Callable[[], Mapping[str, int]]) -> None:
        self._depths = depths

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        for queue, depth in sorted(self._depths().items()):
            family.add_metric([queue], depth)
        yield family


class WaveMessagesCollector(Collector):
    """``wave_messages{wave,status}`` from the messages table at scrape time.

    The counters above restart at zero with each process; this gauge is the
    truth across machines and restarts.
    """

    def __init__(self, counts: Callable[[], Iterable[WaveCount]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "wave_messages", "Messages per wave and status (database).", labels=["wave", "status"]
        )
        for row in self._counts():
            family.add_metric([row.wave, row.status], row.count)
        yield family


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition: process counters plus scrape-time collectors."""
    body = generate_latest(process_registry())
    scrape = CollectorRegistry(auto_describe=False)
    for collector in extra:
        scrape.register(collector)
    return body + generate_latest(scrape)


def serve_worker_metrics(port: int) -> None:
    """Serve this host's worker counters on ``port`` (the Celery parent process)."""
    start_http_server(port, registry=process_registry())


def worker_port(environ: Mapping[str, str] = os.environ) -> int:
    return int(environ.get("WORKER_METRICS_PORT", str(DEFAULT_WORKER_PORT)))


def install_celery_hooks(port: int | None = None) -> None:
    """Let `celery worker` serve /metrics: call once from worker.py.

    ``worker_init`` fires in the parent process only, so there is one HTTP
    server per worker container whatever the concurrency. With the prefork
    pool the children's counters reach that server only through
    ``PROMETHEUS_MULTIPROC_DIR`` (docker-compose sets it).
    """
    from celery.signals import worker_init  # lazily: the web app never needs Celery

    chosen = worker_port() if port is None else port

    def _start(**_kwargs: Any) -> None:
        serve_worker_metrics(chosen)

    worker_init.connect(_start, weak=False)
