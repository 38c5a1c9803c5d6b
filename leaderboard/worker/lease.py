"""The refit lease: one active worker.

Every web process may start a worker (behind a load balancer there are several), but only the
holder of a lease (``worker_lock_key(prefix)``: SET NX PX, renewed every third of its TTL by a
compare-and-renew script) consumes, refits and publishes; the others stand by and poll the
lease, taking over within one TTL of the holder dying.
"""

from __future__ import annotations

import math
import time
import uuid

import redis

LEASE_TTL_MS = 10_000


class RefitLease:
    """A lease in Redis held by the one worker that consumes, refits and publishes.

    ``hold()`` takes the lease if it is free or renews it if it is ours, and says whether we hold
    it. The token is unique per worker instance, so a worker never renews someone else's lease.
    """

    _RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
              "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
    _RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('del', KEYS[1]) else return 0 end")

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl_ms: int = LEASE_TTL_MS):
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = f"{holder}/{uuid.uuid4().hex[:12]}"
        self._renewed_at = -math.inf

    @property
    def poll_seconds(self) -> float:
        """How often a standby looks at the lease, and the holder renews it: a third of the TTL."""
        return self.ttl_ms / 3000

    def hold(self) -> bool:
        # Renewing every third of the TTL is enough: until then the lease is certainly still ours.
        now = time.monotonic()
        if now - self._renewed_at < self.poll_seconds:
            return True
        held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms)
                    or self.client.eval(self._RENEW, 1, self.key, self.token, self.ttl_ms))
        self._renewed_at = now if held else -math.inf
        return held

    def release(self) -> None:
        self._renewed_at = -math.inf
        self.client.eval(self._RELEASE, 1, self.key, self.token)
