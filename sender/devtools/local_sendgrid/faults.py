"""Fault injection for the local SendGrid: what goes wrong, how often, for whom.

Each mail/send request that passed validation draws at most one fault from a
seeded generator, so a sequential client sees the same faults in the same
order on every run. Forced answers (a status for requests holding a given
address, or for every request) are checked before the random draw.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429 with X-RateLimit-* headers, nothing recorded
    SERVER_ERROR = "server_error"  # 500, nothing recorded
    UNAVAILABLE = "unavailable"  # 503, nothing recorded
    SLOW = "slow"  # answer normally after slow_seconds
    HANG = "hang"  # never answer, nothing recorded
    ACCEPT_THEN_HANG = "accept_then_hang"  # recorded, then never answer
    DROP_BEFORE = "drop_before"  # close the connection, nothing recorded
    DROP_AFTER = "drop_after"  # recorded, then close the connection unanswered


RECORDS_MAIL = frozenset({Fault.SLOW, Fault.ACCEPT_THEN_HANG, Fault.DROP_AFTER})


@dataclass(frozen=True)
class ForcedStatus:
    """Answer `status` to requests holding `email` (or to all when None)."""

    status: int
    email: str | None = None
    remaining: int | None = None  # None: for ever

    def matches(self, emails: frozenset[str]) -> bool:
        return self.email is None or self.email.lower() in emails


@dataclass(frozen=True)
class FaultPlan:
    rates: dict[Fault, float] = field(default_factory=dict)
    seed: int = 0
    slow_seconds: float = 2.0
    hang_seconds: float = 60.0
    rate_limit_reset_seconds: int = 2
    forced: tuple[ForcedStatus, ...] = ()

    def __post_init__(self) -> None:
        total = sum(self.rates.values())
        if any(r < 0 for r in self.rates.values()) or total > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and add up to at most 1, got {total}")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultPlan:
        rates = {Fault(k): float(v) for k, v in (data.get("rates") or {}).items()}
        forced = tuple(
            ForcedStatus(int(f["status"]), f.get("email"), f.get("remaining"))
            for f in data.get("forced") or []
        )
        return cls(
            rates=rates,
            seed=int(data.get("seed", 0)),
            slow_seconds=float(data.get("slow_seconds", 2.0)),
            hang_seconds=float(data.get("hang_seconds", 60.0)),
            rate_limit_reset_seconds=int(data.get("rate_limit_reset_seconds", 2)),
            forced=forced,
        )

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["rates"] = {str(k): v for k, v in self.rates.items()}
        return out


@dataclass(frozen=True)
class Decision:
    fault: Fault | None = None
    status: int | None = None  # a forced status


class FaultInjector:
    """Thread-safe holder of the current plan and its seeded generator."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(plan or FaultPlan())

    def configure(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._random = random.Random(plan.seed)
            self._forced = list(plan.forced)

    def decide(self, addresses: Callable[[], frozenset[str]]) -> Decision:
        """Forced answers first, then a random fault; None of them most of the time.

        `addresses` gives the request's lower-cased addresses; it is called only
        when a forced answer is set (1,000 per request cost more than the draw).
        """
        with self._lock:
            emails = addresses() if self._forced else frozenset()
            for index, forced in enumerate(self._forced):
                if forced.matches(emails):
                    self._use_forced(index, forced)
                    return Decision(status=forced.status)
            draw = self._random.random()
            cumulative = 0.0
            for fault, rate in self.plan.rates.items():
                cumulative += rate
                if draw < cumulative:
                    return Decision(fault=fault)
        return Decision()

    def _use_forced(self, index: int, forced: ForcedStatus) -> None:
        if forced.remaining is None:
            return
        if forced.remaining <= 1:
            del self._forced[index]
        else:
            self._forced[index] = ForcedStatus(forced.status, forced.email, forced.remaining - 1)


def parse_rate_flags(values: list[str]) -> dict[Fault, float]:
    """`--fault-rate rate_limited=0.05 --fault-rate drop_after=0.01` into rates."""
    rates: dict[Fault, float] = {}
    for value in values:
        name, _, rate = value.partition("=")
        try:
            rates[Fault(name.strip())] = float(rate)
        except ValueError as err:
            known = ", ".join(f.value for f in Fault)
            raise ValueError(
                f"bad --fault-rate {value!r}: use KIND=RATE, KIND one of {known}"
            ) from err
    return rates
