"""Per-voter rate limits kept in Redis, so every web process counts against the same budget."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from arena.keys import rate_limit_key


class RateLimiter:
    """At most ``limit`` actions of one kind per voter per ``window`` seconds (fixed windows).

    ``limit`` 0 or less switches the limit off.
    """

    def __init__(self, redis_client: aioredis.Redis, prefix: str, action: str, limit: int, window: int = 60):
        self.redis = redis_client
        self.prefix = prefix
        self.action = action
        self.limit = limit
        self.window = window

    async def allow(self, voter_id: str) -> tuple[bool, int]:
        """Count one action; return (allowed, seconds until the window resets)."""
        if self.limit <= 0:
            return True, 0
        window_start = int(time.time()) // self.window * self.window
        key = rate_limit_key(self.prefix, self.action, voter_id, window_start)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window + 1)
        count, _ = await pipe.execute()
        return count <= self.limit, window_start + self.window - int(time.time())
