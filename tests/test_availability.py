"""Model availability against a real Redis: one vocabulary, one round trip, the first reason wins."""

from __future__ import annotations

import redis.asyncio as aioredis

from arena.keys import model_benched_key, model_inflight_key, paused_models_key
from arena.models import availability
from arena.models.availability import ModelStatus


class CountingClient:
    """An asyncio client that allows pipelines only, and counts their round trips."""

    def __init__(self, client):
        self._client = client
        self.round_trips = 0

    def pipeline(self, transaction=True):
        pipe = self._client.pipeline(transaction=transaction)
        execute = pipe.execute

        async def counted_execute():
            self.round_trips += 1
            return await execute()

        pipe.execute = counted_execute
        return pipe


async def test_paused_benched_and_full_in_one_round_trip(redis_url, redis_client):
    limits = {"calm": None, "busy": 2, "crowded": 1, "broken": None, "held": 1, "stopped": None}
    availability.pause(redis_client, "arena", "held")
    availability.pause(redis_client, "arena", "stopped")
    redis_client.hset(model_benched_key("arena", "broken"), "reason", "down")
    redis_client.hset(model_benched_key("arena", "stopped"), "reason", "down")  # paused and benched: paused wins
    redis_client.set(model_inflight_key("arena", "busy"), 1)  # below its limit of 2
    redis_client.set(model_inflight_key("arena", "crowded"), 1)  # at its limit of 1
    redis_client.set(model_inflight_key("arena", "held"), 1)  # paused and full: paused wins
    redis_client.set(model_inflight_key("arena", "calm"), 99)  # no limit: never full (and not read)
    client = aioredis.Redis.from_url(redis_url)
    counting = CountingClient(client)
    try:
        statuses = await availability.read_statuses(counting, "arena", limits)
    finally:
        await client.aclose()
    assert statuses == {"calm": "active", "busy": "active", "crowded": "full", "broken": "benched",
                        "held": "paused", "stopped": "paused"}
    assert all(type(status) is ModelStatus for status in statuses.values())
    assert counting.round_trips == 1
    assert availability.available_models(statuses) == ["calm", "busy"]
    assert await availability.read_statuses(counting, "arena", {}) == {}
    assert counting.round_trips == 1  # nothing configured: nothing read


def test_the_vocabulary_is_designs_one():
    assert {s.value for s in ModelStatus} == {"pending", "active", "full", "benched", "paused", "rejected", "retired"}
    conditions = availability.Conditions(paused=frozenset({"x"}), benched=frozenset({"x", "y"}),
                                         full=frozenset({"y", "z"}))
    assert [conditions.status(m) for m in "xyzw"] == ["paused", "benched", "full", "active"]


def test_pause_resume_and_what_the_operator_sees(redis_client):
    assert paused_models_key("arena") == "arena:matchmaker:excluded"  # pauses made before the move still hold
    availability.pause(redis_client, "arena", "m1")
    availability.pause(redis_client, "other", "m9")  # another arena on the same Redis
    redis_client.hset(model_benched_key("arena", "m2"), "reason", "down")
    redis_client.hset(model_benched_key("arena", "m1"), "reason", "down")
    known = availability.known_conditions(redis_client, "arena")
    assert (known.paused, known.benched, known.full) == ({"m1"}, {"m1", "m2"}, frozenset())
    availability.resume(redis_client, "arena", "m1")
    assert availability.paused_models(redis_client, "arena") == frozenset()
    assert availability.paused_models(redis_client, "other") == {"m9"}


def test_the_matchmaker_leaves_paused_models_out_of_any_choice(redis_client):
    import numpy as np

    from arena.matchmaker import build_matchmaker

    matchmaker = build_matchmaker("uniform", redis_client)
    rng = np.random.default_rng(0)
    availability.pause(redis_client, "arena", "b")
    assert all("b" not in matchmaker.choose(["a", "b", "c"], 2, rng).models for _ in range(30))
    availability.resume(redis_client, "arena", "b")
    assert any("b" in matchmaker.choose(["a", "b", "c"], 2, rng).models for _ in range(30))
