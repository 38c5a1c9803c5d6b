"""Regenerating one answer before the vote, in the battle engine: real Redis, real demo endpoints
through the openai client, the real matchmaker. The demo models here number their answers
(tests.numbered_models), so a regenerated answer differs from the one it replaces."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis.asyncio as aioredis

from arena.battles.engine import BattleService
from arena.battles.limits import BattleLimits
from arena.battles.store import BattleStore
from arena.battles.style import style_features
from arena.errors import BattleConflict, RateLimited, RegenerationFailed, RegenerationOff, UnknownLabel, WrongSession
from arena.keys import battle_key
from arena.matchmaker import build_matchmaker
from arena.models.demo_models import DEMO_MODELS, demo_model_specs
from arena.models.demo_server import DemoServer
from arena.models.endpoints import EndpointPool
from arena.trust.self_identification import NAMES_ITSELF
from leaderboard.data.events import VoteEvent
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import wait_until
from tests.numbered_models import NumberedModels

SESSION = "session-1"


def events(client_sync) -> list[VoteEvent]:
    entries = client_sync.xrange(vote_stream_key("arena"))
    return [VoteEvent.model_validate_json(fields[b"event"]) for _, fields in entries]


async def stored_state(client, battle_id: str) -> str:
    return (await client.hget(battle_key("arena", battle_id), "state")).decode()


@pytest.fixture
async def service_for(redis_url):
    """service_for(models, **options): a BattleService on demo endpoints serving ``models``."""
    client = aioredis.Redis.from_url(redis_url)
    opened = []

    async def build(models: NumberedModels, **options) -> BattleService:
        server = DemoServer(token_delay=0.001, models=models.models()).__enter__()
        specs = [spec.model_copy(update={"max_retries": 0}) for spec in demo_model_specs(server.url)]
        pool = await EndpointPool(specs).__aenter__()
        opened.append((models, server, pool))
        return BattleService(BattleStore(client), pool, build_matchmaker("uniform"), limits=BattleLimits(**options))

    yield build
    for models, server, pool in opened:
        if models.held is not None:
            models.held.set()  # even when a check failed: the server could not stop otherwise
        await pool.__aexit__(None, None, None)
        server.__exit__(None, None, None)
    await client.aclose()


async def test_the_regenerated_answer_replaces_the_old_one_in_history_style_and_the_vote(service_for, redis_client):
    models = NumberedModels()
    service = await service_for(models)
    battle = await service.create(SESSION, k=2)
    first = await service.run_turn(battle.battle_id, SESSION, "How do tides work?")
    regenerated = await service.run_regeneration(battle.battle_id, SESSION, "A")
    assert regenerated.done and regenerated.position == 0 and regenerated.regenerations == [1, 0]
    assert regenerated.answers[0] != first.answers[0]  # a new answer for A ...
    assert regenerated.answers[1] == first.answers[1]  # ... and B untouched
    model_a = battle.models[0]
    assert models.sent[model_a][1] == models.sent[model_a][0]  # asked again with the same conversation

    # the follow-up's history is the new answer, not the old one
    await service.run_turn(battle.battle_id, SESSION, "And why twice a day?")
    assert models.sent[model_a][2][:3] == (("user", "How do tides work?"), ("assistant", regenerated.answers[0]),
                                            ("user", "And why twice a day?"))

    receipt = await service.vote(battle.battle_id, SESSION, "voter-1", outcome="model_a")
    (event,) = events(redis_client)
    assert event.vote_id == receipt.vote_id
    assert event.regenerations == [1, 0]
    stored, _ = await service.load(battle.battle_id, SESSION)
    assert event.style == [style_features([turn.answers[position] for turn in stored.turns]) for position in (0, 1)]
    assert stored.turns[0].answers[0] == regenerated.answers[0]
    assert event.style[0] != style_features([first.answers[0], stored.turns[1].answers[0]])


async def test_a_vote_without_regeneration_records_none(service_for, redis_client):
    service = await service_for(NumberedModels())
    battle = await service.create(SESSION, k=2)
    await service.run_turn(battle.battle_id, SESSION, "Name a colour.")
    await service.vote(battle.battle_id, SESSION, "voter-1", outcome="tie")
    assert events(redis_client)[0].regenerations == []


async def test_the_cap_counts_per_side_over_the_whole_battle(service_for, redis_client):
    service = await service_for(NumberedModels(), max_regenerations=1)
    battle = await service.create(SESSION, k=4)
    await service.run_turn(battle.battle_id, SESSION, "Name a colour.")
    await service.run_regeneration(battle.battle_id, SESSION, "C")
    with pytest.raises(BattleConflict, match="answer C of battle .* was already regenerated 1 time, the limit"):
        await service.run_regeneration(battle.battle_id, SESSION, "C")
    await service.run_turn(battle.battle_id, SESSION, "And another?")  # a new turn does not reset the count
    with pytest.raises(BattleConflict, match="already regenerated 1 time"):
        await service.run_regeneration(battle.battle_id, SESSION, "C")
    last = await service.run_regeneration(battle.battle_id, SESSION, "A")
    assert last.regenerations == [1, 0, 1, 0]
    assert await stored_state(service.redis, battle.battle_id) == "ready"  # a refusal leaves it votable
    await service.vote(battle.battle_id, SESSION, "voter-1", ranking=[["A"], ["B"], ["C"], ["D"]])
    assert events(redis_client)[0].regenerations == [1, 0, 1, 0]


async def test_refusals_name_what_is_wrong(service_for):
    service = await service_for(NumberedModels())
    battle = await service.create(SESSION, k=2)
    with pytest.raises(BattleConflict, match="has no answers yet: send a prompt first"):
        await service.run_regeneration(battle.battle_id, SESSION, "A")
    await service.run_turn(battle.battle_id, SESSION, "Name a colour.")
    with pytest.raises(UnknownLabel, match="unknown label 'C': this battle's answers are A, B"):
        await service.run_regeneration(battle.battle_id, SESSION, "C")
    with pytest.raises(WrongSession):
        await service.run_regeneration(battle.battle_id, "someone-else", "A")
    await service.vote(battle.battle_id, SESSION, "voter-1", outcome="model_b")
    with pytest.raises(BattleConflict, match="cannot be regenerated after the vote"):
        await service.run_regeneration(battle.battle_id, SESSION, "A")
    off = await service_for(NumberedModels(), max_regenerations=0)
    with pytest.raises(RegenerationOff, match="turned off"):
        await off.run_regeneration(battle.battle_id, SESSION, "A")


async def test_nothing_else_lands_while_answers_stream_or_one_is_regenerated(service_for, redis_client):
    held = threading.Event()
    service = await service_for(NumberedModels(held=held))
    battle = await service.create(SESSION, k=2)
    turn = asyncio.create_task(service.run_turn(battle.battle_id, SESSION, "Name a colour."))
    await wait_for_state(redis_client, battle.battle_id, "streaming")
    with pytest.raises(BattleConflict, match="still answering: regenerate once every answer has finished"):
        await service.run_regeneration(battle.battle_id, SESSION, "A")
    held.set()
    await turn
    held.clear()
    regeneration = asyncio.create_task(service.run_regeneration(battle.battle_id, SESSION, "B"))
    try:
        await wait_for_state(redis_client, battle.battle_id, "regenerating")
        with pytest.raises(BattleConflict, match="is regenerating an answer: wait until it finishes"):
            await service.vote(battle.battle_id, SESSION, "voter-1", outcome="model_a")
        with pytest.raises(BattleConflict, match="already regenerating an answer"):
            await service.run_regeneration(battle.battle_id, SESSION, "A")
        with pytest.raises(BattleConflict, match="is regenerating an answer"):
            await service.run_turn(battle.battle_id, SESSION, "A follow-up")
    finally:
        held.set()
    assert (await regeneration).regenerations == [0, 1]
    await service.vote(battle.battle_id, SESSION, "voter-1", outcome="model_a")


async def wait_for_state(redis_client, battle_id: str, state: str) -> None:
    key = battle_key("arena", battle_id)
    await asyncio.to_thread(wait_until, lambda: redis_client.hget(key, "state") == state.encode(),
                            what=f"the battle to be {state}")


async def test_a_failed_regeneration_keeps_the_previous_answer_and_the_battle_votable(service_for, redis_client):
    models = NumberedModels(failing=DEMO_MODELS)  # every model answers once, then fails
    service = await service_for(models)
    battle = await service.create(SESSION, k=2)
    first = await service.run_turn(battle.battle_id, SESSION, "Name a colour.")
    failure = "answer A could not be regenerated.*previous answer is kept"
    with pytest.raises(RegenerationFailed, match=failure) as refused:
        await service.run_regeneration(battle.battle_id, SESSION, "A")
    assert refused.value.status == 502
    stored, state = await service.load(battle.battle_id, SESSION)
    assert state == "ready"
    assert stored.turns[-1].answers == first.answers and stored.regenerations == []
    await service.vote(battle.battle_id, SESSION, "voter-1", outcome="model_b")
    (event,) = events(redis_client)
    assert event.regenerations == []  # a failed attempt replaced nothing
    assert event.style[0] == style_features([first.answers[0]])


async def test_a_regenerated_answer_that_names_its_model_flags_the_vote(service_for, redis_client):
    service = await service_for(NumberedModels(named=DEMO_MODELS))  # each names itself from its second answer
    battle = await service.create(SESSION, k=2)
    await service.run_turn(battle.battle_id, SESSION, "Name a colour.")
    await service.run_regeneration(battle.battle_id, SESSION, "B")
    receipt = await service.vote(battle.battle_id, SESSION, "voter-1", outcome="model_a")
    assert receipt.identity_flags == (NAMES_ITSELF + "B",)
    assert events(redis_client)[0].identity_flags == [NAMES_ITSELF + "B"]


async def test_a_regeneration_counts_as_a_new_battle_against_the_voters_limit(service_for):
    service = await service_for(NumberedModels(), battles_per_minute=2)
    battle = await service.create(SESSION, k=2, voter_id="voter-1")
    await service.run_turn(battle.battle_id, SESSION, "Name a colour.")
    await service.run_regeneration(battle.battle_id, SESSION, "A", voter_id="voter-1")
    with pytest.raises(RateLimited, match="too many new battles .* \\(a regeneration counts as a new battle\\)"):
        await service.run_regeneration(battle.battle_id, SESSION, "B", voter_id="voter-1")
    assert await stored_state(service.redis, battle.battle_id) == "ready"


def test_the_vote_event_checks_its_regenerations():
    from tests.helpers import make_vote

    vote = make_vote("alpha", "beta", "model_a")
    assert vote.regenerations == []  # none: the default, as in votes recorded before the field existed
    assert VoteEvent.model_validate_json(vote.model_dump_json()).regenerations == []
    counted = VoteEvent.model_validate({**vote.model_dump(), "regenerations": [2, 0]})
    assert counted.regenerations == [2, 0]
    with pytest.raises(ValueError, match="regenerations has 3 counts for 2 models"):
        VoteEvent.model_validate({**vote.model_dump(), "regenerations": [1, 0, 0]})
    with pytest.raises(ValueError, match="regenerations must be counts of 0 or more"):
        VoteEvent.model_validate({**vote.model_dump(), "regenerations": [-1, 0]})
