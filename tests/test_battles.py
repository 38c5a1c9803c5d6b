"""The battle engine's vote checks for K-way battles (the JSON API only creates two-way ones):
real Redis, real demo endpoints through the openai client, the real matchmaker."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis.asyncio as aioredis

from arena.battles.engine import BattleService
from arena.battles.limits import BattleLimits
from arena.battles.store import INFLIGHT_GRACE_SECONDS, BattleStore
from arena.errors import ArenaBusy, BattleConflict, InvalidVote
from arena.keys import model_inflight_key
from arena.matchmaker import build_matchmaker
from arena.models.demo_models import DEMO_MODELS, demo_model_specs
from arena.models.demo_server import DemoServer
from arena.models.endpoints import EndpointPool
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import WAIT_SECONDS, wait_until


@pytest.fixture(scope="module")
def demo_server():
    with DemoServer(token_delay=0.001) as server:
        yield server


@pytest.mark.parametrize(("ranking", "outcome", "detail"), [
    ([["A"], ["B"], ["C"]], None, "must place each of A, B, C, D exactly once"),
    ([["A"], ["B"], ["C"], ["E"]], None, "unknown label 'E'"),
    ([["A"], [], ["B", "C", "D"]], None, "a ranking group is empty"),
    (None, "model_a", "not an 'outcome'"),
    (None, None, "the vote has no 'ranking'"),
])
async def test_malformed_kway_vote_is_invalid_before_and_after_the_vote(redis_url, demo_server, ranking, outcome,
                                                                        detail):
    client = aioredis.Redis.from_url(redis_url)
    async with EndpointPool(demo_model_specs(demo_server.url)) as pool:
        service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"))
        battle = await service.create("session-1", k=4)
        await service.run_turn(battle.battle_id, "session-1", "Name a colour.")
        with pytest.raises(InvalidVote, match=detail):
            await service.vote(battle.battle_id, "session-1", "voter", outcome=outcome, ranking=ranking)
        await service.vote(battle.battle_id, "session-1", "voter", ranking=[["B"], ["A", "C"], ["D"]])
        with pytest.raises(InvalidVote, match=detail):  # malformed input is 422 even once voted, not 409
            await service.vote(battle.battle_id, "session-1", "voter", outcome=outcome, ranking=ranking)
        with pytest.raises(BattleConflict, match="already has a vote"):
            await service.vote(battle.battle_id, "session-1", "voter", ranking=[["A"], ["B"], ["C"], ["D"]])
    assert await client.xlen(vote_stream_key("arena")) == 1
    await client.aclose()


def answers_held_until(released: threading.Event) -> dict:
    """The demo models, each answering only once ``released`` is set: a test checks what holds
    while answers are in flight without guessing how long an answer takes."""
    def held(answer):
        def answer_when_released(conversation):
            released.wait(WAIT_SECONDS)  # blocks the demo server's loop: every answer waits
            return answer(conversation)
        return answer_when_released

    return {name: held(answer) for name, answer in DEMO_MODELS.items()}


async def test_a_model_at_its_max_concurrent_answers_is_left_out_until_one_finishes(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    released = threading.Event()
    with DemoServer(token_delay=0.001, models=answers_held_until(released)) as held:
        specs = demo_model_specs(held.url)
        specs[0] = specs[0].model_copy(update={"max_concurrent": 1})
        capped = specs[0].name
        async with EndpointPool(specs) as pool:
            # every model answers: a battle of all of them is a size on offer
            service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"),
                                    limits=BattleLimits(kway_sizes=(len(specs),)))
            everyone = sorted(spec.name for spec in specs)
            assert sorted(await service.available_models()) == everyone
            battle = await service.create("session-1", k=len(specs))  # every model answers
            turn = asyncio.create_task(service.run_turn(battle.battle_id, "session-1", "Name a colour."))
            try:
                key = model_inflight_key("arena", capped)
                await asyncio.to_thread(wait_until, lambda: redis_client.get(key) is not None,
                                        what=f"{capped}'s answer to be counted in flight")
                assert int(await client.get(key)) == 1
                assert 0 < await client.ttl(key) <= specs[0].max_answer_seconds + INFLIGHT_GRACE_SECONDS
                assert sorted(await service.available_models()) == sorted(set(everyone) - {capped})
                assert (await service.model_status())[capped] == "full"
                assert await client.get(model_inflight_key("arena", specs[1].name)) is None  # no limit: not counted
            finally:
                released.set()  # even when a check failed: the server could not stop otherwise
            await turn
            assert await client.get(key) is None  # back to zero: the counter is gone
            assert sorted(await service.available_models()) == everyone
    await client.aclose()


async def test_a_turn_refused_as_busy_after_taking_the_battle_hands_it_back(redis_url, demo_server):
    """Two turns at once with room for one: the one refused after it took its battle's lock (the
    answer budget filled while it read the battle) leaves that battle as it was, not 'streaming'."""
    client = aioredis.Redis.from_url(redis_url)
    async with EndpointPool(demo_model_specs(demo_server.url)) as pool:
        service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"),
                                limits=BattleLimits(max_concurrent_answers=2))
        refused = 0
        for attempt in range(20):  # the interleaving is the event loop's: try until it happens
            first = await service.create(f"s{attempt}a")
            second = await service.create(f"s{attempt}b")
            results = await asyncio.gather(service.run_turn(first.battle_id, f"s{attempt}a", "Hi."),
                                           service.run_turn(second.battle_id, f"s{attempt}b", "Hi."),
                                           return_exceptions=True)
            states = [(await client.hget(f"arena:battle:{battle.battle_id}", "state")).decode()
                      for battle in (first, second)]
            assert "streaming" not in states, (results, states)
            for result, state in zip(results, states):
                if isinstance(result, ArenaBusy):
                    assert state == "open"
                    refused += 1
            if refused:
                break
        assert refused, "no turn was ever refused for the answer budget"
        assert service.answers_in_flight == 0
    await client.aclose()
