"""The live health check at registration and the circuit breaker in battles, against real HTTP
endpoints on 127.0.0.1 (the operator allows private endpoints here): healthy, slow, 500, broken
mid-stream, 401, and the other error classes; benching needs several failures from several
voters, a failure the request caused never benches, and a probe brings the model back."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from arena.battles.engine import BattleService
from arena.battles.store import BattleStore
from arena.matchmaker import build_matchmaker
from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointPool
from arena.models.health import BreakerPolicy, ModelHealth
from arena.ops.redis_server import free_port
from arena.owners.service import ModelRegistration, OwnerService
from arena.owners.store import OwnerError, OwnerStore
from arena.trust.secret_box import SecretBox
from arena.trust.ssrf import EndpointGuard
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import wait_until_async
from tests.owner_endpoints import OwnerEndpoint


@pytest.fixture
async def owners(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    store = OwnerStore(client, "arena")
    service = OwnerService(store, SecretBox(Fernet.generate_key()), EndpointGuard(allow_private=True),
                           configured_names=lambda: ["configured-model"], default_max_models=20)
    owner = await store.authenticate(await store.add_owner("acme"))
    yield service, owner
    await client.aclose()


def registration(url: str, name: str = "acme-1", **fields) -> ModelRegistration:
    return ModelRegistration(name=name, base_url=url, model_id="m", **{"timeout": 5, **fields})


@pytest.mark.parametrize("provider", ["openai", "huggingface"])
async def test_a_healthy_endpoint_registers_pending_with_its_latency_and_first_tokens(owners, provider):
    service, owner = owners
    with OwnerEndpoint(api_key="sk-owner-secret-0001") as endpoint:
        model, report = await service.register(owner, registration(endpoint.url, provider=provider,
                                                                   api_key="sk-owner-secret-0001"))
    assert report.ok and report.error_class is None
    assert report.first_tokens == "Hello from the owner's model."
    assert 0 < report.first_token_ms <= report.total_ms
    assert model.state == "pending" and model.api_key_hint == "sk-…0001"
    assert "sk-owner-secret-0001" not in model.model_dump_json() and model.api_key_cipher
    assert endpoint.authorizations == ["Bearer sk-owner-secret-0001"]  # the key was used, server-side


async def test_a_slow_endpoint_passes_and_reports_its_latency(owners):
    service, owner = owners
    with OwnerEndpoint("slow", delay=0.5) as endpoint:
        _, report = await service.register(owner, registration(endpoint.url))
    assert report.ok and report.first_token_ms >= 500


@pytest.mark.parametrize(("mode", "error_class", "words"), [
    ("500", "http", "HTTP 500: the model server crashed"),
    ("broken", "broken_stream", "lost mid-answer"),
    ("401", "auth", "authentication failed (HTTP 401)"),
    ("404", "model_not_found", "HTTP 404"),
    ("garbage", "malformed_stream", "not OpenAI chat-completions format"),
])
async def test_a_failing_endpoint_is_refused_with_the_exact_error(owners, mode, error_class, words):
    service, owner = owners
    with OwnerEndpoint(mode) as endpoint:
        with pytest.raises(OwnerError) as refused:
            await service.register(owner, registration(endpoint.url, api_key="sk-wrong-key-9999"))
    assert refused.value.status == 422
    assert f"health check failed ({error_class})" in str(refused.value) and words in str(refused.value)
    assert "sk-wrong-key-9999" not in str(refused.value)
    assert await service.store.models() == []


async def test_refused_port_and_timeout_are_named(owners):
    service, owner = owners
    with pytest.raises(OwnerError, match=r"health check failed \(refused\)"):
        await service.register(owner, registration(f"http://127.0.0.1:{free_port()}/v1"))
    with OwnerEndpoint("hang") as endpoint:
        with pytest.raises(OwnerError, match=r"health check failed \(timeout\)"):
            await service.register(owner, registration(endpoint.url, timeout=0.5))
        assert endpoint.requests == 1  # the request arrived; the answer never came


async def test_fields_names_and_quota_are_checked_with_exact_messages(owners, redis_url):
    service, owner = owners
    with pytest.raises(Exception, match="timeout"):
        registration("http://127.0.0.1/v1", timeout=500)
    with OwnerEndpoint() as endpoint:
        with pytest.raises(OwnerError, match="the name 'configured-model' is taken"):
            await service.register(owner, registration(endpoint.url, name="configured-model"))
        with pytest.raises(OwnerError, match="must not start or end with whitespace"):
            await service.register(owner, registration(endpoint.url, name=" spaced"))
        await service.register(owner, registration(endpoint.url, name="first"))
        with pytest.raises(OwnerError, match="the name 'first' is taken") as clash:
            await service.register(owner, registration(endpoint.url, name="first"))  # their own name again
        assert clash.value.status == 409
        other = await service.store.authenticate(await service.store.add_owner("rival", max_models=1))
        # acme's "first" is unapproved, so it is no business of rival's: registered as a free name would be
        # (tests/test_owner_names.py); the operator approves one of the two
        await service.register(other, registration(endpoint.url, name="first"))
        with pytest.raises(OwnerError, match="quota: owner 'rival' may register at most 1 model") as quota:
            await service.register(other, registration(endpoint.url, name="rival-2"))
        assert quota.value.status == 403
        await service.register(owner, registration(endpoint.url, name="acme-only"))
        with pytest.raises(OwnerError) as foreign:
            await service.owned(other, "acme-only")
        assert foreign.value.status == 404
        assert (await service.owned(other, "first")).owner == "rival"  # each sees their own "first"
        assert (await service.owned(owner, "first")).owner == "acme"


# -- the breaker, in battles --------------------------------------------------------------------

def spec(url: str, name: str) -> ModelSpec:
    return ModelSpec(name=name, base_url=url, model_id="m", timeout=5, max_retries=0)


async def battle_once(service: BattleService, voter: str):
    battle = await service.create(f"session-{voter}", voter_id=voter)
    progress = await service.run_turn(battle.battle_id, f"session-{voter}", "hello")
    return battle, progress


@pytest.fixture
async def breaker_arena(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    with OwnerEndpoint() as good_one, OwnerEndpoint() as good_two, OwnerEndpoint() as flaky:
        pool = EndpointPool([spec(good_one.url, "good-1"), spec(good_two.url, "good-2"), spec(flaky.url, "flaky")])
        health = ModelHealth(client, "arena", BreakerPolicy(failures=3, voters=2, window=60, first_probe=0.3,
                                                            max_probe=0.6))
        service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"), health=health)
        yield service, flaky
        await pool.aclose()
    await client.aclose()


async def until_battle_with(service: BattleService, model: str, voter: str):
    for _ in range(200):
        battle, progress = await battle_once(service, voter)
        if model in battle.models:
            return battle, progress
    raise AssertionError(f"{model} was never seated")


async def test_one_voter_cannot_bench_and_client_caused_failures_never_bench(breaker_arena):
    service, flaky = breaker_arena
    flaky.mode = "500"
    for _ in range(5):  # five failures, one voter
        battle, progress = await until_battle_with(service, "flaky", "voter-1")
        assert progress.failed[battle.models.index("flaky")]
    assert (await service.model_status())["flaky"] == "active"
    flaky.mode = "400"  # "maximum context length": the prompt's fault, from many voters
    for voter in ("voter-2", "voter-3", "voter-4", "voter-5"):
        battle, progress = await until_battle_with(service, "flaky", voter)
        assert progress.failed[battle.models.index("flaky")]
    assert (await service.model_status())["flaky"] == "active"
    errors = await service.health.recent_errors("flaky")
    assert errors[0]["status_code"] == 400 and errors[0]["counts_towards_bench"] is False
    assert "maximum context length" in errors[0]["reason"]


async def test_a_streak_of_failures_benches_even_from_one_voter_but_an_answer_between_breaks_it(redis_url):
    """A small arena (one voter, or all behind one address): an endpoint that only fails is benched
    after `streak` failures in a row; one that still answers now and then is not."""
    client = aioredis.Redis.from_url(redis_url)
    with OwnerEndpoint() as good_one, OwnerEndpoint() as good_two, OwnerEndpoint() as flaky:
        pool = EndpointPool([spec(good_one.url, "good-1"), spec(good_two.url, "good-2"), spec(flaky.url, "flaky")])
        health = ModelHealth(client, "arena", BreakerPolicy(failures=3, voters=2, window=60, streak=4,
                                                            first_probe=60, max_probe=60))
        service = BattleService(BattleStore(client), pool, build_matchmaker("uniform"), health=health)
        flaky.mode = "500"
        for _ in range(3):
            await until_battle_with(service, "flaky", "voter-1")
        flaky.mode = "healthy"  # one answer between: the streak starts again
        battle, progress = await until_battle_with(service, "flaky", "voter-1")
        assert not any(progress.failed)
        flaky.mode = "500"
        for _ in range(3):
            await until_battle_with(service, "flaky", "voter-1")
        assert (await service.model_status())["flaky"] == "active"  # 6 failures, one voter, never 4 in a row
        await until_battle_with(service, "flaky", "voter-1")
        assert (await service.model_status())["flaky"] == "benched"
        assert "4 failures in a row" in (await service.health.benched(["flaky"]))["flaky"]["reason"]
        await pool.aclose()
    await client.aclose()


async def test_failures_from_several_voters_bench_then_a_probe_restores(breaker_arena):
    service, flaky = breaker_arena
    flaky.mode = "500"
    for voter in ("voter-1", "voter-2", "voter-1"):
        battle, progress = await until_battle_with(service, "flaky", voter)
        assert progress.failed[battle.models.index("flaky")]
        assert "failed to answer" in progress.answers[battle.models.index("flaky")]
    assert (await service.model_status())["flaky"] == "benched"
    bench = (await service.health.benched(["flaky"]))["flaky"]
    assert "HTTP 500: the model server crashed" in bench["reason"]
    for _ in range(20):  # benched: never seated
        battle = await service.create("s", voter_id="voter-9")
        assert "flaky" not in battle.models

    async def status_becomes(wanted: str, check=lambda: True) -> None:
        await wait_until_async(service.model_status, lambda statuses: statuses["flaky"] == wanted and check(),
                               what=f"flaky to become {wanted}")

    requests_before = flaky.requests
    # still failing: the probe fails, and the next one waits twice as long (back-off)
    await status_becomes("benched", lambda: flaky.requests > requests_before)
    record = (await wait_until_async(lambda: service.health.benched(["flaky"]),
                                     lambda records: records["flaky"].get("probes", 0) >= 1
                                     and "last_probe_error" in records["flaky"],
                                     what="a failed probe on record"))["flaky"]
    assert record["probes"] >= 1 and "HTTP 500" in record["last_probe_error"]
    flaky.mode = "healthy"
    await status_becomes("active")
    battle, progress = await until_battle_with(service, "flaky", "voter-3")
    assert not any(progress.failed)
    errors = await service.health.recent_errors("flaky")
    assert {e["source"] for e in errors} == {"battle", "probe"}


@pytest.mark.parametrize(("mode", "words"), [
    ("500", "HTTP 500"), ("broken", "lost mid-answer"), ("401", "authentication failed (HTTP 401)"),
    ("garbage", "not OpenAI chat-completions format"),
])
async def test_in_battles_a_failing_endpoint_fails_the_round_clearly_and_takes_no_vote(breaker_arena, mode, words):
    from arena.errors import BattleConflict

    service, flaky = breaker_arena
    flaky.mode = mode
    battle, progress = await until_battle_with(service, "flaky", "voter-1")
    position = battle.models.index("flaky")
    assert progress.failed[position] and "failed to answer" in progress.answers[position]
    assert "flaky" not in "".join(progress.answers)  # the voter is not told which model failed
    with pytest.raises(BattleConflict, match="failed to answer"):
        await service.vote(battle.battle_id, "session-voter-1", "voter-1", outcome="model_a")
    assert await service.redis.xlen(vote_stream_key("arena")) == 0
    [error] = await service.health.recent_errors("flaky")
    assert words in error["reason"] and error["counts_towards_bench"] is True


async def test_in_battles_a_slow_endpoint_answers_and_its_latency_is_recorded(breaker_arena):
    service, flaky = breaker_arena
    flaky.mode, flaky.delay = "slow", 0.3
    battle, progress = await until_battle_with(service, "flaky", "voter-1")
    assert not any(progress.failed)
    assert progress.answers[battle.models.index("flaky")] == "Hello from the owner's model."
    latencies = await service.health.latencies_ms("flaky")
    assert len(latencies) == 1 and latencies[0] >= 300
