"""Model status: may a model be seated in a new battle right now, and if not, why not.

One vocabulary (:class:`ModelStatus`, DESIGN.md's) and one read, for everyone who asks: the
battle engine before it seats models, ``/api/models`` and ``/healthz``, the owners' view, the
operator's ``matchmaker status`` and ``models list``, and the matchmaker (which leaves paused
models out of every choice, whoever calls it). What decides a status is in Redis, so every web
process sees the same.

A registered model's lifecycle comes first (kept with its registration, arena.owners.store):
``pending`` (waiting for the operator's approval), ``rejected``, ``retired`` (deleted by its
owner; its votes stay). A model that is live (every configured model; an approved owner model)
is then, the first that applies winning:

- ``paused``: the operator paused it (``paused_models_key``; ``python -m arena matchmaker
  pause``), or its owner did;
- ``benched``: the circuit breaker took it out after repeated failures (``model_benched_key``,
  arena.models.health), until a probe succeeds;
- ``full``: it is generating as many answers as its ``max_concurrent`` allows
  (``model_inflight_key``; models without a limit are never full and cost no read), or it has
  had its daily quota of battles (``model_daily_battles_key``);
- ``active``: none of these: it may be seated.

A named battle (the voter picks the models) sees a stricter ``full`` (``named=True``): the caller
passes the named share of each limit and quota (arena.battles.limits: ``--named-share``), the
answers in flight are held against it and the day's named battles (``model_daily_named_battles_key``)
against the quota's share, so named battles never take a model out of anonymous ones.

Reads are queued on a pipeline the caller executes (sync or asyncio: redis-py queues commands
the same way on both), so they share one round trip with whatever else the caller reads.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from arena.keys import (
    model_benched_key,
    model_daily_battles_key,
    model_daily_named_battles_key,
    model_inflight_key,
    paused_models_key,
)
from leaderboard.store.stream import text


class ModelStatus(StrEnum):
    """A model's standing; the values are the strings ``/api/models`` returns."""

    ACTIVE = "active"
    PAUSED = "paused"
    BENCHED = "benched"
    FULL = "full"
    # a registered model's lifecycle before or after it is live
    PENDING = "pending"
    REJECTED = "rejected"
    RETIRED = "retired"


# Reasons a live model sits out new battles, the one that wins first.
_UNAVAILABLE_IN_ORDER = (ModelStatus.PAUSED, ModelStatus.BENCHED, ModelStatus.FULL)


@dataclass(frozen=True)
class Conditions:
    """Which models are paused, benched or full (a model may be in several)."""

    paused: frozenset[str] = frozenset()
    benched: frozenset[str] = frozenset()
    full: frozenset[str] = frozenset()

    def status(self, model: str) -> ModelStatus:
        members = {ModelStatus.PAUSED: self.paused, ModelStatus.BENCHED: self.benched, ModelStatus.FULL: self.full}
        for status in _UNAVAILABLE_IN_ORDER:
            if model in members[status]:
                return status
        return ModelStatus.ACTIVE




# -- the paused set (what the matchmaker needs) -------------------------------------------------

def queue_paused(pipe, prefix: str) -> None:
    """Queue the read of the paused set on ``pipe`` (one reply: see :func:`paused_from`)."""
    pipe.smembers(paused_models_key(prefix))


def paused_from(reply) -> frozenset[str]:
    return frozenset(text(model) for model in reply)


def paused_models(client, prefix: str) -> frozenset[str]:
    """The paused set, read on its own (sync client)."""
    return paused_from(client.smembers(paused_models_key(prefix)))


def pause(client, prefix: str, model: str) -> None:
    """Leave ``model`` out of every new battle, in every process at once (until :func:`resume`)."""
    client.sadd(paused_models_key(prefix), model)


def resume(client, prefix: str, model: str) -> None:
    client.srem(paused_models_key(prefix), model)


# -- every status of the configured models ------------------------------------------------------

def queue_conditions(pipe, prefix: str, limits: Mapping[str, int | None],
                     quotas: Mapping[str, int] | None = None, day: str = "", named: bool = False) -> None:
    """Queue on ``pipe`` the reads behind the statuses of the live models ``limits`` (name ->
    ``max_concurrent``, None for no limit) and the daily battle ``quotas`` (name -> battles a
    day, for ``day``; with ``named``, named battles a day); see :func:`conditions_from`."""
    daily_key = model_daily_named_battles_key if named else model_daily_battles_key
    queue_paused(pipe, prefix)
    for name in limits:
        pipe.exists(model_benched_key(prefix, name))
    for name in _capped(limits):
        pipe.get(model_inflight_key(prefix, name))
    for name in quotas or {}:
        pipe.get(daily_key(prefix, name, day))


def conditions_from(replies: Sequence, limits: Mapping[str, int | None],
                    quotas: Mapping[str, int] | None = None) -> Conditions:
    """The replies of :func:`queue_conditions` (in order, nothing else between them) as Conditions."""
    names, capped, quotas = list(limits), _capped(limits), dict(quotas or {})
    benched_replies = replies[1:1 + len(names)]
    inflight_replies = replies[1 + len(names):1 + len(names) + len(capped)]
    quota_replies = replies[1 + len(names) + len(capped):1 + len(names) + len(capped) + len(quotas)]
    full = {name for name, inflight in zip(capped, inflight_replies) if int(inflight or 0) >= limits[name]}
    full |= {name for name, used in zip(quotas, quota_replies) if int(used or 0) >= quotas[name]}
    return Conditions(
        paused=paused_from(replies[0]),
        benched=frozenset(name for name, down in zip(names, benched_replies) if down),
        full=frozenset(full),
    )


async def read_statuses(client, prefix: str, limits: Mapping[str, int | None],
                        quotas: Mapping[str, int] | None = None, day: str = "",
                        named: bool = False) -> dict[str, ModelStatus]:
    """Each live model's status (``limits``: name -> ``max_concurrent``; ``quotas``: name ->
    battles a day, counted for ``day``; ``named``: the named battles' shares of both, see the
    module's docstring), in one round trip on an asyncio client."""
    if not limits:
        return {}
    pipe = client.pipeline(transaction=False)
    queue_conditions(pipe, prefix, limits, quotas, day, named)
    conditions = conditions_from(await pipe.execute(), limits, quotas)
    return {name: conditions.status(name) for name in limits}


def available_models(statuses: Mapping[str, ModelStatus]) -> list[str]:
    """The models of ``statuses`` that may be seated in a new battle now."""
    return [name for name, status in statuses.items() if status == ModelStatus.ACTIVE]


def utc_day(now: datetime.datetime | None = None) -> str:
    """The day a daily quota counts in (UTC, YYYY-MM-DD)."""
    return (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d")


def _capped(limits: Mapping[str, int | None]) -> list[str]:
    return [name for name, limit in limits.items() if limit is not None]


# -- for a caller who does not know the configured models (the operator CLI) --------------------

def known_conditions(client, prefix: str) -> Conditions:
    """Paused and benched models as far as Redis alone tells (sync client): the paused set and
    every bench marker, found by SCAN. ``full`` needs the models' limits, which only the web
    processes know, so it is left empty."""
    head, tail = model_benched_key(prefix, "\0").split("\0")
    keys = (text(key) for key in client.scan_iter(match=model_benched_key(prefix, "*")))
    benched = frozenset(key[len(head):len(key) - len(tail)] for key in keys)
    return Conditions(paused=paused_models(client, prefix), benched=benched)
