"""Token buckets that every worker shares: per campaign, and per recipient domain.

With Redis the buckets live in Redis and one Lua script checks and takes from
all the buckets a batch needs at once, so any number of workers on any number
of machines together stay under the limit. Without Redis (the embedded
default, one process) an in-process bucket does the same job.

A taker may ask for more tokens than a bucket holds (a 1,000-recipient batch
against a 200/hour warm-up domain): it is let through once the bucket is
full and leaves the bucket in debt, so the long-run rate still holds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import redis

# KEYS: one hash per bucket (fields: tokens, ts).
# ARGV[1]: now, seconds as a float (the caller's clock, so a compressed demo
#          clock refills at its own speed).
# ARGV[2 + 3i], ARGV[3 + 3i], ARGV[4 + 3i]: capacity, refill per second and
#          tokens wanted for KEYS[i + 1].
# Returns {granted (1 or 0), wait in milliseconds until all could grant}.
# All or nothing: no bucket is charged unless every bucket can pay.
TAKE_SCRIPT = """
local now = tonumber(ARGV[1])
local states = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local capacity = tonumber(ARGV[base])
  local rate = tonumber(ARGV[base + 1])
  local wanted = tonumber(ARGV[base + 2])
  local saved = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(saved[1]) or capacity
  local ts = tonumber(saved[2]) or now
  if now > ts then
    tokens = math.min(capacity, tokens + (now - ts) * rate)
    ts = now
  end
  local needed = math.min(wanted, capacity)
  if tokens + 1e-6 < needed then  -- float error must not cost a millisecond wait
    wait = math.max(wait, (needed - tokens) / rate)
  end
  states[i] = {tokens, ts, wanted, capacity / rate}
end
if wait > 0 then
  return {0, math.ceil(wait * 1000)}
end
for i, key in ipairs(KEYS) do
  local s = states[i]
  redis.call('HSET', key, 'tokens', s[1] - s[3], 'ts', s[2])
  redis.call('EXPIRE', key, math.ceil(s[4] * 2) + 60)
end
return {1, 0}
"""


EPSILON = 1e-6


@dataclass(frozen=True)
class Limit:
    """One bucket: `per_hour` steady rate, bursts up to `capacity` tokens."""

    key: str
    per_hour: int
    capacity: int

    @property
    def per_second(self) -> float:
        return self.per_hour / 3600.0


@dataclass(frozen=True)
class Demand:
    limit: Limit
    tokens: int


@dataclass(frozen=True)
class BucketLevel:
    """A bucket as its last taker left it: not refilled since (tokens below 0 are debt)."""

    key: str  # the Limit's key
    tokens: float
    updated_at: float | None  # the taker's clock, in seconds


class TokenBucket(Protocol):
    def take(self, demands: Sequence[Demand], now: float) -> float:
        """Take every demand at once; 0.0 when granted, else seconds to wait."""
        ...


class RedisTokenBucket:
    def __init__(self, client: redis.Redis, prefix: str = "campaign:rate:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(TAKE_SCRIPT)

    @classmethod
    def from_url(cls, url: str) -> RedisTokenBucket:
        return cls(redis.Redis.from_url(url))

    def take(self, demands: Sequence[Demand], now: float) -> float:
        wanted = [d for d in demands if d.tokens > 0]
        if not wanted:
            return 0.0
        keys = [self._prefix + d.limit.key for d in wanted]
        args: list[float] = [now]
        for d in wanted:
            args += [d.limit.capacity, d.limit.per_second, d.tokens]
        granted, wait_ms = self._script(keys=keys, args=args)
        return 0.0 if int(granted) == 1 else float(wait_ms) / 1000.0

    def levels(self) -> tuple[BucketLevel, ...]:
        """Every bucket in Redis, by key; reads only (for status reports)."""
        found = []
        for raw in self._client.scan_iter(match=self._prefix + "*", count=500):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            tokens, ts = self._client.hmget(key, ["tokens", "ts"])
            if tokens is not None:
                level = BucketLevel(
                    key[len(self._prefix) :], float(tokens), None if ts is None else float(ts)
                )
                found.append(level)
        return tuple(sorted(found, key=lambda b: b.key))


@dataclass
class _State:
    tokens: float
    ts: float


class LocalTokenBucket:
    """The same algorithm for one process, when there is no Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def take(self, demands: Sequence[Demand], now: float) -> float:
        wanted = [d for d in demands if d.tokens > 0]
        with self._lock:
            states = [self._refilled(d.limit, now) for d in wanted]
            wait = 0.0
            for d, state in zip(wanted, states, strict=True):
                short = min(d.tokens, d.limit.capacity) - state.tokens
                if short > EPSILON:  # float error must not cost a millisecond wait
                    wait = max(wait, short / d.limit.per_second)
            if wait > 0:
                return math.ceil(wait * 1000) / 1000.0
            for d, state in zip(wanted, states, strict=True):
                state.tokens -= d.tokens
            return 0.0

    def _refilled(self, limit: Limit, now: float) -> _State:
        state = self._states.setdefault(limit.key, _State(float(limit.capacity), now))
        if now > state.ts:
            state.tokens = min(limit.capacity, state.tokens + (now - state.ts) * limit.per_second)
            state.ts = now
        return state


def campaign_limit(campaign_id: int, per_hour: int) -> Limit:
    # A minute's worth of burst, at least one full batch so a batch can ever go.
    return Limit(f"campaign:{campaign_id}", per_hour, max(1000, per_hour // 60))


def domain_limit(campaign_id: int, domain: str, per_hour: int) -> Limit:
    return Limit(f"campaign:{campaign_id}:domain:{domain}", per_hour, max(1, per_hour // 60))


def demands_for(
    campaign_id: int,
    per_hour: int,
    recipients: int,
    domains: Mapping[str, int],
    domain_rates: Mapping[str, int],
) -> list[Demand]:
    """The buckets one batch must pay: the campaign's, and each warmed-up domain's.

    `domains` counts the batch's recipients per address domain; only domains
    with a rate in `domain_rates` need to be in it.
    """
    demands = [Demand(campaign_limit(campaign_id, per_hour), recipients)]
    for domain, count in sorted(domains.items()):
        rate = domain_rates.get(domain)
        if rate:
            demands.append(Demand(domain_limit(campaign_id, domain, int(rate)), count))
    return demands


_local = LocalTokenBucket()


@lru_cache(maxsize=4)
def _redis_bucket(url: str) -> RedisTokenBucket:
    return RedisTokenBucket.from_url(url)


def bucket_for(redis_url: str | None) -> TokenBucket:
    """Redis when configured (shared by all workers), else this process's bucket."""
    return _redis_bucket(redis_url) if redis_url else _local
