"""The sliding-window limiter against a real Redis: never more than the limit in any window of the
period (a fixed window lets twice through at a boundary), all-or-nothing across limits, refunds."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from arena.errors import RateLimited
from arena.trust.rate_limit import Limit, Rate, RateLimiter


async def hammer(limiter, limits, seconds: float) -> list[float]:
    """Try as often as possible for ``seconds``; the times (Redis's clock) of the allowed tries."""
    allowed = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await limiter.acquire(limits)
        except RateLimited:
            pass
        else:
            seconds_, micros = await limiter.redis.time()
            allowed.append(seconds_ + micros / 1e6)
    return allowed


async def test_no_window_of_the_period_ever_sees_more_than_the_limit(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, "arena", "votes")
    limits = [Limit(Rate(5, 1), "voter:x", "from x")]
    allowed = await hammer(limiter, limits, 3.5)
    await client.aclose()
    most = max(sum(1 for other in allowed if start <= other < start + 1.0) for start in allowed)
    print(f"sliding window 5 per 1 s, 3.5 s of tries: {len(allowed)} allowed, at most {most} in any 1 s window")
    assert most <= 5
    assert len(allowed) >= 3 * 5 - 5  # and it does refill: about 5 a second over the run


async def test_several_limits_are_spent_all_or_nothing_and_refunded(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, "arena", "votes")
    wide = Limit(Rate(100, 60), "voter:y", "from y")
    tight = Limit(Rate(2, 60), "session:s", "in this session")
    spent = [await limiter.acquire([wide, tight]) for _ in range(2)]
    for _ in range(100):
        with pytest.raises(RateLimited, match="in this session: the limit is 2 a minute") as refused:
            await limiter.acquire([wide, tight])
        assert 1 <= refused.value.retry_after <= 62
    # the refused tries spent nothing of the wide limit: 98 of its 100 are left
    for _ in range(98):
        await limiter.acquire([wide])
    with pytest.raises(RateLimited):
        await limiter.acquire([wide])
    await limiter.refund(spent[0])
    await limiter.acquire([tight])  # the refunded action is available again
    await client.aclose()


async def test_a_zero_limit_is_off_and_costs_no_round_trip(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    limiter = RateLimiter(client, "arena", "votes")
    for _ in range(200):
        await limiter.acquire([Limit(Rate(0, 60), "voter:z", "from z")])
    assert await client.dbsize() == 0
    await client.aclose()
