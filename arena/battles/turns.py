"""A turn of a battle: one prompt sent to every model at once, their answers streamed as they
grow, and the turn stored (``ready`` to vote on, or ``failed``) however the stream ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress

from redis.exceptions import RedisError

from arena.battles.answering import Answering, AnswerUpdate, conversation, identity_flags
from arena.battles.drain import Drain
from arena.battles.limits import AnswerBudget, BattleLimits
from arena.battles.store import BattleStore
from arena.battles.types import Turn, TurnProgress, state_error
from arena.errors import BattleConflict
from arena.metrics import NoMetrics

FAILED_ANSWER_NOTE = "\n\n*(This model's endpoint failed to answer. Start a new round.)*"
# After an answer cut by the size cap (--max-answer-chars) or the model's time limit.
TRUNCATED_ANSWER_NOTE = "\n\n*(answer cut at {chars:,} characters)*"


def shown_answer(answer: str, failed: bool = False, truncated: bool = False) -> str:
    """An answer as the browser sees it: a failed or cut side says so without naming its model."""
    if failed:
        return answer + FAILED_ANSWER_NOTE
    return answer + (TRUNCATED_ANSWER_NOTE.format(chars=len(answer)) if truncated else "")


def shown_answers(turn: Turn) -> list[str]:
    """The turn's answers as the browser sees them (shown_answer)."""
    truncated = turn.truncated or [False] * len(turn.answers)
    return [shown_answer(*side) for side in zip(turn.answers, turn.failed, truncated)]


class TurnStreamer:
    """Runs the turns of battles in ``store``, sending progress every ``progress_interval`` seconds at most."""

    def __init__(self, store: BattleStore, limits: BattleLimits, answering: Answering, *, budget: AnswerBudget,
                 drain: Drain, metrics: NoMetrics, progress_interval: float):
        self.store = store
        self.limits = limits
        self.answering = answering
        self.budget = budget
        self.drain = drain
        self.metrics = metrics
        self.progress_interval = progress_interval

    async def stream_turn(self, battle_id: str, session_id: str, prompt: str) -> AsyncIterator[TurnProgress]:
        """Send ``prompt`` to every model of the battle at once and yield the answers as they grow.

        Counted in flight by the drain (refused once the process is stopping; cancelled, and so
        stored as failed, if it outlasts the grace period)."""
        with self.drain.turn():
            async with aclosing(self._stream_turn(battle_id, session_id, prompt)) as progress:
                async for update in progress:
                    yield update

    async def _stream_turn(self, battle_id: str, session_id: str, prompt: str) -> AsyncIterator[TurnProgress]:
        prompt = self.limits.checked_prompt(prompt)
        battle, _ = await self.store.load(battle_id, session_id)
        if len(battle.turns) >= self.limits.max_turns:
            raise BattleConflict(f"this battle already has {self.limits.max_turns} turns: vote, then start a new round")
        self.budget.check(len(battle.models))
        verdict = await self.store.begin_turn(battle_id)
        if not verdict.startswith("ok:"):
            raise state_error(battle_id, verdict)
        try:
            # read again under the lock: a regeneration may have replaced an answer since the load
            battle = await self.store.reread(battle_id)
            # checked and reserved with no await in between: one event loop, so no other turn slips in
            self.budget.check(len(battle.models))
        except BaseException:  # refused (busy) or cut off before any answer: the battle goes back as it was
            with suppress(RedisError):
                await self.store.set_state(battle_id, verdict.removeprefix("ok:"))
            raise
        self.budget.take(len(battle.models))

        turn = Turn(prompt=prompt, answers=[""] * len(battle.models), failed=[False] * len(battle.models),
                    truncated=[False] * len(battle.models), started_at=time.time())
        finished = [False] * len(battle.models)
        updates: asyncio.Queue[AnswerUpdate] = asyncio.Queue()

        tasks = [asyncio.create_task(self.answering.answer(battle, position,
                                                           conversation(battle.turns, position, prompt), updates))
                 for position in range(len(battle.models))]
        try:
            last_sent = 0.0
            while not all(finished):
                position, delta, failed, truncated = await updates.get()
                if delta is not None:
                    turn.answers[position] += delta
                else:
                    finished[position] = True
                    turn.failed[position] = failed
                    turn.truncated[position] = truncated
                now = time.monotonic()
                if all(finished) or now - last_sent >= self.progress_interval:
                    last_sent = now
                    yield TurnProgress(turn=len(battle.turns) + 1, answers=shown_answers(turn),
                                       finished=list(finished), failed=list(turn.failed))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.budget.give_back(len(battle.models))
            turn.finished_at = time.time()
            if not all(finished):
                turn.failed = [failed or not done for failed, done in zip(turn.failed, finished)]
            battle.turns.append(turn)
            flags = identity_flags(battle, self.answering.endpoints)
            self.metrics.battle_flagged(set(flags) - set(battle.identity_flags))
            battle.identity_flags = flags
            if battle.served_at is None:
                battle.served_at = turn.started_at
            state = "failed" if any(turn.failed) else "ready"
            if state == "failed":
                self.metrics.battle_failed(len(battle.models))
            await self.store.save(battle, state)

    async def run_turn(self, battle_id: str, session_id: str, prompt: str) -> TurnProgress:
        """The non-streaming form of :meth:`stream_turn`: the finished answers."""
        progress = None
        async for progress in self.stream_turn(battle_id, session_id, prompt):
            pass
        return progress
