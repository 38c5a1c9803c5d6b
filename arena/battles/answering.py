"""One model's answer, streamed: what it is sent (its side of the conversation), the answer
itself (through the answer checks of arena.models.answer_checks: at most ``max_answer_chars``
characters, the model's own key removed; counted in flight, timed, reported to the circuit
breaker: an answer cut by a limit counts as a failure there), and the identity flags the
answers raise. Shared by new turns (arena.battles.turns) and regenerations
(arena.battles.regeneration).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager, suppress

from redis.exceptions import RedisError

from arena.battles.store import BattleStore
from arena.battles.types import Battle, Turn
from arena.metrics import NoMetrics
from arena.models.answer_checks import DEFAULT_MAX_ANSWER_CHARS, AnswerReport
from arena.models.endpoint_failures import EndpointError
from arena.models.health import ModelHealth
from arena.trust.self_identification import ModelIdentity, battle_flags

log = logging.getLogger(__name__)

# What an answer's task puts on its queue: (position, text delta, False, False) per piece, then
# (position, None, failed, truncated) once, at the end (truncated: cut by the size cap or the time limit).
AnswerUpdate = tuple[int, str | None, bool, bool]


def conversation(turns: Sequence[Turn], position: int, prompt: str) -> list[dict]:
    """The messages the model at ``position`` is sent: its own earlier turns, then ``prompt``."""
    messages = []
    for earlier in turns:
        messages.append({"role": "user", "content": earlier.prompt})
        messages.append({"role": "assistant", "content": earlier.answers[position]})
    messages.append({"role": "user", "content": prompt})
    return messages


def identity_flags(battle: Battle, endpoints) -> list[str]:
    """Did a prompt ask who the models are, or an answer name its own model (see arena.trust.self_identification)?"""
    identities = [ModelIdentity.of(endpoints.spec(name)) for name in battle.models]
    answers = [[turn.answers[position] for turn in battle.turns] for position in range(len(battle.models))]
    return battle_flags([turn.prompt for turn in battle.turns], answers, identities, battle.labels)


class Answering:
    """Streams answers from ``endpoints``, counting them in ``store`` (per model), ``metrics`` and
    ``health``; each answer at most ``max_answer_chars`` characters."""

    def __init__(self, store: BattleStore, endpoints, metrics: NoMetrics, health: ModelHealth,
                 max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS):
        self.store = store
        self.endpoints = endpoints
        self.metrics = metrics
        self.health = health
        self.max_answer_chars = max_answer_chars

    async def answer(self, battle: Battle, position: int, messages: list[dict],
                     updates: asyncio.Queue[AnswerUpdate]) -> None:
        """Stream the answer of the model at ``position`` to ``messages`` into ``updates``:
        (position, delta, False, False) per piece, then (position, None, failed, truncated) at the
        end, always."""
        model = battle.models[position]
        failed = True
        found = AnswerReport()
        started, first_token = time.monotonic(), None
        try:
            async with self._in_flight(model):
                async for delta in self.endpoints.stream(model, messages, report=found,
                                                         max_chars=self.max_answer_chars):
                    if first_token is None:
                        first_token = time.monotonic()
                        self.metrics.first_token(model, first_token - started)
                    await updates.put((position, delta, False, False))
            failed = False
            self.metrics.answer_finished(model, time.monotonic() - started)
            if found.keys_removed:
                log.warning("battle %s: the answer of %s carried its own API key %d time(s); removed",
                            battle.battle_id, model, found.keys_removed)
            with suppress(RedisError):
                if found.truncated:  # shown, marked cut; an endpoint that keeps doing it is benched
                    await self.health.record_failure(model, battle.voter_id,
                                                     EndpointError(model, "truncated", found.cut_note()))
                else:
                    await self.health.record_answer(model, first_token - started)
        except Exception as exc:  # an endpoint failure must not end the other streams
            self.metrics.answer_failed(model)
            log.warning("battle %s: answer of %s failed: %s", battle.battle_id, model, exc)
            if not isinstance(exc, RedisError):  # a Redis outage is not the model's fault
                # the circuit breaker benches only after several failures from several voters
                with suppress(RedisError):
                    await self.health.record_failure(model, battle.voter_id, exc)
        finally:  # always report the end, or the turn would wait for this answer forever
            await updates.put((position, None, failed, found.truncated is not None))

    @asynccontextmanager
    async def _in_flight(self, model: str):
        """Count one answer of ``model`` in flight for the duration of the block, if the model has
        a ``max_concurrent`` limit (otherwise there is nothing to count it against: no round trips)."""
        spec = self.endpoints.spec(model)
        if spec.max_concurrent is None:
            yield
            return
        async with self.store.answer_in_flight(model, spec.max_answer_seconds):
            yield
