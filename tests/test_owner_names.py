"""An unreleased model's name is no oracle: registering a name another owner's pending model holds
is answered exactly as a free name is (status, body shape, the same reads and writes), so no owner
can probe for unreleased names. Two models never share a name all the same: the operator approves
one of the contenders (``--owner``), and a second approval is refused with what to do instead."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from arena.cli.serve import ArenaStack
from arena.owners.service import ModelRegistration, OwnerService
from arena.owners.store import OwnerError, OwnerStore
from arena.trust.secret_box import SecretBox
from arena.trust.ssrf import EndpointGuard
from tests.helpers import arena_settings
from tests.owner_endpoints import OwnerEndpoint
from tests.owner_support import cli, statuses

# Fields whose values are the registration's own (when, and what the live check measured);
# everything else in the answer must be the same for a free name and a held one.
PER_REGISTRATION = {"name", "created_at", "updated_at", "health_check"}


def token(capsys, redis_url: str, owner: str) -> dict:
    _, out, _ = cli(capsys, "owners", redis_url, "add", owner)
    return {"Authorization": f"Bearer {out.splitlines()[-1]}"}


def comparable(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in PER_REGISTRATION}


def test_a_name_held_by_another_owners_pending_model_answers_as_a_free_name(redis_url, tmp_path, capsys):
    settings = arena_settings(redis_url, tmp_path, run_worker=False, allow_private_endpoints=True)
    with OwnerEndpoint() as acme_endpoint, OwnerEndpoint() as rival_endpoint, ArenaStack(settings) as stack, \
            httpx.Client(base_url=stack.url, timeout=60) as http:
        acme, rival = token(capsys, redis_url, "acme"), token(capsys, redis_url, "rival")
        body = {"base_url": rival_endpoint.url, "model_id": "m", "description": "rival's"}
        held = http.post("/api/owner/models", headers=acme, json={**body, "name": "acme-secret-7b",
                                                                   "base_url": acme_endpoint.url, "description": ""})
        assert held.status_code == 201, held.text

        # the probe: a held name and a free one, from the same owner with the same fields
        probe_held = http.post("/api/owner/models", json={**body, "name": "acme-secret-7b"}, headers=rival)
        probe_free = http.post("/api/owner/models", json={**body, "name": "nobody-has-this"}, headers=rival)
        assert probe_held.status_code == probe_free.status_code == 201, (probe_held.text, probe_free.text)
        assert list(probe_held.json()) == list(probe_free.json())  # the same fields, in the same order
        assert comparable(probe_held.json()) == comparable(probe_free.json())
        assert probe_held.json()["status"] == "pending" and probe_held.json()["description"] == "rival's"
        # asking again: the same refusal for both (the owner's own names, nothing about acme's)
        again_held = http.post("/api/owner/models", json={**body, "name": "acme-secret-7b"}, headers=rival)
        again_free = http.post("/api/owner/models", json={**body, "name": "nobody-has-this"}, headers=rival)
        assert again_held.status_code == again_free.status_code == 409
        assert again_held.json()["detail"].replace("acme-secret-7b", "X") == \
            again_free.json()["detail"].replace("nobody-has-this", "X")
        # each owner sees only their own registration under the name
        assert http.get("/api/owner/models/acme-secret-7b", headers=rival).json()["base_url"] == rival_endpoint.url
        assert http.get("/api/owner/models/acme-secret-7b", headers=acme).json()["base_url"] == acme_endpoint.url
        assert "acme-secret-7b" not in statuses(http, [])  # and the public sees neither
        print(f"held and free name, one answer: {probe_held.status_code}, {sorted(comparable(probe_held.json()))}")

        # the operator: which one? then only one can have it
        code, _, err = cli(capsys, "models", redis_url, "approve", "acme-secret-7b")
        assert code == 2 and "2 owners registered a model named 'acme-secret-7b' (acme, rival)" in err
        assert "say which with --owner" in err
        code, out, _ = cli(capsys, "models", redis_url, "approve", "acme-secret-7b", "--owner", "rival")
        assert code == 0 and "approved acme-secret-7b (owner rival)" in out
        code, _, err = cli(capsys, "models", redis_url, "approve", "acme-secret-7b", "--owner", "acme")
        assert code == 2 and "already belongs to owner 'rival''s approved model" in err
        assert "two models never share a name" in err and "models reject acme-secret-7b --owner acme" in err
        print(f"second approval refused: {err.strip()}")
        code, _, _ = cli(capsys, "models", redis_url, "reject", "acme-secret-7b", "--owner", "acme", "--why",
                         "the name is taken; register it under another name")
        assert code == 0
        acme_view = http.get("/api/owner/models/acme-secret-7b", headers=acme).json()
        assert acme_view["status"] == "rejected" and "the name is taken" in acme_view["reason"]
        assert http.get("/api/owner/models/acme-secret-7b", headers=rival).json()["status"] == "active"

        # approved, the name is public and held: now anyone registering it is told so
        third = token(capsys, redis_url, "third")
        taken = http.post("/api/owner/models", json={**body, "name": "acme-secret-7b"}, headers=third)
        assert taken.status_code == 409 and "is taken by another model" in taken.json()["detail"]
        # and the battles use rival's endpoint, never acme's
        battle = http.post("/api/battles", json={"prompt": "Hi.", "models": ["acme-secret-7b", "demo-echo"]})
        assert battle.status_code == 200, battle.text
        assert rival_endpoint.requests == 3 and acme_endpoint.requests == 1  # health checks: 2 and 1; the battle: rival

        # a registration deleted before approval does not publish its name either (as "retired")
        draft = http.post("/api/owner/models", json={**body, "name": "third-draft"}, headers=third)
        assert draft.status_code == 201
        assert http.delete("/api/owner/models/third-draft", headers=third).status_code == 200
        assert "third-draft" not in statuses(http, [])


@pytest.mark.parametrize("first", ["acme", "rival"])
async def test_approving_either_contender_keeps_one_model_per_name(redis_url, first):
    """Whichever of two pending registrations the operator approves holds the name; the other can
    then only be rejected, and the registry has exactly one model under the name throughout."""
    client = aioredis.Redis.from_url(redis_url)
    store = OwnerStore(client, f"names-{first}")
    service = OwnerService(store, SecretBox(Fernet.generate_key()), EndpointGuard(allow_private=True),
                           configured_names=lambda: [])
    accounts = {name: await store.authenticate(await store.add_owner(name)) for name in ("acme", "rival")}
    with OwnerEndpoint() as endpoint:
        for owner in accounts.values():
            await service.register(owner, ModelRegistration(name="shared", base_url=endpoint.url, model_id="m",
                                                             timeout=5))
    second = "rival" if first == "acme" else "acme"
    assert {m.owner for m in await store.registrations("shared")} == {"acme", "rival"}
    approved = await service.approve("shared", owner=first)
    assert approved.state == "active" and (await store.model("shared")).owner == first
    with pytest.raises(OwnerError, match=f"already belongs to owner '{first}'") as refused:
        await service.approve("shared", owner=second)
    assert refused.value.status == 409
    assert [m.owner for m in await store.holders()] == [first]  # one model serves the name
    assert (await store.model_of(second, "shared")).state == "pending"  # untouched by the refusal
    await service.reject("shared", "name taken", owner=second)
    assert (await store.model_of(second, "shared")).state == "rejected"
    assert (await store.model("shared")).state == "active" and (await store.model("shared")).owner == first
    await client.aclose()


async def test_two_approvals_at_once_leave_one_approved_model_under_the_name(redis_url):
    """Two operators approving both contenders at the same moment: always exactly one succeeds
    (each approval writes only if the name's holder is still the one it read)."""
    client = aioredis.Redis.from_url(redis_url)
    with OwnerEndpoint() as endpoint:
        for attempt in range(10):
            store = OwnerStore(client, f"race-{attempt}")
            service = OwnerService(store, SecretBox(Fernet.generate_key()), EndpointGuard(allow_private=True),
                                   configured_names=lambda: [])
            for name in ("acme", "rival"):
                owner = await store.authenticate(await store.add_owner(name))
                await service.register(owner, ModelRegistration(name="raced", base_url=endpoint.url, model_id="m",
                                                                timeout=5))
            order = ("acme", "rival") if attempt % 2 else ("rival", "acme")  # the holder's approval first, or last
            results = await asyncio.gather(*(service.approve("raced", owner=owner) for owner in order),
                                           return_exceptions=True)
            assert sum(isinstance(result, OwnerError) for result in results) == 1, results
            active = [m for m in await store.registrations("raced") if m.state == "active"]
            assert len(active) == 1 and (await store.model("raced")).owner == active[0].owner
    await client.aclose()
