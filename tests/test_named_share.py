"""Named battles cannot starve a model: voters who pick a model by name use up only their own
budget per model (--named-battles-per-model-per-day) and a share (--named-share) of the model's
concurrency and daily battle quota; the rest stays for anonymous battles, so the model never
shows ``full`` and drops out of them because of named battles."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis

from arena.battles.engine import BattleService
from arena.battles.limits import BattleLimits
from arena.battles.requests import NamedChoice
from arena.battles.store import BattleStore
from arena.cli.serve import ArenaStack
from arena.errors import NoModelsAvailable
from arena.keys import model_inflight_key
from arena.matchmaker import build_matchmaker
from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointPool
from tests.helpers import arena_settings, wait_until_async
from tests.owner_endpoints import OwnerEndpoint
from tests.owner_support import battle_until, cli, statuses


def test_thirty_named_battles_leave_the_model_in_anonymous_battles(redis_url, tmp_path, capsys):
    """An owner's model with 10 battles a day; 31 named battles against it from 10 addresses: one
    voter gets 3 (their budget per model), all together 5 (half the quota); the model stays
    ``active`` and anonymous battles still seat it."""
    settings = arena_settings(redis_url, tmp_path, run_worker=False, allow_private_endpoints=True,
                              matchmaker="uniform", model_battles_per_day=10, named_share=0.5,
                              named_battles_per_model_per_day=3, trusted_proxies="127.0.0.1")
    with OwnerEndpoint() as endpoint, ArenaStack(settings) as stack, \
            httpx.Client(base_url=stack.url, timeout=60) as http:
        _, out, _ = cli(capsys, "owners", redis_url, "add", "acme")
        auth = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
        body = {"name": "acme-x", "base_url": endpoint.url, "model_id": "m"}
        assert http.post("/api/owner/models", json=body, headers=auth).status_code == 201
        assert cli(capsys, "models", redis_url, "approve", "acme-x")[0] == 0

        def named(voter: int) -> httpx.Response:
            return http.post("/api/battles", json={"prompt": "Hi.", "models": ["acme-x", "demo-echo"]},
                             headers={"X-Forwarded-For": f"198.51.100.{voter}"})

        first_voter = [named(1) for _ in range(4)]
        assert [r.status_code for r in first_voter] == [200, 200, 200, 429]
        assert "too many new battles naming acme-x: the limit is 3 a day" in first_voter[3].json()["detail"]
        others = [named(voter) for voter in range(2, 11) for _ in range(3)]
        assert [r.status_code for r in others[:2]] == [200, 200] and {r.status_code for r in others[2:]} == {503}
        assert "acme-x cannot answer right now" in others[-1].json()["detail"]
        named_battles = sum(r.status_code == 200 for r in first_voter + others)
        assert named_battles == 5  # half of the 10 a day

        assert statuses(http, [])["acme-x"] == "active"
        seated = battle_until(http, "acme-x", [])  # an anonymous battle still seats it
        assert seated["battle"]["votable"]
        print(f"{len(first_voter + others)} named battles: {named_battles} seated acme-x; it stays active and "
              "enters anonymous battles")


@pytest.fixture
async def hanging_arena(redis_url):
    """Model 'busy' (4 answers at once) never finishes an answer; 'other' and 'third' answer at once."""
    client = aioredis.Redis.from_url(redis_url)
    with OwnerEndpoint("hang") as busy, OwnerEndpoint() as other:
        pool = EndpointPool([ModelSpec(name="busy", base_url=busy.url, model_id="m", timeout=60, max_concurrent=4,
                                       max_retries=0),
                             ModelSpec(name="other", base_url=other.url, model_id="m", timeout=5, max_retries=0),
                             ModelSpec(name="third", base_url=other.url, model_id="m", timeout=5, max_retries=0)])
        service = BattleService(BattleStore(client, "named-share"), pool, build_matchmaker("uniform"),
                                limits=BattleLimits(named_share=0.5))
        yield service, client
        await pool.aclose()
    await client.aclose()


async def test_named_battles_take_at_most_their_share_of_a_models_concurrency(hanging_arena):
    service, client = hanging_arena
    turns = []
    for n in range(2):  # two named battles, each with an answer of 'busy' in flight
        battle = await service.create(f"s{n}", voter_id=f"v{n}", chooser=NamedChoice(("busy", "other")))
        turns.append(asyncio.create_task(service.run_turn(battle.battle_id, f"s{n}", "hello")))
    inflight = model_inflight_key("named-share", "busy")
    await wait_until_async(lambda: client.get(inflight), lambda count: int(count or 0) == 2,
                           what="two answers of 'busy' in flight")
    with pytest.raises(NoModelsAvailable, match="busy cannot answer right now"):
        await service.create("s3", voter_id="v3", chooser=NamedChoice(("busy", "other")))
    assert (await service.model_status())["busy"] == "active"  # 2 of its 4: not full
    anonymous = [await service.create(f"a{n}", voter_id=f"a{n}") for n in range(30)]
    assert any("busy" in battle.models for battle in anonymous)  # the other half is anonymous battles'
    for turn in turns:
        turn.cancel()
    await asyncio.gather(*turns, return_exceptions=True)

