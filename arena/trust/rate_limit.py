"""Rate limits kept in Redis, so every web process counts against the same budget.

Each limit ("60 a minute", "1000 a day") is a sliding window: the period is cut into
``SLICES`` slices, one hash field counting the actions of each, and an action is allowed while
the slices of the last period *and one slice more* hold fewer than ``count``. Any window of the
period's length overlaps at most that many slices, so no window ever sees more than ``count``
actions: no boundary at which twice the limit gets through (a fixed window's flaw), and no burst
on top of a full refill (a token bucket's). Memory is at most ``SLICES + 1`` small fields per
subject. Several limits of one action (per voter, per session, per model pair; a minute, a day)
are checked and spent by one Lua script, atomically and all or nothing: a refused action spends
none of them. The clock is Redis's (``TIME``), the same for every web process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from arena.errors import RateLimited
from arena.keys import rate_limit_key

# Slices per period: the window is counted over SLICES + 1 slices, so it is up to 1/SLICES
# longer than the period (the strict side), and a refused caller learns to the slice when to retry.
SLICES = 60

# Lua functions shared by the limiter's own script and by scripts that spend limits together with
# the write they guard (the vote: CAST_VOTE in arena.battles.scripts). ``keys``/``args`` are KEYS/ARGV, the limits start
# at ``key0``/``arg0``: per limit its count and its slice width in microseconds.
LIMIT_FUNCTIONS = """
local function redis_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end

-- nil if every limit allows one more action now, else {i (1-based among the limits), retry_us}
local function check_limits(keys, key0, args, arg0, slices, now)
  for i = 1, #keys - key0 + 1 do
    local key = keys[key0 + i - 1]
    local count = tonumber(args[arg0 + 2 * i - 2])
    local width = tonumber(args[arg0 + 2 * i - 1])
    local first = math.floor(now / width) - slices
    local stored = redis.call('HGETALL', key)
    local used = 0
    local held = {}
    for j = 1, #stored, 2 do
      local at = tonumber(stored[j])
      local n = tonumber(stored[j + 1])
      if at < first then
        redis.call('HDEL', key, stored[j])
      elseif n > 0 then
        used = used + n
        held[#held + 1] = {at, n}
      end
    end
    if used + 1 > count then
      -- the wait: until enough of the oldest slices have left the window
      table.sort(held, function(a, b) return a[1] < b[1] end)
      local excess = used + 1 - count
      for _, entry in ipairs(held) do
        excess = excess - entry[2]
        if excess <= 0 then return {i, (entry[1] + slices + 1) * width - now} end
      end
      return {i, (slices + 1) * width}
    end
  end
  return nil
end

-- count one action in every limit; returns the slice each was counted in
local function spend_limits(keys, key0, args, arg0, slices, now)
  local spent = {}
  for i = 1, #keys - key0 + 1 do
    local key = keys[key0 + i - 1]
    local width = tonumber(args[arg0 + 2 * i - 1])
    local slice = math.floor(now / width)
    redis.call('HINCRBY', key, slice, 1)
    redis.call('PEXPIRE', key, math.ceil((slices + 2) * width / 1000))
    spent[i] = slice
  end
  return spent
end
"""

# KEYS: one hash per limit; ARGV: the limits' (count, width) pairs, then SLICES. Returns
# {0, i, retry_us} when limit i refuses, else {1, slice_1, slice_2, ...} (for a refund).
_ACQUIRE = LIMIT_FUNCTIONS + """
local slices = tonumber(ARGV[#ARGV])
local now = redis_now()
local refused = check_limits(KEYS, 1, ARGV, 1, slices, now)
if refused then return {0, refused[1], refused[2]} end
local spent = spend_limits(KEYS, 1, ARGV, 1, slices, now)
local result = {1}
for i = 1, #spent do result[i + 1] = spent[i] end
return result
"""

# Give back one action per limit, in the slice it was counted in (it was refused further on).
_REFUND = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('HGET', KEYS[i], ARGV[i]) or '0') > 0 then
    redis.call('HINCRBY', KEYS[i], ARGV[i], -1)
  end
end
return 1
"""

MINUTE = 60
HOUR = 3600
DAY = 24 * 3600


@dataclass(frozen=True)
class Rate:
    """At most ``count`` actions per ``seconds`` (``count`` 0 or less: no limit)."""

    count: int
    seconds: int

    @property
    def active(self) -> bool:
        return self.count > 0

    @property
    def period(self) -> str:
        return {MINUTE: "a minute", HOUR: "an hour", DAY: "a day"}.get(self.seconds, f"per {self.seconds} s")

    @property
    def slice_us(self) -> int:
        return max(1, self.seconds * 1_000_000 // SLICES)


@dataclass(frozen=True)
class Limit:
    """One rate applied to one subject: ``subject`` says whose budget (``voter:...``,
    ``session:...``, ``pair:...``) and ``what`` how the refusal names it to the user."""

    rate: Rate
    subject: str
    what: str


def subject(kind: str, *parts: str) -> str:
    """A bucket's subject, bounded in length whatever the caller sent (a session id is input)."""
    text = ":".join(parts)
    if len(text) > 64:
        text = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{kind}:{text}"


class RateLimiter:
    """Checks and spends several limits of one action at once (``acquire``), or refuses with the
    limit that binds and when to retry (``RateLimited``, 429)."""

    def __init__(self, redis_client: aioredis.Redis, prefix: str, action: str):
        self.redis = redis_client
        self.prefix = prefix
        self.action = action
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._refund = redis_client.register_script(_REFUND)

    def _keys(self, limits: Sequence[Limit]) -> list[str]:
        return [rate_limit_key(self.prefix, self.action, f"{limit.subject}:{limit.rate.seconds}") for limit in limits]

    def script_parts(self, limits: Sequence[Limit]) -> tuple[list[Limit], list[str], list]:
        """(active limits, their keys, their ARGV: (count, width) pairs then SLICES) for a script
        built on LIMIT_FUNCTIONS."""
        active = [limit for limit in limits if limit.rate.active]
        args: list = []
        for limit in active:
            args += [limit.rate.count, limit.rate.slice_us]
        return active, self._keys(active), [*args, SLICES]

    def refusal(self, limits: Sequence[Limit], index: int, retry_us: int) -> RateLimited:
        """The 429 for limit ``index`` (1-based, of the active limits) refusing, to retry in ``retry_us``."""
        limit = limits[int(index) - 1]
        retry_after = max(1, math.ceil(int(retry_us) / 1_000_000))
        return RateLimited(f"too many {self.action} {limit.what}: the limit is {limit.rate.count} "
                           f"{limit.rate.period}; try again in {retry_after} s", retry_after=retry_after)

    async def acquire(self, limits: Sequence[Limit]) -> Spent:
        """Spend one action of every active limit, or none and raise RateLimited."""
        active, keys, args = self.script_parts(limits)
        if not active:
            return Spent([], [])
        verdict = await self._acquire(keys=keys, args=args)
        if verdict[0] == 1:
            return Spent(keys, [int(slice_) for slice_ in verdict[1:]])
        raise self.refusal(active, verdict[1], verdict[2])

    async def refund(self, spent: Spent) -> None:
        """Give back what ``acquire`` spent (the action was refused further on, so it did not count)."""
        if spent.keys:
            await self._refund(keys=spent.keys, args=spent.slices)


@dataclass(frozen=True)
class Spent:
    """What one ``acquire`` counted, and where: enough to give it back."""

    keys: list[str]
    slices: list[int]
