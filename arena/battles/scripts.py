"""The battle engine's Lua scripts, in one place: each is one atomic step of a battle's state in
Redis (arena.battles.store registers them and names their keys and arguments).

A battle's hash holds ``battle`` (its JSON), ``state`` (open, streaming, ready, regenerating,
failed, voted), ``vote_id`` once voted, and ``regenerated:<position>`` counts. The scripts are
compare-and-sets of ``state``, so two requests can never run a turn, a regeneration or a vote of
one battle at once, whichever web process they reach.
"""

from __future__ import annotations

from arena.trust.rate_limit import LIMIT_FUNCTIONS

# BEGIN_TURN (KEYS battle): take the battle for a new turn, if it is open (no turn yet) or ready
# (the last turn finished, no vote). Returns 'ok:<previous state>' (the state to hand back if the
# turn is refused before it starts), 'missing', or the state that refused it.
BEGIN_TURN = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'open' and state ~= 'ready' then return state end
redis.call('HSET', KEYS[1], 'state', 'streaming')
return 'ok:' .. state
"""

# BEGIN_REGENERATION (KEYS battle; ARGV the side's count field, the cap): only a battle whose
# latest turn is ready (every answer finished, no vote), only while the side is under the cap, and
# one at a time. Returns {'ok', battle} (read under the lock: what the regeneration replaces an
# answer of), {state} or {'cap', count}. The count is a field of its own because Lua cannot
# cheaply read it out of the battle's JSON; both are written together when an answer is replaced.
BEGIN_REGENERATION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'ready' then return {state} end
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if done >= tonumber(ARGV[2]) then return {'cap', done} end
redis.call('HSET', KEYS[1], 'state', 'regenerating')
return {'ok', redis.call('HGET', KEYS[1], 'battle')}
"""

# END_REGENERATION (KEYS battle): a regeneration that replaced nothing (the model failed, the
# request was cancelled) hands the battle back as it was: ready, with the previous answer.
END_REGENERATION = """
if redis.call('HGET', KEYS[1], 'state') == 'regenerating' then
  redis.call('HSET', KEYS[1], 'state', 'ready')
end
return 1
"""

# LEAVE_INFLIGHT (KEYS a model's in-flight counter): one answer fewer in flight; the counter is
# deleted at zero so an expired-then-decremented key can never go negative and hold a model out
# of battles. Returns the answers still in flight.
LEAVE_INFLIGHT = """
local left = redis.call('DECR', KEYS[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left
"""

# CAST_VOTE: the vote marker, the stream entry and the voter's rate limits are written together
# or not at all (one round trip). KEYS battle, stream, then the limits' keys; ARGV vote id, event,
# the vote's text ('' unless the operator releases text: then it goes in the entry's 'text'
# field), the event's signature (the entry's 'sig' field, leaderboard.store.vote_signature; ''
# for none, which the worker refuses), then the limits' arguments (arena.trust.rate_limit).
# Returns {'ok'}, {state} or {'limited', i, retry_us}.
CAST_VOTE = LIMIT_FUNCTIONS + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'ready' then return {state} end
local slices = tonumber(ARGV[#ARGV])
local now = redis_now()
local refused = check_limits(KEYS, 3, ARGV, 5, slices, now)
if refused then return {'limited', refused[1], refused[2]} end
redis.call('HSET', KEYS[1], 'state', 'voted', 'vote_id', ARGV[1])
local entry = {'event', ARGV[2]}
if ARGV[3] ~= '' then table.insert(entry, 'text'); table.insert(entry, ARGV[3]) end
if ARGV[4] ~= '' then table.insert(entry, 'sig'); table.insert(entry, ARGV[4]) end
redis.call('XADD', KEYS[2], '*', unpack(entry))
spend_limits(KEYS, 3, ARGV, 5, slices, now)
return {'ok'}
"""
