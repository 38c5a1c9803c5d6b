"""Which models may be seated in a new battle right now, and probes that bring benched ones back.

A model's status comes from the registry (owners' models not live yet, or any more) and, for
the live ones, from Redis in one round trip (arena.models.availability says what each means).
Reading the statuses also starts any probe of a benched model that is due (arena.models.health:
the circuit breaker). A named battle sees each model ``full`` earlier: named battles may use
only a share of its concurrency and daily quota (``named_part``, from arena.battles.limits).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress

from redis.exceptions import RedisError

from arena.battles.store import BattleStore
from arena.models import availability
from arena.models.availability import ModelStatus
from arena.models.health import ModelHealth
from arena.models.health_check import probe_prompt

log = logging.getLogger(__name__)

# Longest wait between two looks for a due probe (seconds); shorter when the first probe comes sooner.
PROBE_CHECK_SECONDS = 5.0


class Seating:
    """Model statuses for the battles of ``store``'s arena, from ``endpoints`` (the pool or the
    owners' catalog) and ``health`` (the circuit breaker)."""

    def __init__(self, store: BattleStore, endpoints, health: ModelHealth):
        self.store = store
        self.endpoints = endpoints
        self.health = health
        self._probes: set[asyncio.Task] = set()  # probes still running: a task nobody holds may be collected
        self._next_probe_check = 0.0

    async def model_status(self) -> dict[str, ModelStatus]:
        """Every model's status: registered models not live yet (or any more) from the registry,
        the live ones "active", "paused", "benched" or "full" in one Redis round trip
        (arena.models.availability says what each means). Starts any probe of a benched model that is due."""
        standing = await self.endpoints.refresh()
        limits = {name: self.endpoints.spec(name).max_concurrent for name in self.endpoints.names
                  if name not in standing}
        statuses = await availability.read_statuses(self.store.redis, self.store.prefix, limits,
                                                    self.endpoints.daily_quotas(), availability.utc_day())
        benched = [name for name, status in statuses.items() if status == ModelStatus.BENCHED]
        if benched:
            await self._start_due_probes(benched)
        return {**statuses, **standing}

    async def available_models(self, *, anonymous: bool = True,
                               named_part: Callable[[int | None], int | None] | None = None) -> list[str]:
        """Models that may be seated in a new battle right now (see model_status); in an anonymous
        one (the default) only those whose owner let them enter anonymous battles. With
        ``named_part`` (a named battle: capacity -> the share named battles may use), a model whose
        named share of answers in flight or of today's battles is used counts as full."""
        statuses = await self.model_status()
        if named_part is not None:
            statuses = await self._named_statuses(statuses, named_part)
        return [name for name in availability.available_models(statuses)
                if not anonymous or self.endpoints.battle_eligible(name)]

    async def _named_statuses(self, statuses: dict[str, ModelStatus],
                              named_part: Callable[[int | None], int | None]) -> dict[str, ModelStatus]:
        active = [name for name, status in statuses.items() if status == ModelStatus.ACTIVE]
        limits = {name: named_part(self.endpoints.spec(name).max_concurrent) for name in active}
        quotas = {name: named_part(quota) for name, quota in self.endpoints.daily_quotas().items() if name in limits}
        named = await availability.read_statuses(self.store.redis, self.store.prefix, limits, quotas,
                                                 availability.utc_day(), named=True)
        return {**statuses, **named}

    async def _start_due_probes(self, benched: list[str]) -> None:
        """Probe benched models whose back-off has passed (one process per probe, by a Redis lock)."""
        now = time.monotonic()
        if now < self._next_probe_check:
            return
        self._next_probe_check = now + min(self.health.policy.first_probe / 2, PROBE_CHECK_SECONDS)
        for model, record in (await self.health.benched(benched)).items():
            if await self.health.claim_probe(model, record):
                task = asyncio.create_task(self._probe(model))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, model: str) -> None:
        try:
            # drawn from the registration check's pool: a probe an endpoint could recognise could be passed
            # by behaving for it alone (and an answer cut by the size cap fails the probe: complete())
            await self.endpoints.complete(model, [{"role": "user", "content": probe_prompt()}])
        except Exception as exc:
            log.info("probe of benched model %s failed: %s", model, exc)
            with suppress(RedisError):
                await self.health.probe_failed(model, exc)
        else:
            log.info("probe of benched model %s answered: back in rotation", model)
            with suppress(RedisError):
                await self.health.probe_passed(model)
