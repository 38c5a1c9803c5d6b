"""Creating a battle: its size and prompt checked, the answer budget and the voter's battle limits
respected, its K models chosen by the matchmaker (or named by the voter), and the battle stored
``open``, waiting for its first turn.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from arena.battles.drain import Drain
from arena.battles.limits import AnswerBudget, BattleLimits
from arena.battles.seating import Seating
from arena.battles.store import BattleStore
from arena.battles.types import Battle
from arena.errors import NoModelsAvailable, RateLimited
from arena.metrics import NoMetrics
from arena.trust.rate_limit import Limit, RateLimiter, Spent


class NewBattles:
    """Spends new battles of a voter's and a session's battle limits; a regeneration spends one too."""

    def __init__(self, store: BattleStore, limits: BattleLimits, metrics: NoMetrics):
        self.limits = limits
        self.metrics = metrics
        self.limiter = RateLimiter(store.redis, store.prefix, "new battles")

    async def spend(self, session_id: str, voter_id: str, named: list[Limit] | None = None) -> Spent:
        """One new battle of the voter's and the session's limits (and, for a named battle, of the
        voter's limit on each model it names), or RateLimited (429) and none."""
        try:
            return await self.limiter.acquire(self.limits.new_battle_limits(session_id, voter_id) + (named or []))
        except RateLimited:
            self.metrics.refused_by_limit("battles")
            raise

    async def refund(self, spent: Spent) -> None:
        await self.limiter.refund(spent)


class BattleCreation:
    """Creates battles in ``store`` from the models ``seating`` says are available."""

    def __init__(self, store: BattleStore, limits: BattleLimits, seating: Seating, matchmaker, *,
                 budget: AnswerBudget, new_battles: NewBattles, drain: Drain, metrics: NoMetrics):
        self.store = store
        self.limits = limits
        self.seating = seating
        self.matchmaker = matchmaker
        self.budget = budget
        self.new_battles = new_battles
        self.drain = drain
        self.metrics = metrics

    async def create(self, session_id: str, k: int = 2, voter_id: str | None = None, prompt: str | None = None,
                     chooser=None) -> Battle:
        """A new battle of ``k`` models chosen by the matchmaker, or by ``chooser`` (a named battle:
        arena.battles.requests.NamedChoice, whose votes are recorded with mode ``named``). With
        ``prompt`` (the first turn's), the prompt is checked first: a prompt that would be refused
        creates nothing and spends no budget."""
        self.drain.check_open()
        if prompt is not None:
            self.limits.checked_prompt(prompt)
        self.limits.check_size(k, len(self.seating.endpoints.names))
        self.budget.check(k)
        available = await self.seating.available_models(
            anonymous=chooser is None, named_part=self.limits.named_part if chooser is not None else None)
        if len(available) < k:
            raise NoModelsAvailable(
                f"a {k}-way battle needs {k} working models but only {len(available)} are available right now; "
                "try again in a minute"
            )
        if voter_id is not None:
            named = self.limits.named_battle_limits(voter_id, chooser.models) if chooser is not None else []
            await self.new_battles.spend(session_id, voter_id, named)
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
        await self.store.save(battle, "open")
        self.metrics.battle_started(k)
        await self.seating.endpoints.seated(battle.models, named=chooser is not None)
        return battle
