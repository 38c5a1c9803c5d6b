"""The battle engine: one engine for two-way and K-way battles, state kept in Redis.

A battle is created with K models chosen by the matchmaker (arena.battles.creation), streams one
or more turns of answers from all K concurrently (arena.battles.turns), may have one answer asked
for again (arena.battles.regeneration), and accepts exactly one vote once every answer has
finished (arena.battles.voting). ``BattleService`` is the one face the web layer sees: it builds
those parts from a few collaborators and hands each call to the part whose job it is.
Nothing lives in process memory between requests, so any web process can serve any step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from arena.battles.answering import Answering
from arena.battles.creation import BattleCreation, NewBattles
from arena.battles.drain import Drain
from arena.battles.limits import AnswerBudget, BattleLimits
from arena.battles.regeneration import Regeneration
from arena.battles.seating import Seating
from arena.battles.store import BattleStore
from arena.battles.turns import TurnStreamer
from arena.battles.types import Battle, BattleState, RegenerationProgress, TurnProgress, VoteReceipt
from arena.battles.voting import VoteTaking
from arena.metrics import NoMetrics
from arena.models.availability import ModelStatus
from arena.models.health import ModelHealth

# Seconds between two progress updates of a streaming answer, at most one per interval.
PROGRESS_INTERVAL = 0.05


class BattleService:
    """Creates battles, streams their turns, regenerates answers and takes their votes.

    ``store``: battles in Redis (its client, prefix and battle TTL); ``endpoints``: the models'
    endpoint pool (or the owners' catalog); ``matchmaker``: chooses the models and learns from the
    votes; ``limits``: the operator's limits (arena.battles.limits). ``metrics``, ``drain`` (closed
    when this process stops: new battles and turns refused) and ``health`` (the circuit breaker;
    by default on the store's Redis) may be shared with the rest of the process. ``keep_text``:
    the operator releases prompts and answers (see arena.battles.voting).
    """

    def __init__(self, store: BattleStore, endpoints, matchmaker, *, limits: BattleLimits | None = None,
                 metrics: NoMetrics | None = None, drain: Drain | None = None, health: ModelHealth | None = None,
                 keep_text: bool = False, progress_interval: float = PROGRESS_INTERVAL):
        self.store = store
        self.endpoints = endpoints
        self.matchmaker = matchmaker
        self.limits = limits or BattleLimits()
        self.metrics = metrics or NoMetrics()
        self.drain = drain or Drain()
        self.health = health or ModelHealth(store.redis, store.prefix)
        self.budget = AnswerBudget(self.limits.max_concurrent_answers)  # answers of this process, at once
        new_battles = NewBattles(store, self.limits, self.metrics)
        answering = Answering(store, endpoints, self.metrics, self.health, self.limits.max_answer_chars)
        self.seating = Seating(store, endpoints, self.health)
        self.creation = BattleCreation(store, self.limits, self.seating, matchmaker, budget=self.budget,
                                       new_battles=new_battles, drain=self.drain, metrics=self.metrics)
        self.turns = TurnStreamer(store, self.limits, answering, budget=self.budget, drain=self.drain,
                                  metrics=self.metrics, progress_interval=progress_interval)
        self.regeneration = Regeneration(store, self.limits, answering, budget=self.budget, new_battles=new_battles,
                                         drain=self.drain, metrics=self.metrics, progress_interval=progress_interval)
        self.votes = VoteTaking(store, self.limits, matchmaker, metrics=self.metrics, keep_text=keep_text)

    @property
    def redis(self):
        return self.store.redis

    @property
    def prefix(self) -> str:
        """The Redis key prefix of this arena's battles (and its statistics: arena.owners.view reads them)."""
        return self.store.prefix

    @property
    def max_regenerations(self) -> int:
        """Regenerations per side per battle; 0: regeneration is off."""
        return self.limits.max_regenerations

    @property
    def answers_in_flight(self) -> int:
        """Answers this process is generating right now (see arena.battles.limits.AnswerBudget)."""
        return self.budget.in_flight

    # -- models --

    async def model_status(self) -> dict[str, ModelStatus]:
        return await self.seating.model_status()

    async def available_models(self, *, anonymous: bool = True) -> list[str]:
        return await self.seating.available_models(anonymous=anonymous)

    # -- battles and their turns --

    def checked_prompt(self, prompt) -> str:
        return self.limits.checked_prompt(prompt)

    def check_size(self, k) -> int:
        return self.limits.check_size(k, len(self.endpoints.names))

    async def create(self, session_id: str, k: int = 2, voter_id: str | None = None, prompt: str | None = None,
                     chooser=None) -> Battle:
        return await self.creation.create(session_id, k, voter_id, prompt, chooser)

    async def load(self, battle_id: str, session_id: str) -> tuple[Battle, BattleState]:
        return await self.store.load(battle_id, session_id)

    def stream_turn(self, battle_id: str, session_id: str, prompt: str) -> AsyncIterator[TurnProgress]:
        return self.turns.stream_turn(battle_id, session_id, prompt)

    async def run_turn(self, battle_id: str, session_id: str, prompt: str) -> TurnProgress:
        return await self.turns.run_turn(battle_id, session_id, prompt)

    # -- regenerating one answer --

    def stream_regeneration(self, battle_id: str, session_id: str, label: str,
                            voter_id: str | None = None) -> AsyncIterator[RegenerationProgress]:
        return self.regeneration.stream_regeneration(battle_id, session_id, label, voter_id)

    async def run_regeneration(self, battle_id: str, session_id: str, label: str,
                               voter_id: str | None = None) -> RegenerationProgress:
        return await self.regeneration.run_regeneration(battle_id, session_id, label, voter_id)

    # -- votes --

    async def vote(self, battle_id: str, session_id: str, voter_id: str, *, outcome: str | None = None,
                   ranking: Sequence[Sequence[str]] | None = None, feedback: str | None = None,
                   partial: bool = False) -> VoteReceipt:
        return await self.votes.vote(battle_id, session_id, voter_id, outcome=outcome, ranking=ranking,
                                     feedback=feedback, partial=partial)

    @property
    def lessons_skipped(self) -> int:
        """Matchmaker updates skipped because too many waited (see arena.battles.voting)."""
        return self.votes.lessons_skipped
