"""Webhook retries, as SendGrid makes them: any answer but 2xx is tried again, later.

SendGrid's Event Webhook troubleshooting page: "Any other response type [than 2xx]
will result in our server retrying a POST until we receive a 2xx response or the
maximum time has expired. All events are retried at increasing intervals for up
to 24 hours after the event occurs." It publishes no schedule, so the one here
is ours: the first retry a minute after the failure, each wait twice the last,
at most an hour, until the horizon (24 h by default) would be passed; then the
batch is given up, as SendGrid drops it. A connection that fails or gets no
answer counts as a failure too.

Every attempt is signed anew with the time it leaves. SendGrid does not say
whether a retry carries a fresh timestamp; the webhook accepts either (its
tolerance covers the whole horizon), and a fresh one is the case that proves
each retry is checked as a request of its own.

Retries run on one background thread, so `/_admin/simulate` answers after the
first attempts. `time_scale` (real seconds per simulated second) compresses the
schedule: at 1/3600 a simulated hour of back-off passes in one real second.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import requests

DAY = 86_400.0
NO_ANSWER = 0  # the status recorded for a connection error or a timeout


class SignsBodies(Protocol):
    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]: ...


Post = Callable[[str, bytes, Mapping[str, str]], int]


def http_post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    try:
        return requests.post(url, data=body, headers=dict(headers), timeout=30).status_code
    except requests.RequestException:
        return NO_ANSWER


@dataclass(frozen=True)
class RetryPolicy:
    horizon_seconds: float = DAY  # SendGrid: "for up to 24 hours"
    first_delay_seconds: float = 60.0
    factor: float = 2.0
    max_delay_seconds: float = 3_600.0
    time_scale: float = 1.0  # real seconds per simulated second

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: RetryPolicy | None = None) -> RetryPolicy:
        base = base or cls()
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown retry settings: {', '.join(sorted(unknown))}")
        policy = replace(base, **{k: float(v) for k, v in data.items()})
        if min(asdict(policy).values()) < 0 or policy.time_scale == 0 or policy.factor < 1:
            raise ValueError("retry settings must be positive (factor at least 1)")
        return policy

    def as_json(self) -> dict[str, float]:
        return asdict(self)

    def delay(self, retry: int) -> float:
        """Simulated seconds from the failure of attempt `retry` to the next attempt."""
        grown = self.first_delay_seconds * self.factor ** (retry - 1)
        return min(grown, self.max_delay_seconds)

    def schedule(self) -> list[float]:
        """Simulated seconds from the first attempt to each retry, within the horizon."""
        offsets: list[float] = []
        elapsed = 0.0
        for retry in itertools.count(1):
            step = self.delay(retry)
            if step <= 0 or elapsed + step > self.horizon_seconds:
                return offsets
            elapsed += step
            offsets.append(elapsed)
        return offsets  # pragma: no cover - the loop only ends by returning


@dataclass(frozen=True)
class _Pending:
    url: str
    body: bytes
    retries: int  # attempts made so far, less the first
    elapsed: float  # simulated seconds since the first attempt
    generation: int = 0


class Retrier:
    """Posts signed batches and retries the failed ones on a background thread."""

    def __init__(
        self,
        signer: SignsBodies,
        policy: RetryPolicy | None = None,
        post: Post = http_post,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = signer
        self._post = post
        self._wall_clock = wall_clock
        self._policy = self._initial_policy = policy or RetryPolicy()
        self._queue: list[tuple[float, int, _Pending]] = []
        self._order = itertools.count()
        self._stats: Counter[str] = Counter()
        self._changed = threading.Condition()  # an RLock inside: _schedule nests
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._generation = 0  # a reset starts a new one: earlier retries are dropped

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    def configure(self, policy: RetryPolicy) -> None:
        with self._changed:
            self._policy = policy
            self._changed.notify_all()

    def reset(self) -> None:
        """Forget pending retries, counters and policy changes (the admin reset)."""
        with self._changed:
            self._policy = self._initial_policy
            self._queue.clear()
            self._stats.clear()
            self._generation += 1
            self._changed.notify_all()

    def deliver(self, url: str, body: bytes) -> int:
        """The first attempt, now; a failed one is queued for retries. Returns its status."""
        status = self._attempt(url, body)
        with self._changed:
            self._stats["batches"] += 1
            if _delivered(status):
                self._stats["delivered_first_time"] += 1
                return status
            self._stats["failed_first_time"] += 1
            self._schedule(_Pending(url, body, 0, 0.0, self._generation))
        return status

    def snapshot(self) -> dict[str, Any]:
        with self._changed:
            stats = dict(self._stats)
            pending = len(self._queue) + self._in_flight
            policy = self._policy.as_json()
        return {
            "pending": pending,
            "batches": stats.get("batches", 0),
            "delivered_first_time": stats.get("delivered_first_time", 0),
            "delivered_after_retry": stats.get("delivered_after_retry", 0),
            "given_up": stats.get("given_up", 0),
            "retry_attempts": stats.get("retry_attempts", 0),
            "policy": policy,
        }

    # -- the background thread --------------------------------------------
    def _attempt(self, url: str, body: bytes) -> int:
        # Signed as it leaves: a retry carries the time of the retry.
        headers = self._signer.headers(body, timestamp=int(self._wall_clock()))
        return self._post(url, body, headers)

    def _schedule(self, pending: _Pending) -> None:
        with self._changed:
            step = self._policy.delay(pending.retries + 1)
            if pending.elapsed + step > self._policy.horizon_seconds:
                self._stats["given_up"] += 1
                return
            due = time.monotonic() + step * self._policy.time_scale
            later = replace(pending, elapsed=pending.elapsed + step)
            heapq.heappush(self._queue, (due, next(self._order), later))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="webhook-retries", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def _next_due(self) -> _Pending:
        with self._changed:
            while True:
                if self._queue:
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        self._in_flight += 1
                        return heapq.heappop(self._queue)[2]
                    self._changed.wait(wait)
                else:
                    self._changed.wait()

    def _run(self) -> None:
        while True:
            pending = self._next_due()
            status = self._attempt(pending.url, pending.body)
            with self._changed:
                # Counted and rescheduled under one lock: `pending` never reads 0 between.
                self._in_flight -= 1
                if pending.generation != self._generation:
                    continue  # reset meanwhile
                self._stats["retry_attempts"] += 1
                if _delivered(status):
                    self._stats["delivered_after_retry"] += 1
                else:
                    self._schedule(replace(pending, retries=pending.retries + 1))


def _delivered(status: int) -> bool:
    return 200 <= status <= 299


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retry-horizon",
        type=float,
        default=DAY,
        help="retry event posts not answered 2xx for this many (simulated) seconds",
    )
    parser.add_argument(
        "--retry-time-scale",
        type=float,
        default=1.0,
        help="real seconds per simulated second of back-off (1/3600: an hour a second)",
    )
    parser.add_argument("--no-retries", action="store_true", help="post each event batch once")


def retrier_from_args(args: argparse.Namespace, signer: SignsBodies) -> Retrier | None:
    if args.no_retries:
        return None
    settings = {"horizon_seconds": args.retry_horizon, "time_scale": args.retry_time_scale}
    return Retrier(signer, RetryPolicy.from_json(settings))


def configure(retrier: Retrier | None, data: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """`POST /_admin/retries`: change the policy of later retries (status, answer)."""
    if retrier is None:
        return 409, {"error": "started with --no-retries"}
    try:
        retrier.configure(RetryPolicy.from_json(data, retrier.policy))
    except (TypeError, ValueError) as error:
        return 400, {"error": str(error)}
    return 200, retrier.policy.as_json()
