"""The catalog of configured plus registered models, against a real Redis and real endpoints:
approved models are picked up without a restart, the daily battle quota makes a model full, an
owner can keep a model out of anonymous battles, a key the server cannot decrypt benches only
that model, the owner's view computes win rates from the published counts, a named battle may
seat a model kept out of anonymous ones, and the leaderboard's catalogue follows the registry."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from arena.battles.engine import BattleService
from arena.battles.requests import InvalidBattleRequest, named_choice
from arena.battles.store import BattleStore
from arena.matchmaker import build_matchmaker
from arena.models.demo_models import demo_model_specs
from arena.models.demo_server import DemoServer
from arena.owners.catalog import ModelCatalog
from arena.owners.store import OwnerModel, OwnerStore
from arena.owners.view import model_views
from arena.trust.secret_box import SecretBox, load_secret_box, mask_key
from arena.trust.ssrf import EndpointGuard
from arena.web.board_data import ModelInfo, is_retired
from arena.web.leaderboard_tab import model_catalogue
from leaderboard.views.published import ViewStats, view_stats_key
from tests.owner_endpoints import OwnerEndpoint


@pytest.fixture(scope="module")
def demo_server():
    with DemoServer(token_delay=0.001) as server:
        yield server


def record(name: str, url: str, box: SecretBox, **fields) -> OwnerModel:
    now = time.time()
    values = dict(name=name, owner="acme", provider="openai", base_url=url, model_id="m", max_tokens=32,
                  temperature=0.5, timeout=5, max_concurrent=4, state="active", created_at=now, updated_at=now,
                  api_key_cipher=box.encrypt("sk-catalog-key-1234"), api_key_hint="sk-…1234")
    values.update(fields)
    return OwnerModel(**values)


@pytest.fixture
async def arena(redis_url, demo_server):
    client = aioredis.Redis.from_url(redis_url)
    box = SecretBox(Fernet.generate_key())
    catalog = ModelCatalog(demo_model_specs(demo_server.url), client, "arena", box, EndpointGuard(allow_private=True),
                           battles_per_day=1)
    service = BattleService(BattleStore(client), catalog, build_matchmaker("uniform"))
    store = OwnerStore(client, "arena")
    await store.add_owner("acme")  # the owner of every record (approving an owner-less one is refused)
    yield service, store, box
    await catalog.aclose()
    await client.aclose()


async def test_registered_models_join_without_a_restart_and_the_daily_quota_makes_them_full(arena):
    service, store, box = arena
    with OwnerEndpoint(api_key="sk-catalog-key-1234") as endpoint:
        assert "owned" not in await service.model_status()
        await store.create(record("owned", endpoint.url, box, state="pending"))
        assert (await service.model_status())["owned"] == "pending"
        assert "owned" not in await service.available_models()
        await store.set_state("owned", "active")
        assert (await service.model_status())["owned"] == "active"
        for attempt in range(200):
            battle = await service.create(f"s{attempt}", voter_id="v")
            if "owned" in battle.models:
                break
        progress = await service.run_turn(battle.battle_id, f"s{attempt}", "hi")
        assert not any(progress.failed) and endpoint.authorizations == ["Bearer sk-catalog-key-1234"]
        statuses = await service.model_status()
        assert statuses["owned"] == "full"  # its one battle of the day is used
        assert {status for name, status in statuses.items() if name != "owned"} == {"active"}
        for attempt in range(30):
            assert "owned" not in (await service.create(f"t{attempt}")).models


async def test_an_owner_may_keep_a_model_out_of_anonymous_battles(arena):
    service, store, box = arena
    await store.create(record("named-only", "http://127.0.0.1:9/v1", box, anonymous=False))
    assert (await service.model_status())["named-only"] == "active"
    assert "named-only" not in await service.available_models()


async def test_a_key_this_server_cannot_decrypt_benches_only_that_model(arena):
    service, store, _ = arena
    stranger = SecretBox(Fernet.generate_key())  # another server's key
    await store.create(record("foreign-key", "http://127.0.0.1:9/v1", stranger))
    statuses = await service.model_status()
    assert statuses["foreign-key"] == "benched"
    assert sum(status == "active" for status in statuses.values()) == 5  # the demo models


async def test_the_owner_view_has_win_rates_and_no_key(arena):
    service, store, box = arena
    await store.create(record("owned", "http://127.0.0.1:9/v1", box))
    stats = ViewStats(view="overall", generated_at=time.time(), models=["owned", "demo-echo", "demo-terse"],
                      battles=[[0, 10, 4], [10, 0, 0], [4, 0, 0]], wins=[[0, 6, 1], [3, 0, 0], [2, 0, 0]],
                      ties=[[0, 1, 1], [1, 0, 0], [1, 0, 0]])
    await service.redis.set(view_stats_key("arena", "overall"), stats.model_dump_json())
    [view] = await model_views(service, [await store.model("owned")])
    assert view["win_rates"] == {"demo-echo": {"battles": 10, "wins": 6, "ties": 1, "win_rate": 0.65},
                                 "demo-terse": {"battles": 4, "wins": 1, "ties": 1, "win_rate": 0.375}}
    assert view["api_key"] == "sk-…1234" and "sk-catalog-key-1234" not in str(view)
    assert "api_key_cipher" not in view


def test_the_server_key_file_is_private_and_shared(tmp_path):
    first = load_secret_box(tmp_path)
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_secret_box(tmp_path).decrypt(first.encrypt("sk-x")) == "sk-x"  # a second process reads the same key
    assert "sk-x" not in first.encrypt("sk-x") and repr(first) == "SecretBox(key=***)"
    configured = Fernet.generate_key().decode()
    assert load_secret_box(tmp_path / "other", configured).decrypt(SecretBox(configured.encode()).encrypt("k")) == "k"
    assert mask_key("sk-abcdefgh1234") == "sk-…1234" and mask_key(None) == "(none)" and mask_key("short") == "…"


async def test_a_named_battle_may_seat_an_owner_model_kept_out_of_anonymous_ones(arena):
    service, store, box = arena
    await store.create(record("named-only", "http://127.0.0.1:9/v1", box, anonymous=False))
    await store.create(record("waiting", "http://127.0.0.1:9/v1", box, state="pending"))
    statuses = await service.model_status()
    assert "named-only" in await service.available_models(anonymous=False)  # what the named tab offers
    chooser = named_choice(["named-only", "demo-echo"], statuses)
    battle = await service.create("s-named", chooser=chooser)
    assert (battle.mode, battle.models) == ("named", ["named-only", "demo-echo"])
    with pytest.raises(InvalidBattleRequest, match=r"unknown model 'waiting'") as refused:  # unpublished: not named
        named_choice(["waiting", "demo-echo"], statuses)
    assert "pending" not in str(refused.value)
    with pytest.raises(InvalidBattleRequest, match="unknown model 'nobody'"):
        named_choice(["nobody", "demo-echo"], statuses)


async def test_the_leaderboard_catalogue_follows_owner_models_and_retires_deleted_ones(arena):
    service, store, box = arena
    catalogue = model_catalogue(service.endpoints)  # built once, with the page
    assert "owned" not in catalogue
    await store.create(record("owned", "http://127.0.0.1:9/v1", box, organisation="Acme", license="MIT"))
    await service.model_status()  # any status read picks up the registry
    assert catalogue["owned"] == ModelInfo(organisation="Acme", license="MIT")
    assert not is_retired("owned", catalogue)
    await store.save((await store.model("owned")).model_copy(update={"state": "retired"}))
    await service.model_status()
    assert "owned" not in catalogue and is_retired("owned", catalogue)
    assert "demo-echo" in catalogue and not is_retired("demo-echo", catalogue)
