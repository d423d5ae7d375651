from __future__ import annotations

import threading

import pytest
import redis

from sender.send.ratelimit import (
    Demand,
    Limit,
    LocalTokenBucket,
    RedisTokenBucket,
    TokenBucket,
    demands_for,
)

T0 = 1_600_000_000.0
PER_SECOND_10 = Limit("ten", per_hour=36_000, capacity=10)  # 10 tokens a second


@pytest.fixture(params=["redis", "local"])
def bucket(request: pytest.FixtureRequest) -> TokenBucket:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return RedisTokenBucket(redis.Redis.from_url(url))
    return LocalTokenBucket()


def test_a_full_bucket_grants_up_to_capacity_then_says_how_long_to_wait(
    bucket: TokenBucket,
) -> None:
    assert bucket.take([Demand(PER_SECOND_10, 6)], T0) == 0.0
    assert bucket.take([Demand(PER_SECOND_10, 4)], T0) == 0.0
    assert bucket.take([Demand(PER_SECOND_10, 3)], T0) == pytest.approx(0.3)


def test_tokens_refill_at_the_rate_and_never_beyond_capacity(bucket: TokenBucket) -> None:
    assert bucket.take([Demand(PER_SECOND_10, 10)], T0) == 0.0
    assert bucket.take([Demand(PER_SECOND_10, 5)], T0 + 0.5) == 0.0  # 5 refilled
    assert bucket.take([Demand(PER_SECOND_10, 1)], T0 + 0.5) > 0
    # An hour idle refills to capacity (10), not to 36,000.
    assert bucket.take([Demand(PER_SECOND_10, 10)], T0 + 3600) == 0.0
    assert bucket.take([Demand(PER_SECOND_10, 1)], T0 + 3600) > 0


def test_a_demand_larger_than_capacity_goes_once_full_and_leaves_a_debt(
    bucket: TokenBucket,
) -> None:
    assert bucket.take([Demand(PER_SECOND_10, 25)], T0) == 0.0
    # 15 tokens in debt: 1.5 s to get back to zero, 1.6 s before one more token.
    assert bucket.take([Demand(PER_SECOND_10, 1)], T0 + 1.0) == pytest.approx(0.6)
    assert bucket.take([Demand(PER_SECOND_10, 1)], T0 + 1.6) == 0.0


def test_all_or_nothing_across_the_campaign_and_a_warm_up_domain(bucket: TokenBucket) -> None:
    domains = {"gmail.com": 8, "example.org": 2}
    demands = demands_for(7, 3_600_000, 10, domains, {"gmail.com": 36_000})
    assert [d.limit.key for d in demands] == ["campaign:7", "campaign:7:domain:gmail.com"]
    assert bucket.take(demands, T0) == 0.0  # gmail bucket holds 600, campaign 60,000
    gmail = demands[1].limit
    assert bucket.take([Demand(gmail, 600)], T0) > 0  # 592 left
    campaign_only = demands_for(7, 3_600_000, 5, {"example.org": 5}, {"gmail.com": 36_000})
    assert bucket.take(campaign_only, T0) == 0.0  # other domains are not held back
    # A refused multi-bucket take charges no bucket at all.
    assert bucket.take([Demand(demands[0].limit, 1), Demand(gmail, 599)], T0) > 0
    assert bucket.take([Demand(gmail, 592)], T0) == 0.0


def test_concurrent_takers_never_exceed_capacity(redis_url: str) -> None:
    limit = Limit("shared", per_hour=3600, capacity=50)  # 1 token a second
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = RedisTokenBucket(redis.Redis.from_url(redis_url))  # one client per "machine"
        for _ in range(20):
            if mine.take([Demand(limit, 1)], T0) == 0.0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 50  # 160 attempts at one instant: exactly the capacity
