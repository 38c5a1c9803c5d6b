"""Answers an endpoint cannot abuse: the size cap, the model's own key removed, and the same checks
at registration as in battles. Real endpoints on 127.0.0.1 (tests.owner_endpoints: one that streams
100 MB ignoring max_tokens, one that echoes its bearer key in pieces), the real demo server, the
real openai client, the real embedded Redis (and its AOF)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from arena.battles.engine import BattleService
from arena.battles.limits import BattleLimits
from arena.battles.requests import NamedChoice
from arena.battles.store import BattleStore
from arena.errors import NoModelsAvailable
from arena.keys import battle_key
from arena.matchmaker import build_matchmaker
from arena.models.answer_checks import AnswerGuard
from arena.models.config import ModelSpec
from arena.models.demo_models import demo_model_specs
from arena.models.demo_server import DemoServer
from arena.models.endpoints import EndpointPool
from arena.models.health import BreakerPolicy, ModelHealth
from arena.models.health_check import HEALTH_PROMPTS, check_endpoint
from arena.owners.service import ModelRegistration, OwnerService
from arena.owners.store import OwnerError, OwnerStore
from arena.trust.secret_box import SecretBox
from arena.trust.ssrf import EndpointGuard
from leaderboard.data.events import VoteEvent
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import wait_until, wait_until_async
from tests.owner_endpoints import FLOOD_BYTES, OwnerEndpoint, echo_pieces

HOSTILE = "acme-hostile"
KEY = "sk-owner-hostile-0123456789abcdefXYZ"
CAP = 20000
CUT_NOTE = "*(answer cut at 20,000 characters)*"


def hostile_spec(url: str, **fields) -> ModelSpec:
    return ModelSpec(name=HOSTILE, base_url=url, model_id="m", max_retries=0, timeout=10.0, **fields)


def leaked_forms(key: str) -> list[str]:
    """What must not appear anywhere: the key, reversed, the whole base64 of what the endpoint sent,
    and every 12-character piece of its base64 that encodes the key alone."""
    encoded = base64.b64encode(f"Bearer {key}".encode()).decode()
    inner = encoded[12:-4]  # past "Bearer " (and the group it shares), before the last group
    return [key, key[::-1], encoded] + [inner[start:start + 12] for start in range(len(inner) - 11)]


def shows_key(text: str | bytes) -> list[str]:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [form for form in leaked_forms(KEY) if form in text]


def used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


@pytest.fixture
async def arena(redis_url):
    """arena(hostile_endpoint, **options) -> (BattleService, demo model names): the demo models and
    the hostile endpoint's model (with KEY) in one pool; ``policy`` the breaker's, ``limits`` the battles'."""
    client = aioredis.Redis.from_url(redis_url)
    opened = []

    async def build(endpoint: OwnerEndpoint, *, policy: BreakerPolicy | None = None, keep_text: bool = False,
                    **limits) -> tuple[BattleService, list[str]]:
        demo = DemoServer(token_delay=0.0).__enter__()
        specs = [spec.model_copy(update={"max_retries": 0}) for spec in demo_model_specs(demo.url)]
        pool = await EndpointPool(specs).__aenter__()
        pool.add(hostile_spec(endpoint.url), KEY)
        opened.append((demo, pool))
        service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"), keep_text=keep_text,
                                limits=BattleLimits(**limits), health=ModelHealth(client, "arena", policy))
        return service, [spec.name for spec in specs]

    yield build
    for demo, pool in opened:
        await pool.__aexit__(None, None, None)
        demo.__exit__(None, None, None)
    await client.aclose()


async def test_an_endpoint_streaming_100_mb_is_cut_at_the_cap_and_20_such_battles_leave_the_arena_answering(
        arena, redis_client):
    with OwnerEndpoint("flood", api_key=KEY) as endpoint:
        # the breaker kept out of the way: this test is about what twenty such answers cost
        service, demo = await arena(endpoint, policy=BreakerPolicy(failures=1000, streak=0))
        before = used_memory(redis_client)
        battles = []
        for round_ in range(20):
            session = f"session-{round_}"
            battle = await service.create(session, k=2, chooser=NamedChoice((HOSTILE, demo[0])))
            progress = await service.run_turn(battle.battle_id, session, "Tell me a long story.")
            assert progress.done and progress.failed == [False, False]  # cut, not failed: the voter can vote
            assert progress.answers[0].endswith(CUT_NOTE) and "answer cut" not in progress.answers[1]
            stored, state = await service.load(battle.battle_id, session)
            assert state == "ready"
            assert len(stored.turns[0].answers[0]) == CAP and stored.turns[0].truncated == [True, False]
            battles.append((battle.battle_id, session))
        grown = used_memory(redis_client) - before
        sent = list(endpoint.flood_sent)

    per_battle = grown / 20
    print(f"20 battles against a 100 MB answer: Redis +{grown / 1e6:.2f} MB ({per_battle / 1e3:.1f} kB a battle, "
          f"cap {CAP} characters); the endpoint got to write at most {max(sent) / 1e6:.2f} MB of its "
          f"{FLOOD_BYTES / 1e6:.0f} MB an answer")
    # a battle keeps one capped answer (20,000 characters) and the demo's, so it costs the cap plus
    # little: never the megabytes the endpoint offered
    assert per_battle < CAP + 16 * 1024
    assert len(sent) == 20 and max(sent) < FLOOD_BYTES / 10  # the arena hung up; it did not read on
    for battle_id, _ in battles:
        assert await service.redis.hstrlen(battle_key("arena", battle_id), "battle") < CAP + 4096

    # the vote records the cut
    battle_id, session = battles[-1]
    await service.vote(battle_id, session, "voter-1", outcome="model_b")
    [(_, fields)] = redis_client.xrange(vote_stream_key("arena"))
    assert VoteEvent.model_validate_json(fields[b"event"]).truncated == [True, False]

    # and a battle of two demo models is answered as ever
    battle = await service.create("after", k=2, chooser=NamedChoice((demo[0], demo[1])))
    progress = await service.run_turn(battle.battle_id, "after", "How do tides work?")
    assert progress.done and progress.failed == [False, False] and all(progress.answers)
    assert not any("answer cut" in answer for answer in progress.answers)


async def test_an_endpoint_that_keeps_overrunning_the_cap_is_benched_by_the_breaker(arena):
    with OwnerEndpoint("flood", api_key=KEY) as endpoint:
        service, demo = await arena(endpoint, max_answer_chars=2000)  # the default breaker: 6 in a row bench
        cut = 0
        while True:
            session = f"session-{cut}"
            try:
                battle = await service.create(session, k=2, chooser=NamedChoice((HOSTILE, demo[0])))
            except NoModelsAvailable:
                break
            progress = await service.run_turn(battle.battle_id, session, "Tell me a long story.")
            assert progress.answers[0].endswith("*(answer cut at 2,000 characters)*")
            cut += 1
            assert cut <= 6, "the model should have been benched by now"
        benched = await service.health.benched([HOSTILE])
    assert cut == 6
    assert "answer cut at 2000 characters" in benched[HOSTILE]["reason"]


async def test_the_models_own_key_echoed_in_pieces_is_never_shown_nor_stored(arena, redis_client, redis_server):
    with OwnerEndpoint("echo_key", api_key=KEY) as endpoint:
        service, demo = await arena(endpoint, keep_text=True)
        battle = await service.create("session", k=2, chooser=NamedChoice((HOSTILE, demo[0])))
        seen = [progress.answers[0] async for progress in service.stream_turn(battle.battle_id, "session", "Hi")]
    assert endpoint.authorizations == [f"Bearer {KEY}"]  # it was sent the key, and sent it back
    assert seen[-1].startswith("Your key is [key removed]. Encoded: ")
    assert seen[-1].endswith(" and backwards: [key removed] -- end.")
    assert not [answer for answer in seen if shows_key(answer)]  # no progress update ever showed it

    await service.vote(battle.battle_id, "session", "voter-1", outcome="tie")  # with its text kept (release)
    stored = []
    for key in redis_client.keys("*"):
        kind = redis_client.type(key)
        if kind == b"hash":
            stored += [value for value in redis_client.hgetall(key).values()]
        elif kind == b"stream":
            stored += [str(fields).encode() for _, fields in redis_client.xrange(key)]
        elif kind == b"string":
            stored.append(redis_client.get(key))
    assert any(battle.battle_id.encode() in value for value in stored)
    assert not [value for value in stored if shows_key(value)]

    aof = Path(redis_server.data_dir)

    def appended() -> bytes:
        return b"".join(path.read_bytes() for path in aof.rglob("*.aof*") if path.is_file())

    wait_until(lambda text: battle.battle_id.encode() in text, observe=appended, what="the battle in the AOF")
    assert not shows_key(appended())


def test_a_key_split_anywhere_over_the_chunks_is_removed_and_the_cap_holds():
    answer = "".join(echo_pieces(KEY))
    for size in range(1, len(answer) + 1):
        guard = AnswerGuard(CAP, KEY)
        shown = "".join(guard.feed(answer[start:start + size]) for start in range(0, len(answer), size))
        shown += guard.finish()
        assert not shows_key(shown) and guard.report.keys_removed == 3, size
    for cap in (1, 10, 25, 60):  # cut anywhere, even inside a key: no piece of it shows
        guard = AnswerGuard(cap, KEY)
        shown = "".join(guard.feed(piece) for piece in echo_pieces(KEY)) + guard.finish()
        assert len(shown) <= cap and guard.report.truncated == "chars"
        assert not [form for form in leaked_forms(KEY) + [KEY[:12]] if form in shown], cap


@pytest.fixture
async def owners(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    store = OwnerStore(client, "arena")
    service = OwnerService(store, SecretBox(Fernet.generate_key()), EndpointGuard(allow_private=True),
                           configured_names=lambda: [], default_max_models=20)
    owner = await store.authenticate(await store.add_owner("acme"))
    yield service, owner
    await client.aclose()


async def test_registration_applies_the_battle_checks_cap_and_key(owners):
    service, owner = owners
    with OwnerEndpoint("flood", api_key=KEY) as endpoint:
        with pytest.raises(OwnerError) as refused:
            await service.register(owner, ModelRegistration(name="flood", base_url=endpoint.url, model_id="m",
                                                            api_key=KEY))
        sent = list(endpoint.flood_sent)
    assert refused.value.status == 422 and "health check failed (oversized)" in str(refused.value)
    assert f"answer cut at {CAP} characters" in str(refused.value)
    assert max(sent) < FLOOD_BYTES / 10

    with OwnerEndpoint("echo_key", api_key=KEY) as endpoint:
        model, report = await service.register(owner, ModelRegistration(name="echo", base_url=endpoint.url,
                                                                        model_id="m", api_key=KEY))
    assert report.ok and report.keys_removed == 3 and report.first_tokens.startswith("Your key is [key removed].")
    assert not shows_key(model.model_dump_json()) and not shows_key(str(report.as_dict()))


async def test_the_health_check_prompt_is_drawn_from_a_pool():
    with OwnerEndpoint() as endpoint:
        spec = ModelSpec(name="probe", base_url=endpoint.url, model_id="m", timeout=10.0)
        reports = await asyncio.gather(*[check_endpoint(spec, None, EndpointGuard(allow_private=True))
                                         for _ in range(12)])
    assert all(report.ok for report in reports)
    assert set(endpoint.prompts) <= set(HEALTH_PROMPTS)
    # twelve draws from twelve prompts all alike: probability 12 / 12**12, about 1e-12
    assert len(set(endpoint.prompts)) >= 2, endpoint.prompts


async def test_an_answer_past_its_time_limit_is_shown_cut_not_failed(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    with DemoServer(token_delay=0.3) as demo:
        specs = [spec.model_copy(update={"max_retries": 0, "max_answer_seconds": 2.0})
                 for spec in demo_model_specs(demo.url)]
        async with EndpointPool(specs) as pool:
            service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"))
            verbose = next(spec.name for spec in specs if spec.model_id == "demo-verbose")
            other = next(spec.name for spec in specs if spec.name != verbose)
            battle = await service.create("session", k=2, chooser=NamedChoice((verbose, other)))
            progress = await service.run_turn(battle.battle_id, "session", "Explain tides in detail.")
            stored, state = await service.load(battle.battle_id, "session")
    await client.aclose()
    assert state == "ready" and progress.failed == [False, False]
    assert stored.turns[0].truncated[0] and stored.turns[0].answers[0]
    assert progress.answers[0].endswith(f"*(answer cut at {len(stored.turns[0].answers[0]):,} characters)*")


async def test_a_benched_endpoint_still_overrunning_fails_its_probes_which_vary(arena):
    with OwnerEndpoint("flood", api_key=KEY) as endpoint:
        service, _ = await arena(endpoint, policy=BreakerPolicy(first_probe=0.2, max_probe=0.4),
                                 max_answer_chars=2000)
        await service.health.bench(HOSTILE, "by hand")

        async def probes_so_far() -> dict:
            await service.model_status()  # a status read starts the probes that are due
            return (await service.health.benched([HOSTILE]))[HOSTILE]

        record = await wait_until_async(probes_so_far, lambda record: record.get("probes", 0) >= 2,
                                        what="two failed probes")
        assert f"answer cut at {CAP} characters" in record["last_probe_error"]  # a probe's answer must be whole
        assert endpoint.prompts and set(endpoint.prompts) <= set(HEALTH_PROMPTS)
        endpoint.mode = "healthy"
        await wait_until_async(service.model_status, lambda statuses: statuses[HOSTILE] == "active",
                               what="the model back once it answers within the cap")
