"""A battle's state in Redis, and nothing else: its hash (the battle's JSON and its state), the
compare-and-sets that move the state (the scripts of arena.battles.scripts), the per-model
count of answers in flight, and the vote's one atomic write into the vote stream.

Nothing lives in process memory between requests, so any web process can serve any step.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from arena.battles.scripts import BEGIN_REGENERATION, BEGIN_TURN, CAST_VOTE, END_REGENERATION, LEAVE_INFLIGHT
from arena.battles.text_checks import quoted
from arena.battles.types import Battle, BattleState
from arena.errors import BattleNotFound, WrongSession
from arena.keys import battle_key, model_inflight_key
from leaderboard.store.redis_keys import DEFAULT_PREFIX, vote_stream_key
from leaderboard.store.vote_signature import VoteSigner

# Seconds an in-flight count outlives an answer's own time limit before it expires by itself
# (a web process that died mid-answer cannot decrement it).
INFLIGHT_GRACE_SECONDS = 60


def regeneration_field(position: int) -> str:
    """The battle hash's field counting the regenerations of the answers at ``position``."""
    return f"regenerated:{position}"


class BattleStore:
    """Battles in Redis under ``prefix``, each kept ``battle_ttl`` seconds after its last write."""

    def __init__(self, redis_client: aioredis.Redis, prefix: str = DEFAULT_PREFIX, battle_ttl: int = 24 * 3600,
                 signer: VoteSigner | None = None):
        self.redis = redis_client
        # signs each vote's stream entry; without one the entries are unsigned and the worker refuses them
        self.signer = signer
        self.prefix = prefix
        self.battle_ttl = battle_ttl
        self._begin_turn = redis_client.register_script(BEGIN_TURN)
        self._begin_regeneration = redis_client.register_script(BEGIN_REGENERATION)
        self._end_regeneration = redis_client.register_script(END_REGENERATION)
        self._leave_inflight = redis_client.register_script(LEAVE_INFLIGHT)
        self._cast_vote = redis_client.register_script(CAST_VOTE)

    def key(self, battle_id: str) -> str:
        return battle_key(self.prefix, battle_id)

    async def save(self, battle: Battle, state: BattleState, **fields) -> None:
        """Write the battle and its state (and any further ``fields`` of its hash) at once, and
        keep it another ``battle_ttl`` seconds."""
        key = self.key(battle.battle_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"battle": battle.model_dump_json(), "state": state, **fields})
        pipe.expire(key, self.battle_ttl)
        await pipe.execute()

    async def load(self, battle_id: str, session_id: str) -> tuple[Battle, BattleState]:
        """The battle and its state, for the session it belongs to (BattleNotFound, WrongSession)."""
        if not isinstance(battle_id, str) or not battle_id.isalnum() or len(battle_id) > 64:
            raise BattleNotFound(f"no battle {quoted(battle_id)}: battle ids are the hex strings returned on creation",
                                 battle_id=battle_id)
        stored = await self.redis.hmget(self.key(battle_id), ["battle", "state"])
        if stored[0] is None:
            raise BattleNotFound(f"no battle {battle_id!r} (unknown, or expired after {self.battle_ttl} s)",
                                 battle_id=battle_id)
        battle = Battle.model_validate_json(stored[0])
        if battle.session_id != session_id:
            raise WrongSession(f"battle {battle_id} belongs to another session: only the voter who saw it may "
                               "continue or vote", battle_id=battle_id)
        return battle, stored[1].decode()

    async def reread(self, battle_id: str) -> Battle:
        """The battle as stored now (read again under a lock this process holds)."""
        return Battle.model_validate_json(await self.redis.hget(self.key(battle_id), "battle"))

    async def set_state(self, battle_id: str, state: BattleState) -> None:
        await self.redis.hset(self.key(battle_id), "state", state)

    # -- the compare-and-sets (arena.battles.scripts) --

    async def begin_turn(self, battle_id: str) -> str:
        """``ok:<previous state>`` once the battle is ``streaming``, else the state that refused the turn."""
        return (await self._begin_turn(keys=[self.key(battle_id)])).decode()

    async def begin_regeneration(self, battle_id: str, position: int, cap: int) -> tuple[str, bytes | int | None]:
        """(``ok``, the battle's JSON) once it is ``regenerating``; (``cap``, count), or (state, None)."""
        verdict = await self._begin_regeneration(keys=[self.key(battle_id)], args=[regeneration_field(position), cap])
        return verdict[0].decode(), verdict[1] if len(verdict) > 1 else None

    async def end_regeneration(self, battle_id: str) -> None:
        """Hand a battle still ``regenerating`` back as ``ready`` (nothing was replaced)."""
        await self._end_regeneration(keys=[self.key(battle_id)])

    async def replace_answer(self, battle: Battle, position: int) -> None:
        """Store the battle with its regenerated answer at ``position``, ready again (with the side's count)."""
        await self.save(battle, "ready", **{regeneration_field(position): battle.regenerations[position]})

    async def cast_vote(self, battle_id: str, vote_id: str, event_json: str, text_json: str, limit_keys: list[str],
                        limit_args: list) -> list:
        """The vote's one atomic write (CAST_VOTE): {'ok'}, {state} or {'limited', i, retry_us}."""
        signature = self.signer.signature(event_json, text_json) if self.signer is not None else ""
        return await self._cast_vote(keys=[self.key(battle_id), vote_stream_key(self.prefix), *limit_keys],
                                     args=[vote_id, event_json, text_json, signature, *limit_args])

    @asynccontextmanager
    async def answer_in_flight(self, model: str, expires_after: float):
        """Count one answer of ``model`` in flight for the duration of the block; the count
        expires by itself ``expires_after`` + INFLIGHT_GRACE_SECONDS seconds on."""
        key = model_inflight_key(self.prefix, model)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, int(expires_after) + INFLIGHT_GRACE_SECONDS)
        await pipe.execute()
        try:
            yield
        finally:
            await self._leave_inflight(keys=[key])
