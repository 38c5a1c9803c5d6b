"""Regenerating one answer: the model at a label asked again for the latest turn's answer (the
same conversation before it), the new answer replacing the old one once it has finished, and the
battle handed back untouched when it fails or is cut off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress
from types import MappingProxyType

from redis.exceptions import RedisError

from arena.battles.answering import Answering, AnswerUpdate, conversation, identity_flags
from arena.battles.creation import NewBattles
from arena.battles.drain import REGENERATION_ENDED, Drain
from arena.battles.limits import AnswerBudget, BattleLimits
from arena.battles.store import BattleStore
from arena.battles.text_checks import quoted
from arena.battles.turns import shown_answer, shown_answers
from arena.battles.types import Battle, RegenerationProgress, state_error
from arena.errors import (
    ArenaBusy,
    BattleConflict,
    BattleError,
    RateLimited,
    RegenerationFailed,
    RegenerationOff,
    UnknownLabel,
)
from arena.metrics import NoMetrics
from arena.trust.rate_limit import Spent

# What a regeneration that met the battle in a state other than ready is told, by state.
REFUSED_IN_STATE = MappingProxyType({
    "open": "battle {battle_id} has no answers yet: send a prompt first",
    "streaming": "battle {battle_id} is still answering: regenerate once every answer has finished",
    "regenerating": "battle {battle_id} is already regenerating an answer: wait until it finishes",
    "failed": "a model in battle {battle_id} failed to answer, so nothing can be regenerated: start a new round",
    "voted": "battle {battle_id} already has a vote: answers cannot be regenerated after the vote; start a new round",
})


def regeneration_state_error(battle_id: str, state: str) -> BattleError:
    """The error for a regeneration that met the battle in ``state`` (not ready)."""
    if state not in REFUSED_IN_STATE:
        return state_error(battle_id, state)
    return BattleConflict(REFUSED_IN_STATE[state].format(battle_id=battle_id), battle_id=battle_id)


class Regeneration:
    """Regenerates answers of battles in ``store``, each side at most ``limits.max_regenerations`` times."""

    def __init__(self, store: BattleStore, limits: BattleLimits, answering: Answering, *, budget: AnswerBudget,
                 new_battles: NewBattles, drain: Drain, metrics: NoMetrics, progress_interval: float):
        self.store = store
        self.limits = limits
        self.answering = answering
        self.budget = budget
        self.new_battles = new_battles
        self.drain = drain
        self.metrics = metrics
        self.progress_interval = progress_interval

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
        cap = self.limits.max_regenerations
        if not cap:
            raise RegenerationOff("regenerating answers is turned off on this arena (--max-regenerations 0)")
        battle, state = await self.store.load(battle_id, session_id)
        if not isinstance(label, str) or label not in battle.labels:
            raise UnknownLabel(f"unknown label {quoted(label)}: this battle's answers are {', '.join(battle.labels)}")
        position = battle.labels.index(label)
        if state != "ready":  # checked again atomically below; here so a refusal spends nothing
            raise regeneration_state_error(battle_id, state)
        if battle.regenerations and battle.regenerations[position] >= cap:
            raise self._used_up(battle_id, label)
        self.budget.check(1)
        spent = await self._spend(session_id, voter_id)
        try:
            verdict, stored = await self.store.begin_regeneration(battle_id, position, cap)
        except BaseException:
            with suppress(RedisError):
                await self.new_battles.refund(spent)
            raise
        if verdict != "ok":  # a vote, a turn or another regeneration came first
            await self.new_battles.refund(spent)
            if verdict == "cap":
                raise self._used_up(battle_id, label)
            raise regeneration_state_error(battle_id, verdict)
        battle = Battle.model_validate_json(stored)  # as stored now, under the lock
        try:
            self.budget.check(1)
        except ArenaBusy:  # filled up while we waited on Redis: hand the battle back untouched
            await self.store.end_regeneration(battle_id)
            await self.new_battles.refund(spent)
            raise
        # checked and reserved with no await in between: one event loop
        self.budget.take(1)

        turn = battle.turns[-1]
        regenerations = list(battle.regenerations) or [0] * len(battle.models)
        updates: asyncio.Queue[AnswerUpdate] = asyncio.Queue()
        task = asyncio.create_task(self.answering.answer(
            battle, position, conversation(battle.turns[:-1], position, turn.prompt), updates))
        answer, replaced, failed, truncated = "", False, False, False
        finished = [True] * len(battle.models)
        finished[position] = False

        def progress() -> RegenerationProgress:
            answers = shown_answers(turn)
            answers[position] = shown_answer(answer, truncated=truncated)
            return RegenerationProgress(turn=len(battle.turns), answers=answers, finished=list(finished),
                                        failed=[False] * len(battle.models), position=position,
                                        regenerations=list(regenerations))

        try:
            last_sent = 0.0
            while not replaced and not failed:
                _, delta, failed, truncated = await updates.get()
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
                    await self._replace_answer(battle, position, answer, regenerations, truncated)
                    replaced = True
                    yield progress()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.budget.give_back(1)
            if not replaced:
                await self.store.end_regeneration(battle_id)
        if failed:
            raise RegenerationFailed(f"answer {label} could not be regenerated: its model's endpoint failed to "
                                     "answer. The previous answer is kept and the battle can still be voted on.")

    async def _replace_answer(self, battle: Battle, position: int, answer: str, regenerations: list[int],
                              truncated: bool) -> None:
        """Store ``answer`` as the latest turn's answer at ``position`` (``truncated``: cut by a
        limit), and the battle ready again."""
        turn = battle.turns[-1]
        turn.answers[position] = answer
        turn.truncated = (turn.truncated or [False] * len(turn.answers))
        turn.truncated[position] = truncated
        battle.regenerations = regenerations
        flags = sorted(set(battle.identity_flags) | set(identity_flags(battle, self.answering.endpoints)))
        self.metrics.battle_flagged(set(flags) - set(battle.identity_flags))
        battle.identity_flags = flags
        await self.store.replace_answer(battle, position)

    def _used_up(self, battle_id: str, label: str) -> BattleConflict:
        cap = self.limits.max_regenerations
        return BattleConflict(f"answer {label} of battle {battle_id} was already regenerated {cap} "
                              f"time{'s' if cap != 1 else ''}, the limit per answer: vote, or start "
                              "a new round", battle_id=battle_id)

    async def _spend(self, session_id: str, voter_id: str | None) -> Spent:
        if voter_id is None:
            return Spent([], [])
        try:
            return await self.new_battles.spend(session_id, voter_id)
        except RateLimited as refused:
            raise RateLimited(f"{refused} (a regeneration counts as a new battle)",
                              retry_after=refused.retry_after) from None
