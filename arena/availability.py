"""Model availability: may a model be seated in a new battle right now, and if not, why not.

One vocabulary (:class:`ModelStatus`) and one read, for everyone who asks: the battle engine
before it seats models, ``/api/models`` and ``/healthz``, the operator's ``matchmaker status``,
and the matchmaker (which leaves paused models out of every choice, whoever calls it). What
decides a status is in Redis, so every web process sees the same:

- ``paused``: the operator paused it (``paused_models_key``; ``python -m arena matchmaker pause``);
- ``failing``: its endpoint failed within the last cool-down (``model_failing_key``, set by the
  battle engine when an answer fails);
- ``full``: it is generating as many answers as its ``max_concurrent`` allows
  (``model_inflight_key``; models without a limit are never full and cost no read);
- ``available``: none of these.

The first that applies wins, in that order: a paused model is paused whatever else holds.

DESIGN.md's vocabulary for registered models adds ``pending``, ``active``, ``benched``,
``rejected`` and ``retired``; their constants are here so the owner features produce them from
this module too. Nothing sets them yet: every configured model is active, and an active model's
standing for new battles is one of the four above (``available`` is DESIGN.md's ``active``
below its concurrency limit; the JSON of ``/api/models`` says ``available``).

Reads are queued on a pipeline the caller executes (sync or asyncio: redis-py queues commands
the same way on both), so they share one round trip with whatever else the caller reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from arena.keys import model_failing_key, model_inflight_key, paused_models_key
from leaderboard.stream import text


class ModelStatus(StrEnum):
    """A model's standing; the values are the strings ``/api/models`` returns."""

    AVAILABLE = "available"
    PAUSED = "paused"
    FAILING = "failing"
    FULL = "full"
    # DESIGN.md's registration lifecycle (owner features): not produced yet.
    PENDING = "pending"
    ACTIVE = "active"
    BENCHED = "benched"
    REJECTED = "rejected"
    RETIRED = "retired"


# Reasons a configured model sits out new battles, the one that wins first.
_UNAVAILABLE_IN_ORDER = (ModelStatus.PAUSED, ModelStatus.FAILING, ModelStatus.FULL)


@dataclass(frozen=True)
class Conditions:
    """Which models are paused, failing or full (a model may be in several)."""

    paused: frozenset[str] = frozenset()
    failing: frozenset[str] = frozenset()
    full: frozenset[str] = frozenset()

    def status(self, model: str) -> ModelStatus:
        members = {ModelStatus.PAUSED: self.paused, ModelStatus.FAILING: self.failing, ModelStatus.FULL: self.full}
        for status in _UNAVAILABLE_IN_ORDER:
            if model in members[status]:
                return status
        return ModelStatus.AVAILABLE




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

def queue_conditions(pipe, prefix: str, limits: Mapping[str, int | None]) -> None:
    """Queue on ``pipe`` the reads behind the statuses of the configured models ``limits``
    (name -> ``max_concurrent``, None for no limit); see :func:`conditions_from`."""
    queue_paused(pipe, prefix)
    for name in limits:
        pipe.exists(model_failing_key(prefix, name))
    for name in _capped(limits):
        pipe.get(model_inflight_key(prefix, name))


def conditions_from(replies: Sequence, limits: Mapping[str, int | None]) -> Conditions:
    """The replies of :func:`queue_conditions` (in order, nothing else between them) as Conditions."""
    names, capped = list(limits), _capped(limits)
    failing_replies = replies[1:1 + len(names)]
    inflight_replies = replies[1 + len(names):1 + len(names) + len(capped)]
    return Conditions(
        paused=paused_from(replies[0]),
        failing=frozenset(name for name, down in zip(names, failing_replies) if down),
        full=frozenset(name for name, inflight in zip(capped, inflight_replies) if int(inflight or 0) >= limits[name]),
    )


async def read_statuses(client, prefix: str, limits: Mapping[str, int | None]) -> dict[str, ModelStatus]:
    """Each configured model's status (``limits``: name -> ``max_concurrent``), in one round trip
    on an asyncio client."""
    if not limits:
        return {}
    pipe = client.pipeline(transaction=False)
    queue_conditions(pipe, prefix, limits)
    conditions = conditions_from(await pipe.execute(), limits)
    return {name: conditions.status(name) for name in limits}


def available_models(statuses: Mapping[str, ModelStatus]) -> list[str]:
    """The models of ``statuses`` that may be seated in a new battle now."""
    return [name for name, status in statuses.items() if status == ModelStatus.AVAILABLE]


def _capped(limits: Mapping[str, int | None]) -> list[str]:
    return [name for name, limit in limits.items() if limit is not None]


# -- for a caller who does not know the configured models (the operator CLI) --------------------

def known_conditions(client, prefix: str) -> Conditions:
    """Paused and failing models as far as Redis alone tells (sync client): the paused set and
    every failing marker, found by SCAN. ``full`` needs the models' limits, which only the web
    processes know, so it is left empty."""
    head, tail = model_failing_key(prefix, "\0").split("\0")
    keys = (text(key) for key in client.scan_iter(match=model_failing_key(prefix, "*")))
    failing = frozenset(key[len(head):len(key) - len(tail)] for key in keys)
    return Conditions(paused=paused_models(client, prefix), failing=failing)
