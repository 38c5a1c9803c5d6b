"""Runtime health of model endpoints: the circuit breaker, recent errors and latencies, in Redis.

Benching is a judgement about the endpoint, so one bad request must not make it: a model is
benched after ``failures`` failures within ``window`` seconds that came from at least ``voters``
different voters (one voter, or one prompt resent a few times, cannot take a model out), or after
``streak`` failures in a row within the window with no answer finished in between, whoever asked
(an endpoint that only fails: on a small arena, or behind one address, there may be no second
voter to see it; a model that still answers anyone breaks the streak).
Failures the request itself caused (HTTP 400/413/422: a prompt longer than the context, a
content filter, a parameter the server refuses) fail that round and are recorded, but never
count. A benched model is probed with a short prompt (drawn at random:
arena.models.health_check) after ``first_probe`` seconds, then after twice as long each time a
probe fails (up to ``max_probe``); the first probe that answers (whole: not cut by the answer
checks) puts it back. An answer cut by the size cap or the time limit counts as a failure.
Every failure is kept with its time and reason (newest first, the last ``ERRORS_KEPT``) for the
operator (``models list``) and the model's owner (``/api/owner/models``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from arena.keys import (
    model_answered_key,
    model_benched_key,
    model_errors_key,
    model_failures_key,
    model_latency_key,
    model_probe_lock_key,
)
from leaderboard.store.stream import text

# HTTP statuses that say the request was at fault, not the endpoint.
CLIENT_CAUSED_STATUSES = frozenset({400, 413, 422})
# EndpointError kinds that are nobody's fault (the arena shutting down).
UNCOUNTED_KINDS = frozenset({"closed"})
ERRORS_KEPT = 50
LATENCIES_KEPT = 500

# Add one failure to the window; bench when the window holds enough failures from enough voters,
# or a streak of failures since the model last answered. KEYS: failures zset, benched hash, last
# answer time. ARGV: now, window, member (voter|id), failures, voters, reason, first probe delay,
# streak (0: off), streak reason. Returns 1 when this failure benched the model.
_RECORD_FAILURE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local function bench(reason)
  redis.call('HSET', KEYS[2], 'reason', reason, 'since', ARGV[1], 'next_probe', now + tonumber(ARGV[7]), 'probes', 0)
  return 1
end
local streak = tonumber(ARGV[8])
if streak > 0 then
  local answered = redis.call('GET', KEYS[3])
  local since = answered and ('(' .. answered) or '-inf'
  if redis.call('ZCOUNT', KEYS[1], since, '+inf') >= streak then return bench(ARGV[9]) end
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members < tonumber(ARGV[4]) then return 0 end
local voters, distinct = {}, 0
for _, member in ipairs(members) do
  local voter = string.match(member, '^(.*)|')
  if voter and not voters[voter] then voters[voter] = true; distinct = distinct + 1 end
end
if distinct < tonumber(ARGV[5]) then return 0 end
return bench(ARGV[6])
"""


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 3
    voters: int = 2
    window: float = 300.0
    streak: int = 6  # failures in a row (no answer between) that bench whoever saw them; 0: off
    first_probe: float = 30.0
    max_probe: float = 900.0

    def probe_delay(self, probes_failed: int) -> float:
        return min(self.first_probe * 2 ** probes_failed, self.max_probe)


def client_caused(error) -> bool:
    """True for a failure the request caused (it fails the round; it does not bench the model)."""
    return getattr(error, "status_code", None) in CLIENT_CAUSED_STATUSES


def failure_reason(error) -> str:
    """The failure in words, without the model's name (the owner knows which model it is)."""
    return str(getattr(error, "detail", None) or error)[:500]


class ModelHealth:
    """The breaker and the health records of every model, shared through Redis (asyncio client)."""

    def __init__(self, redis_client, prefix: str, policy: BreakerPolicy | None = None):
        self.redis = redis_client
        self.prefix = prefix
        self.policy = policy or BreakerPolicy()
        self._record_failure = redis_client.register_script(_RECORD_FAILURE)

    async def record_failure(self, model: str, voter_id: str | None, error, *, now: float | None = None) -> bool:
        """Record one failed answer; True if it benched the model."""
        now = time.time() if now is None else now
        counted = not client_caused(error) and getattr(error, "kind", None) not in UNCOUNTED_KINDS
        await self._remember_error(model, now, error, counted=counted)
        if not counted:
            return False
        member = f"{voter_id or 'unknown'}|{uuid.uuid4().hex}"
        benched = await self._record_failure(
            keys=[model_failures_key(self.prefix, model), model_benched_key(self.prefix, model),
                  model_answered_key(self.prefix, model)],
            args=[now, self.policy.window, member, self.policy.failures, self.policy.voters,
                  f"{self.policy.failures}+ failures in {self.policy.window:g}s, the last: {failure_reason(error)}",
                  self.policy.first_probe, self.policy.streak,
                  f"{self.policy.streak} failures in a row, no answer between, the last: {failure_reason(error)}"],
        )
        return bool(benched)

    async def _remember_error(self, model: str, now: float, error, *, counted: bool, source: str = "battle") -> None:
        entry = {"at": now, "kind": getattr(error, "kind", "error"), "status_code": getattr(error, "status_code", None),
                 "reason": failure_reason(error), "counts_towards_bench": counted, "source": source}
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(model_errors_key(self.prefix, model), json.dumps(entry))
        pipe.ltrim(model_errors_key(self.prefix, model), 0, ERRORS_KEPT - 1)
        await pipe.execute()

    async def record_answer(self, model: str, first_token_seconds: float, *, now: float | None = None) -> None:
        """One finished answer: its latency, and the end of any failure streak."""
        now = time.time() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(model_answered_key(self.prefix, model), repr(now), ex=int(self.policy.window) + 1)
        pipe.lpush(model_latency_key(self.prefix, model), round(first_token_seconds * 1000, 1))
        pipe.ltrim(model_latency_key(self.prefix, model), 0, LATENCIES_KEPT - 1)
        await pipe.execute()

    async def bench(self, model: str, reason: str, now: float | None = None) -> None:
        """Bench a model outright (the operator's hand, or a test)."""
        now = time.time() if now is None else now
        await self.redis.hset(model_benched_key(self.prefix, model),
                              mapping={"reason": reason, "since": now, "next_probe": now + self.policy.first_probe,
                                       "probes": 0})

    async def benched(self, models) -> dict[str, dict]:
        """The bench records (reason, since, next_probe, probes) of those of ``models`` benched now."""
        models = list(models)
        if not models:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for model in models:
            pipe.hgetall(model_benched_key(self.prefix, model))
        records = await pipe.execute()
        return {model: _bench_record(record) for model, record in zip(models, records) if record}

    async def claim_probe(self, model: str, record: dict, now: float | None = None) -> bool:
        """True if a probe of ``model`` is due and this process won the right to run it."""
        now = time.time() if now is None else now
        if record.get("next_probe", 0) > now:
            return False
        return bool(await self.redis.set(model_probe_lock_key(self.prefix, model), "1", nx=True,
                                         ex=int(self.policy.max_probe) + 60))

    async def probe_passed(self, model: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(model_benched_key(self.prefix, model), model_failures_key(self.prefix, model),
                    model_probe_lock_key(self.prefix, model))
        await pipe.execute()

    async def probe_failed(self, model: str, error, now: float | None = None) -> None:
        now = time.time() if now is None else now
        key = model_benched_key(self.prefix, model)
        probes = int(await self.redis.hincrby(key, "probes", 1))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"next_probe": now + self.policy.probe_delay(probes),
                                "last_probe_error": failure_reason(error)})
        pipe.delete(model_probe_lock_key(self.prefix, model))
        await pipe.execute()
        await self._remember_error(model, now, error, counted=False, source="probe")

    async def recent_errors(self, model: str, count: int = 20) -> list[dict]:
        return [json.loads(raw) for raw in await self.redis.lrange(model_errors_key(self.prefix, model), 0, count - 1)]

    async def latencies_ms(self, model: str) -> list[float]:
        return [float(raw) for raw in await self.redis.lrange(model_latency_key(self.prefix, model), 0, -1)]


def _bench_record(record: dict) -> dict:
    values = {text(key): text(value) for key, value in record.items()}
    for field in ("since", "next_probe"):
        if field in values:
            values[field] = float(values[field])
    if "probes" in values:
        values["probes"] = int(values["probes"])
    return values


def percentiles(values: list[float], points=(50, 90, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles ``p50``, ``p90``, ... of ``values`` (None when there are none)."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for point in points:
        if not ordered:
            result[f"p{point}"] = None
            continue
        rank = max(1, -(-point * len(ordered) // 100))  # ceil(point/100 * n)
        result[f"p{point}"] = ordered[rank - 1]
    return result
