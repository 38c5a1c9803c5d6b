"""The battle engine: one engine for two-way and K-way battles, state kept in Redis.

A battle is created with K models chosen by the matchmaker, streams one or more turns of
answers from all K concurrently, and accepts exactly one vote once every answer has finished.
Nothing lives in process memory between requests, so any web process can serve any step.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager, suppress

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from arena.battles.drain import REGENERATION_ENDED, Drain
from arena.battles.text_checks import lone_surrogate_at, quoted
from arena.battles.types import Battle, BattleState, RegenerationProgress, Turn, TurnProgress, VoteReceipt, state_error
from arena.battles.votes import checked_choice, checked_feedback, vote_event, vote_text
from arena.errors import (
    ArenaBusy,
    BattleConflict,
    BattleError,
    BattleNotFound,
    NoModelsAvailable,
    RateLimited,
    RegenerationFailed,
    RegenerationOff,
    UnknownLabel,
    WrongSession,
)
from arena.keys import battle_key, model_inflight_key
from arena.metrics import NoMetrics
from arena.models import availability
from arena.models.availability import ModelStatus
from arena.models.health import PROBE_PROMPT, ModelHealth
from arena.trust.rate_limit import DAY, LIMIT_FUNCTIONS, MINUTE, Limit, Rate, RateLimiter, Spent, subject
from arena.trust.self_identification import ModelIdentity, battle_flags
from leaderboard.data.events import VoteEvent
from leaderboard.store.redis_keys import DEFAULT_PREFIX, vote_stream_key

log = logging.getLogger(__name__)

# Matchmaker updates that may wait at once behind accepted votes (see _teach_matchmaker_soon).
MAX_PENDING_LESSONS = 1024

# Compare-and-set of the battle state, so two requests can never run a turn at once.
_BEGIN_TURN = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'open' and state ~= 'ready' then return state end
redis.call('HSET', KEYS[1], 'state', 'streaming')
return 'ok:' .. state
"""

# Compare-and-set of a regeneration (KEYS battle; ARGV the side's count field, the cap): only a
# battle whose latest turn is ready (every answer finished, no vote), only while the side is under
# the cap, and one at a time. Returns {'ok', battle} (read under the lock: what the regeneration
# replaces an answer of), {state} or {'cap', count}. The count is a field of its own because Lua
# cannot cheaply read it out of the battle's JSON; both are written together when an answer is replaced.
_BEGIN_REGENERATION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'ready' then return {state} end
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if done >= tonumber(ARGV[2]) then return {'cap', done} end
redis.call('HSET', KEYS[1], 'state', 'regenerating')
return {'ok', redis.call('HGET', KEYS[1], 'battle')}
"""

# A regeneration that replaced nothing (the model failed, the request was cancelled) hands the
# battle back as it was: ready, with the previous answer.
_END_REGENERATION = """
if redis.call('HGET', KEYS[1], 'state') == 'regenerating' then
  redis.call('HSET', KEYS[1], 'state', 'ready')
end
return 1
"""


def regeneration_field(position: int) -> str:
    """The battle hash's field counting the regenerations of the answers at ``position``."""
    return f"regenerated:{position}"


# One answer fewer in flight; the counter is deleted at zero so an expired-then-decremented key
# can never go negative and hold a model out of battles.
_LEAVE = """
local left = redis.call('DECR', KEYS[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left
"""
# Seconds an in-flight count outlives an answer's own time limit before it expires by itself
# (a web process that died mid-answer cannot decrement it).
INFLIGHT_GRACE_SECONDS = 60

# The vote marker, the stream entry and the voter's rate limits are written together or not at
# all (one round trip): KEYS battle, stream, then the limits' keys; ARGV vote id, event, the vote's
# text ('' unless the operator releases text: then it goes in the entry's 'text' field), then the
# limits' arguments (arena.trust.rate_limit). Returns {'ok'}, {state} or {'limited', i, retry_us}.
_CAST_VOTE = LIMIT_FUNCTIONS + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'ready' then return {state} end
local slices = tonumber(ARGV[#ARGV])
local now = redis_now()
local refused = check_limits(KEYS, 3, ARGV, 4, slices, now)
if refused then return {'limited', refused[1], refused[2]} end
redis.call('HSET', KEYS[1], 'state', 'voted', 'vote_id', ARGV[1])
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'event', ARGV[2], 'text', ARGV[3])
else
  redis.call('XADD', KEYS[2], '*', 'event', ARGV[2])
end
spend_limits(KEYS, 3, ARGV, 4, slices, now)
return {'ok'}
"""


class BattleService:
    """Creates battles, streams their turns, and takes their votes."""

    def __init__(self, redis_client: aioredis.Redis, endpoints, matchmaker, *, prefix: str = DEFAULT_PREFIX,
                 battle_ttl: int = 24 * 3600, max_prompt_chars: int = 8000, max_turns: int = 8,
                 progress_interval: float = 0.05, battles_per_minute: int = 0, battles_per_day: int = 0,
                 votes_per_minute: int = 0, votes_per_day: int = 0, pair_votes_per_day: int = 0,
                 max_concurrent_answers: int = 0, max_regenerations: int = 2, metrics: NoMetrics | None = None,
                 drain: Drain | None = None, keep_text: bool = False,
                 health: ModelHealth | None = None):
        self.redis = redis_client
        self.drain = drain or Drain()  # closed when this process stops: new battles and turns refused
        # the operator releases prompts and answers (--release-text): keep each vote's text beside
        # its event in the stream (the export's only source of text; otherwise text lives only as
        # long as the battle)
        self.keep_text = keep_text
        self.endpoints = endpoints
        self.matchmaker = matchmaker
        self.prefix = prefix
        self.battle_ttl = battle_ttl
        self.max_prompt_chars = max_prompt_chars
        self.max_turns = max_turns
        self.progress_interval = progress_interval
        self.metrics = metrics or NoMetrics()
        self.battle_rates = (Rate(battles_per_minute, MINUTE), Rate(battles_per_day, DAY))
        self.vote_rates = (Rate(votes_per_minute, MINUTE), Rate(votes_per_day, DAY))
        self.pair_vote_rate = Rate(pair_votes_per_day, DAY)
        self.battle_limit = RateLimiter(redis_client, prefix, "new battles")
        self.vote_limit = RateLimiter(redis_client, prefix, "votes")
        # Answers this process may generate at once (0: no budget); counted here, per process.
        self.max_concurrent_answers = max_concurrent_answers
        self.max_regenerations = max_regenerations  # per side per battle; 0: regeneration is off
        self.answers_in_flight = 0
        self._lessons: set[asyncio.Task] = set()  # matchmaker updates still running (see _teach_matchmaker_soon)
        self.lessons_skipped = 0
        self._begin_turn = redis_client.register_script(_BEGIN_TURN)
        self._cast_vote = redis_client.register_script(_CAST_VOTE)
        self._leave = redis_client.register_script(_LEAVE)
        self._begin_regeneration = redis_client.register_script(_BEGIN_REGENERATION)
        self._end_regeneration = redis_client.register_script(_END_REGENERATION)
        # the circuit breaker and health records (arena.models.health); probes run as tasks here
        self.health = health or ModelHealth(redis_client, prefix)
        self._probes: set[asyncio.Task] = set()
        self._next_probe_check = 0.0

    # -- models ---------------------------------------------------------------------------

    async def model_status(self) -> dict[str, ModelStatus]:
        """Every model's status: registered models not live yet (or any more) from the registry,
        the live ones "active", "paused", "benched" or "full" in one Redis round trip
        (arena.models.availability says what each means). Starts any probe of a benched model that is due."""
        standing = await self.endpoints.refresh()
        limits = {name: self.endpoints.spec(name).max_concurrent for name in self.endpoints.names
                  if name not in standing}
        statuses = await availability.read_statuses(self.redis, self.prefix, limits, self.endpoints.daily_quotas(),
                                                    availability.utc_day())
        benched = [name for name, status in statuses.items() if status == ModelStatus.BENCHED]
        if benched:
            await self._start_due_probes(benched)
        return {**statuses, **standing}

    async def available_models(self, *, anonymous: bool = True) -> list[str]:
        """Models that may be seated in a new battle right now (see model_status); in an anonymous
        one (the default) only those whose owner let them enter anonymous battles."""
        return [name for name in availability.available_models(await self.model_status())
                if not anonymous or self.endpoints.battle_eligible(name)]

    async def _start_due_probes(self, benched: list[str]) -> None:
        """Probe benched models whose back-off has passed (one process per probe, by a Redis lock)."""
        now = time.monotonic()
        if now < self._next_probe_check:
            return
        self._next_probe_check = now + min(self.health.policy.first_probe / 2, 5.0)
        for model, record in (await self.health.benched(benched)).items():
            if await self.health.claim_probe(model, record):
                task = asyncio.create_task(self._probe(model))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, model: str) -> None:
        try:
            await self.endpoints.complete(model, [{"role": "user", "content": PROBE_PROMPT}])
        except Exception as exc:
            log.info("probe of benched model %s failed: %s", model, exc)
            with suppress(RedisError):
                await self.health.probe_failed(model, exc)
        else:
            log.info("probe of benched model %s answered: back in rotation", model)
            with suppress(RedisError):
                await self.health.probe_passed(model)

    @asynccontextmanager
    async def _answering(self, model: str):
        """Count one answer of ``model`` in flight for the duration of the block, if the model has
        a ``max_concurrent`` limit (otherwise there is nothing to count it against: no round trips)."""
        spec = self.endpoints.spec(model)
        if spec.max_concurrent is None:
            yield
            return
        key = model_inflight_key(self.prefix, model)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, int(spec.max_answer_seconds) + INFLIGHT_GRACE_SECONDS)
        await pipe.execute()
        try:
            yield
        finally:
            await self._leave(keys=[key])

    # -- battles --------------------------------------------------------------------------

    # -- checks that cost nothing: made before a battle is created or any budget is spent --

    def checked_prompt(self, prompt) -> str:
        """The prompt as it will be sent (stripped), or BattleError saying what is wrong with it."""
        if not isinstance(prompt, str):
            raise BattleError(f"the prompt must be text, not {type(prompt).__name__}")
        prompt = prompt.strip()
        if not prompt:
            raise BattleError("the prompt is empty: type a question or an instruction")
        if len(prompt) > self.max_prompt_chars:
            raise BattleError(f"the prompt has {len(prompt)} characters; the limit is {self.max_prompt_chars}")
        position = lone_surrogate_at(prompt)
        if position is not None:
            raise BattleError(f"the prompt has an invalid character at position {position} (a lone UTF-16 "
                              "surrogate, which no model can read): send plain UTF-8 text")
        return prompt

    def check_size(self, k) -> None:
        """K of a new battle: at least 2, and no more than the configured models."""
        if not isinstance(k, int) or isinstance(k, bool) or not 2 <= k <= min(26, len(self.endpoints.names)):
            raise BattleError(f"a battle has 2 to {min(26, len(self.endpoints.names))} models, not {quoted(k)}")

    def _check_answer_budget(self, answers: int) -> None:
        if self.max_concurrent_answers and self.answers_in_flight + answers > self.max_concurrent_answers:
            raise ArenaBusy(f"the arena is answering {self.answers_in_flight} prompts at once, its limit "
                            f"({self.max_concurrent_answers}); try again in a few seconds", retry_after=5)

    async def create(self, session_id: str, k: int = 2, voter_id: str | None = None, prompt: str | None = None,
                     chooser=None) -> Battle:
        """A new battle of ``k`` models chosen by the matchmaker, or by ``chooser`` (a named battle:
        arena.battles.requests.NamedChoice, whose votes are recorded with mode ``named``). With
        ``prompt`` (the first turn's), the prompt is checked first: a prompt that would be refused
        creates nothing and spends no budget."""
        self.drain.check_open()
        if prompt is not None:
            self.checked_prompt(prompt)
        self.check_size(k)
        self._check_answer_budget(k)
        available = await self.available_models(anonymous=chooser is None)
        if len(available) < k:
            raise NoModelsAvailable(
                f"a {k}-way battle needs {k} working models but only {len(available)} are available right now; "
                "try again in a minute"
            )
        if voter_id is not None:
            try:
                await self.battle_limit.acquire(self._battle_limits(session_id, voter_id))
            except RateLimited:
                self.metrics.refused_by_limit("battles")
                raise
        # The matchmaker may read its snapshot and online belief from Redis with a synchronous
        # client: keep that off the event loop so other voters' streams do not stall.
        selection = await asyncio.to_thread((chooser or self.matchmaker).choose, available, k)
        battle = Battle(
            battle_id=uuid.uuid4().hex,
            session_id=session_id,
            mode="named" if chooser is not None else "anonymous" if k == 2 else "kwise",
            models=list(selection.models),
            selection_probability=float(selection.probability),
            strategy=selection.strategy,
            created_at=time.time(),
            voter_id=voter_id,
        )
        key = battle_key(self.prefix, battle.battle_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"battle": battle.model_dump_json(), "state": "open"})
        pipe.expire(key, self.battle_ttl)
        await pipe.execute()
        self.metrics.battle_started(k)
        await self.endpoints.seated(battle.models)
        return battle

    async def load(self, battle_id: str, session_id: str) -> tuple[Battle, BattleState]:
        if not isinstance(battle_id, str) or not battle_id.isalnum() or len(battle_id) > 64:
            raise BattleNotFound(f"no battle {quoted(battle_id)}: battle ids are the hex strings returned on creation",
                                 battle_id=battle_id)
        stored = await self.redis.hmget(battle_key(self.prefix, battle_id), ["battle", "state"])
        if stored[0] is None:
            raise BattleNotFound(f"no battle {battle_id!r} (unknown, or expired after {self.battle_ttl} s)",
                                 battle_id=battle_id)
        battle = Battle.model_validate_json(stored[0])
        if battle.session_id != session_id:
            raise WrongSession(f"battle {battle_id} belongs to another session: only the voter who saw it may continue or vote",
                               battle_id=battle_id)
        return battle, stored[1].decode()

    async def stream_turn(self, battle_id: str, session_id: str, prompt: str) -> AsyncIterator[TurnProgress]:
        """Send ``prompt`` to every model of the battle at once and yield the answers as they grow.

        Counted in flight by the drain (refused once the process is stopping; cancelled, and so
        stored as failed, if it outlasts the grace period)."""
        with self.drain.turn():
            async with aclosing(self._stream_turn(battle_id, session_id, prompt)) as progress:
                async for update in progress:
                    yield update

    async def _stream_turn(self, battle_id: str, session_id: str, prompt: str) -> AsyncIterator[TurnProgress]:
        prompt = self.checked_prompt(prompt)
        battle, _ = await self.load(battle_id, session_id)
        if len(battle.turns) >= self.max_turns:
            raise BattleConflict(f"this battle already has {self.max_turns} turns: vote, then start a new round")
        self._check_answer_budget(len(battle.models))
        key = battle_key(self.prefix, battle_id)
        verdict = (await self._begin_turn(keys=[key])).decode()
        if not verdict.startswith("ok:"):
            raise state_error(battle_id, verdict)
        try:
            # read again under the lock: a regeneration may have replaced an answer since the load
            battle = Battle.model_validate_json(await self.redis.hget(key, "battle"))
            # checked and reserved with no await in between: one event loop, so no other turn slips in
            self._check_answer_budget(len(battle.models))
        except BaseException:  # refused (busy) or cut off before any answer: the battle goes back as it was
            with suppress(RedisError):
                await self.redis.hset(key, "state", verdict.removeprefix("ok:"))
            raise
        self.answers_in_flight += len(battle.models)

        turn = Turn(prompt=prompt, answers=[""] * len(battle.models), failed=[False] * len(battle.models),
                    started_at=time.time())
        finished = [False] * len(battle.models)
        updates: asyncio.Queue[tuple[int, str | None, bool]] = asyncio.Queue()

        tasks = [asyncio.create_task(self._answer(battle, position, _messages(battle.turns, position, prompt), updates))
                 for position in range(len(battle.models))]
        try:
            last_sent = 0.0
            while not all(finished):
                position, delta, failed = await updates.get()
                if delta is not None:
                    turn.answers[position] += delta
                else:
                    finished[position] = True
                    turn.failed[position] = failed
                now = time.monotonic()
                if all(finished) or now - last_sent >= self.progress_interval:
                    last_sent = now
                    yield TurnProgress(turn=len(battle.turns) + 1, answers=_shown_answers(turn),
                                       finished=list(finished), failed=list(turn.failed))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.answers_in_flight -= len(battle.models)
            turn.finished_at = time.time()
            if not all(finished):
                turn.failed = [failed or not done for failed, done in zip(turn.failed, finished)]
            battle.turns.append(turn)
            flags = self._identity_flags(battle)
            self.metrics.battle_flagged(set(flags) - set(battle.identity_flags))
            battle.identity_flags = flags
            if battle.served_at is None:
                battle.served_at = turn.started_at
            state = "failed" if any(turn.failed) else "ready"
            if state == "failed":
                self.metrics.battle_failed(len(battle.models))
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(key, mapping={"battle": battle.model_dump_json(), "state": state})
            pipe.expire(key, self.battle_ttl)
            await pipe.execute()

    async def _answer(self, battle: Battle, position: int, messages: list[dict],
                      updates: asyncio.Queue[tuple[int, str | None, bool]]) -> None:
        """Stream the answer of the model at ``position`` to ``messages`` into ``updates``:
        (position, delta, False) per piece, then (position, None, failed) at the end, always."""
        model = battle.models[position]
        failed = True
        started, first_token = time.monotonic(), None
        try:
            async with self._answering(model):
                async for delta in self.endpoints.stream(model, messages):
                    if first_token is None:
                        first_token = time.monotonic()
                        self.metrics.first_token(model, first_token - started)
                    await updates.put((position, delta, False))
            failed = False
            self.metrics.answer_finished(model, time.monotonic() - started)
            with suppress(RedisError):
                await self.health.record_answer(model, first_token - started)
        except Exception as exc:  # an endpoint failure must not end the other streams
            self.metrics.answer_failed(model)
            log.warning("battle %s: answer of %s failed: %s", battle.battle_id, model, exc)
            if not isinstance(exc, RedisError):  # a Redis outage is not the model's fault
                # the circuit breaker benches only after several failures from several voters
                with suppress(RedisError):
                    await self.health.record_failure(model, battle.voter_id, exc)
        finally:  # always report the end, or the turn would wait for this answer forever
            await updates.put((position, None, failed))

    async def run_turn(self, battle_id: str, session_id: str, prompt: str) -> TurnProgress:
        """The non-streaming form of :meth:`stream_turn`: the finished answers."""
        progress = None
        async for progress in self.stream_turn(battle_id, session_id, prompt):
            pass
        return progress

    # -- regenerating one answer ----------------------------------------------------------

    async def stream_regeneration(self, battle_id: str, session_id: str, label: str,
                                  voter_id: str | None = None) -> AsyncIterator[RegenerationProgress]:
        """Ask the model at ``label`` again for the latest turn's answer (the same conversation
        before it) and yield the latest turn's answers as the new one grows. Once it has finished it
        replaces the old answer everywhere the battle is read: the follow-ups' history, the vote's
        style features and its identity flags (flags only ever grow: the voter has read the old answer).

        Only while the battle is ``ready`` (every answer of the latest turn finished, no vote): a
        compare-and-set moves it to ``regenerating`` and back, so no vote, turn or second
        regeneration lands meanwhile. Each side may be regenerated ``max_regenerations`` times per
        battle. With ``voter_id``, a regeneration spends one new battle of the voter's and the
        session's battle limits (it asks a model for a fresh answer, as a new round would), and one
        answer of this process's answer budget while it runs.

        A model failure (or a cancelled request) loses nothing: the previous answer stays, the battle
        is ``ready`` (votable) again and the count is unchanged; a failure is then raised as
        RegenerationFailed (502). Counted by the drain like a turn."""
        with self.drain.turn(ended_message=REGENERATION_ENDED):
            async with aclosing(self._stream_regeneration(battle_id, session_id, label, voter_id)) as progress:
                async for update in progress:
                    yield update

    async def run_regeneration(self, battle_id: str, session_id: str, label: str,
                               voter_id: str | None = None) -> RegenerationProgress:
        """The non-streaming form of :meth:`stream_regeneration`: the answers once the new one is in."""
        progress = None
        async for progress in self.stream_regeneration(battle_id, session_id, label, voter_id):
            pass
        return progress

    async def _stream_regeneration(self, battle_id: str, session_id: str, label: str,
                                   voter_id: str | None) -> AsyncIterator[RegenerationProgress]:
        if not self.max_regenerations:
            raise RegenerationOff("regenerating answers is turned off on this arena (--max-regenerations 0)")
        battle, state = await self.load(battle_id, session_id)
        if not isinstance(label, str) or label not in battle.labels:
            raise UnknownLabel(f"unknown label {quoted(label)}: this battle's answers are {', '.join(battle.labels)}")
        position = battle.labels.index(label)
        if state != "ready":  # checked again atomically below; here so a refusal spends nothing
            raise _regeneration_state_error(battle_id, state)
        if battle.regenerations and battle.regenerations[position] >= self.max_regenerations:
            raise self._regenerations_used_up(battle_id, label)
        self._check_answer_budget(1)
        spent = await self._spend_regeneration(session_id, voter_id)
        key = battle_key(self.prefix, battle_id)
        try:
            verdict = await self._begin_regeneration(keys=[key], args=[regeneration_field(position),
                                                                       self.max_regenerations])
        except BaseException:
            with suppress(RedisError):
                await self.battle_limit.refund(spent)
            raise
        if verdict[0].decode() != "ok":  # a vote, a turn or another regeneration came first
            await self.battle_limit.refund(spent)
            if verdict[0].decode() == "cap":
                raise self._regenerations_used_up(battle_id, label)
            raise _regeneration_state_error(battle_id, verdict[0].decode())
        battle = Battle.model_validate_json(verdict[1])  # as stored now, under the lock
        try:
            self._check_answer_budget(1)
        except ArenaBusy:  # filled up while we waited on Redis: hand the battle back untouched
            await self._end_regeneration(keys=[key])
            await self.battle_limit.refund(spent)
            raise
        # checked and reserved with no await in between: one event loop
        self.answers_in_flight += 1

        turn = battle.turns[-1]
        regenerations = list(battle.regenerations) or [0] * len(battle.models)
        updates: asyncio.Queue[tuple[int, str | None, bool]] = asyncio.Queue()
        task = asyncio.create_task(self._answer(battle, position, _messages(battle.turns[:-1], position, turn.prompt),
                                                updates))
        answer, replaced, failed = "", False, False
        finished = [True] * len(battle.models)
        finished[position] = False

        def progress() -> RegenerationProgress:
            answers = list(turn.answers)
            answers[position] = answer
            return RegenerationProgress(turn=len(battle.turns), answers=answers, finished=list(finished),
                                        failed=[False] * len(battle.models), position=position,
                                        regenerations=list(regenerations))

        try:
            last_sent = 0.0
            while not replaced and not failed:
                _, delta, failed = await updates.get()
                if delta is not None:
                    answer += delta
                    now = time.monotonic()
                    if now - last_sent >= self.progress_interval:
                        last_sent = now
                        yield progress()
                elif not failed:
                    # written before the last update goes out: whoever sees it finished may vote on it
                    finished[position] = True
                    regenerations[position] += 1
                    await self._replace_answer(battle, position, answer, regenerations)
                    replaced = True
                    yield progress()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.answers_in_flight -= 1
            if not replaced:
                await self._end_regeneration(keys=[key])
        if failed:
            raise RegenerationFailed(f"answer {label} could not be regenerated: its model's endpoint failed to "
                                     "answer. The previous answer is kept and the battle can still be voted on.")

    async def _replace_answer(self, battle: Battle, position: int, answer: str, regenerations: list[int]) -> None:
        """Store ``answer`` as the latest turn's answer at ``position``, and the battle ready again."""
        battle.turns[-1].answers[position] = answer
        battle.regenerations = regenerations
        flags = sorted(set(battle.identity_flags) | set(self._identity_flags(battle)))
        self.metrics.battle_flagged(set(flags) - set(battle.identity_flags))
        battle.identity_flags = flags
        key = battle_key(self.prefix, battle.battle_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"battle": battle.model_dump_json(), "state": "ready",
                                regeneration_field(position): regenerations[position]})
        pipe.expire(key, self.battle_ttl)
        await pipe.execute()

    def _regenerations_used_up(self, battle_id: str, label: str) -> BattleConflict:
        return BattleConflict(f"answer {label} of battle {battle_id} was already regenerated {self.max_regenerations} "
                              f"time{'s' if self.max_regenerations != 1 else ''}, the limit per answer: vote, or start "
                              "a new round", battle_id=battle_id)

    async def _spend_regeneration(self, session_id: str, voter_id: str | None) -> Spent:
        if voter_id is None:
            return Spent([], [])
        try:
            return await self.battle_limit.acquire(self._battle_limits(session_id, voter_id))
        except RateLimited as refused:
            self.metrics.refused_by_limit("battles")
            raise RateLimited(f"{refused} (a regeneration counts as a new battle)",
                              retry_after=refused.retry_after) from None

    def _battle_limits(self, session_id: str, voter_id: str) -> list[Limit]:
        """New battles (and regenerations) per voter and per session (a minute, a day)."""
        return ([Limit(rate, subject("voter", voter_id), "from your address") for rate in self.battle_rates]
                + [Limit(rate, subject("session", session_id), "in this session") for rate in self.battle_rates])

    # -- votes ----------------------------------------------------------------------------

    async def vote(self, battle_id: str, session_id: str, voter_id: str, *, outcome: str | None = None,
                   ranking: Sequence[Sequence[str]] | None = None, feedback: str | None = None,
                   partial: bool = False) -> VoteReceipt:
        """Accept the one vote of a battle whose answers have all finished, and XADD it.

        A malformed vote is refused (InvalidVote, 422) whatever the battle's state: the input is
        wrong however often it is sent, while a state conflict (409) is about *when* it was sent.
        ``partial``: the ranking may rank only the best (arena.battles.votes.checked_choice).
        """
        try:
            receipt, mode = await self._vote(battle_id, session_id, voter_id, outcome, ranking, feedback, partial)
        except BattleError as error:
            self.metrics.vote_rejected(error)
            raise
        self.metrics.vote_accepted(mode)
        return receipt

    async def _vote(self, battle_id, session_id, voter_id, outcome, ranking, feedback=None,
                    partial=False) -> tuple[VoteReceipt, str]:
        battle, state = await self.load(battle_id, session_id)
        outcome_value, ranking_names, unranked = checked_choice(battle, outcome, ranking, partial)
        reason = checked_feedback(feedback)
        if state != "ready":
            raise state_error(battle_id, state)
        limits, limit_keys, limit_args = self.vote_limit.script_parts(self._vote_limits(battle, session_id, voter_id))
        event = vote_event(battle, voter_id, outcome_value, ranking_names, reason, unranked)
        verdict = await self._cast_vote(
            keys=[battle_key(self.prefix, battle_id), vote_stream_key(self.prefix), *limit_keys],
            args=[event.vote_id, event.model_dump_json(),
                  vote_text(battle).model_dump_json() if self.keep_text else "", *limit_args],
        )
        outcome_of_cast = verdict[0].decode()
        if outcome_of_cast == "limited":  # nothing written, nothing spent: the battle stays votable
            self.metrics.refused_by_limit("votes")
            raise self.vote_limit.refusal(limits, verdict[1], verdict[2])
        if outcome_of_cast != "ok":
            raise state_error(battle_id, outcome_of_cast)
        # the leaderboard leaves out named votes and, by default, flagged ones: so does the online belief
        if not event.identity_flags and event.mode != "named":
            self._teach_matchmaker_soon(event)
        return VoteReceipt(vote_id=event.vote_id, models=battle.models, outcome=event.outcome, ranking=event.ranking,
                           identity_flags=tuple(event.identity_flags), unranked=tuple(event.unranked)), event.mode

    def _identity_flags(self, battle: Battle) -> list[str]:
        """Did a prompt ask who the models are, or an answer name its own model (see arena.trust.self_identification)?"""
        identities = [ModelIdentity.of(self.endpoints.spec(name)) for name in battle.models]
        answers = [[turn.answers[position] for turn in battle.turns] for position in range(len(battle.models))]
        return battle_flags([turn.prompt for turn in battle.turns], answers, identities, battle.labels)

    def _vote_limits(self, battle: Battle, session_id: str, voter_id: str) -> list[Limit]:
        """Votes per voter and per session (a minute, a day), and per voter per model pair (a day)."""
        pair = "|".join(sorted(battle.models))
        return ([Limit(rate, subject("voter", voter_id), "from your address") for rate in self.vote_rates]
                + [Limit(rate, subject("session", session_id), "in this session") for rate in self.vote_rates]
                + [Limit(self.pair_vote_rate, subject("pair", voter_id, pair), "on this pair of models")])

    def _teach_matchmaker_soon(self, event: VoteEvent) -> None:
        """Teach the matchmaker after the vote is answered, not before: its update is a synchronous
        Redis call in a thread, and waiting for it doubled a vote's latency under load. At most
        MAX_PENDING_LESSONS wait at once; past that a lesson is skipped (logged), which only
        delays what the matchmaker learns until the next refit."""
        if len(self._lessons) >= MAX_PENDING_LESSONS:
            self.lessons_skipped += 1
            if self.lessons_skipped % 1000 == 1:
                log.warning("the matchmaker's online updates fall behind the votes: %d skipped so far (the next "
                            "refit catches up)", self.lessons_skipped)
            return
        task = asyncio.create_task(self._teach_matchmaker(event))
        self._lessons.add(task)
        task.add_done_callback(self._lessons.discard)

    async def _teach_matchmaker(self, event: VoteEvent) -> None:
        """Feed an accepted vote to the matchmaker's online belief, so the next choices use it
        within seconds instead of waiting for the next refit. The vote is already safe in the
        stream: a failure here only delays what the matchmaker learns, so it is logged, not raised."""
        try:
            await asyncio.to_thread(self.matchmaker.record_event, event)
        except Exception as exc:
            log.warning("vote %s accepted, but the matchmaker's online update failed: %s", event.vote_id, exc)



def _messages(turns: Sequence[Turn], position: int, prompt: str) -> list[dict]:
    """The conversation the model at ``position`` is sent: its own earlier turns, then ``prompt``."""
    messages = []
    for earlier in turns:
        messages.append({"role": "user", "content": earlier.prompt})
        messages.append({"role": "assistant", "content": earlier.answers[position]})
    messages.append({"role": "user", "content": prompt})
    return messages


def _regeneration_state_error(battle_id: str, state: str) -> BattleError:
    """The error for a regeneration that met the battle in ``state`` (not ready)."""
    messages = {
        "open": f"battle {battle_id} has no answers yet: send a prompt first",
        "streaming": f"battle {battle_id} is still answering: regenerate once every answer has finished",
        "regenerating": f"battle {battle_id} is already regenerating an answer: wait until it finishes",
        "failed": f"a model in battle {battle_id} failed to answer, so nothing can be regenerated: start a new round",
        "voted": f"battle {battle_id} already has a vote: answers cannot be regenerated after the vote; start a new round",
    }
    if state not in messages:
        return state_error(battle_id, state)
    return BattleConflict(messages[state], battle_id=battle_id)


def _shown_answers(turn: Turn) -> list[str]:
    """Answers as the browser sees them: a failed side says so without naming its model."""
    return [
        answer + ("\n\n*(This model's endpoint failed to answer. Start a new round.)*" if failed else "")
        for answer, failed in zip(turn.answers, turn.failed)
    ]
