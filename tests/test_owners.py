"""A model owner's whole path, as they and the operator run it: a token from `owners add`, a
registration through the API (health check included), approval with `models approve`, battles,
the numbers in `GET /api/owner/models`; pause, resume, key rotation, delete. Registration happens
in one web process and the battles in another (a `python -m arena serve` subprocess) on one Redis,
with no restart. The owner's key never appears in any response, page, log line or Redis value."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
import pytest

from arena.cli.serve import ArenaStack
from arena.ops.redis_server import free_port
from tests.helpers import PROJECT_ROOT, TEST_VOTE_KEY, arena_settings, wait_until
from tests.owner_endpoints import OwnerEndpoint
from tests.owner_support import battle_until, cli, statuses

KEY = "sk-live-owner-key-4f2a9c1e7b3d"
ROTATED = "sk-rotated-owner-key-8e6d0a5c"


def start_second_process(redis_url: str, data_dir, port: int) -> subprocess.Popen:
    # the vote-signing key of the first process's worker (arena_settings): the two web processes share it
    env = {**os.environ, "ARENA_DEMO_TOKEN_DELAY": "0.001", "ARENA_VOTER_SECRET": "test-secret-0123456789",
           "ARENA_VOTE_KEY": TEST_VOTE_KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "arena", "serve", "--redis-url", redis_url, "--data-dir", str(data_dir),
         "--port", str(port), "--no-worker", "--allow-private-endpoints", "--matchmaker", "uniform",
         "--battles-per-minute", "0"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def log_lines(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_an_owner_registers_gets_approved_battles_and_watches_the_numbers(redis_url, redis_client, tmp_path, capsys,
                                                                         log_lines):
    bodies: list[str] = []
    data_dir = tmp_path / "data"
    settings = arena_settings(redis_url, data_dir, matchmaker="uniform", allow_private_endpoints=True)
    second_port = free_port()
    with OwnerEndpoint(api_key=KEY) as endpoint, ArenaStack(settings) as first:
        # -- the operator makes an account; the token is printed once, on its own line
        code, out, _ = cli(capsys, "owners", redis_url, "add", "acme", "--max-models", "2")
        assert code == 0
        token = [line for line in out.splitlines() if line.startswith("arena_owner_")]
        assert len(token) == 1 and token[0] == token[0].strip()
        auth = {"Authorization": f"Bearer {token[0]}"}
        _, out, _ = cli(capsys, "owners", redis_url, "add", "rival")
        rival = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
        assert token[0] not in redis_client.hget("arena:owners", "acme").decode()  # only its hash is stored

        second = start_second_process(redis_url, data_dir, second_port)
        try:
            with httpx.Client(base_url=first.url, timeout=60) as web_one, \
                    httpx.Client(base_url=f"http://127.0.0.1:{second_port}", timeout=60) as web_two:
                wait_until(lambda: web_two.get("/healthz").status_code == 200, ignoring=(httpx.HTTPError,),
                           what="the second web process", interval=0.2)

                # -- without a token, or with a bad one: 401
                for headers in ({}, {"Authorization": "Bearer arena_owner_not-a-token"}, {"Authorization": "Basic x"}):
                    refused = web_one.get("/api/owner/models", headers=headers)
                    assert refused.status_code == 401 and "owner token" in refused.json()["detail"]

                # -- registration, in process one
                body = {"name": "acme-chat", "provider": "openai", "base_url": endpoint.url, "model_id": "acme-7b",
                        "api_key": KEY, "organisation": "Acme Labs", "license": "Apache-2.0",
                        "description": "Acme's chat model", "anonymous": True, "max_tokens": 64,
                        "temperature": 0.3, "max_concurrent": 4}
                registered = web_one.post("/api/owner/models", json=body, headers=auth)
                bodies.append(registered.text)
                assert registered.status_code == 201, registered.text
                created = registered.json()
                assert created["name"] == "acme-chat" and created["status"] == "pending"
                assert created["health_check"]["ok"] is True and created["health_check"]["first_token_ms"] > 0
                assert created["health_check"]["first_tokens"].startswith("Hello")
                assert created["api_key"] == "sk-…7b3d"
                clash = web_one.post("/api/owner/models", json={**body, "name": "demo-echo"}, headers=auth)
                assert clash.status_code == 409 and "taken" in clash.json()["detail"]
                bad = web_one.post("/api/owner/models", json={**body, "name": "x2", "temperature": 9, "api_key": 12345},
                                   headers=auth)
                assert bad.status_code == 422 and "field 'temperature'" in bad.json()["detail"]
                assert "12345" not in bad.text

                # -- the other process sees it at once, pending (no restart), and seats it nowhere; the
                # public list does not name an unapproved registration at all
                assert web_two.get("/api/owner/models", headers=auth).json()["models"][0]["status"] == "pending"
                assert "acme-chat" not in statuses(web_two, bodies)
                assert "acme-chat" not in statuses(web_one, bodies)

                # -- another owner cannot see or change it
                for method in ("GET", "PATCH", "DELETE"):
                    response = web_one.request(method, "/api/owner/models/acme-chat", headers=rival,
                                               json={"paused": True} if method == "PATCH" else None)
                    assert response.status_code == 404, (method, response.text)
                assert web_one.get("/api/owner/models", headers=rival).json()["models"] == []

                # -- approval, then the first battle in process two
                code, out, _ = cli(capsys, "models", redis_url, "approve", "acme-chat")
                assert code == 0 and "approved acme-chat" in out
                approved_at = time.monotonic()
                first_battle = battle_until(web_two, "acme-chat", bodies)
                seconds_to_first_battle = time.monotonic() - approved_at
                with capsys.disabled():
                    print(f"\napproval to first battle: {seconds_to_first_battle:.2f} s")
                assert seconds_to_first_battle < 30
                assert "acme-chat" not in first_battle["battle"]["answers"][0]["text"]
                assert endpoint.authorizations[-1] == f"Bearer {KEY}"  # process two decrypted and used the key

                # -- the numbers
                view = wait_until(lambda v: v["votes"] >= 1, what="the owner's model to have a counted vote",
                                  observe=lambda: web_one.get("/api/owner/models", headers=auth).json()["models"][0])
                bodies.append(str(view))
                assert view["status"] == "active" and view["rating"] is not None
                assert view["rating_lower"] <= view["rating"] <= view["rating_upper"]
                assert view["latency_ms"]["answers"] >= 1 and view["latency_ms"]["p50"] > 0
                assert view["organisation"] == "Acme Labs" and view["api_key"] == "sk-…7b3d"

                # -- pause and resume (owner), seen by the other process
                assert web_one.patch("/api/owner/models/acme-chat", json={"paused": True},
                                     headers=auth).json()["status"] == "paused"
                assert statuses(web_two, bodies)["acme-chat"] == "paused"
                assert web_one.patch("/api/owner/models/acme-chat", json={"paused": False},
                                     headers=auth).json()["status"] == "active"

                # -- key rotation: checked live with the new key, used by the other process
                endpoint.api_key = ROTATED
                rotated = web_one.patch("/api/owner/models/acme-chat", json={"api_key": ROTATED}, headers=auth)
                bodies.append(rotated.text)
                assert rotated.status_code == 200 and rotated.json()["api_key"] == "sk-…0a5c"
                assert rotated.json()["status"] == "active"
                battle_until(web_two, "acme-chat", bodies)
                assert endpoint.authorizations[-1] == f"Bearer {ROTATED}"

                # -- the model list for the operator
                code, out, _ = cli(capsys, "models", redis_url, "list")
                assert code == 0 and "acme-chat" in out and "active" in out
                code, out, _ = cli(capsys, "owners", redis_url, "list")
                assert "acme" in out and "acme-chat" in out

                # -- delete: retired everywhere, out of battles, votes kept
                deleted = web_one.delete("/api/owner/models/acme-chat", headers=auth)
                assert deleted.status_code == 200 and deleted.json()["status"] == "retired"
                assert statuses(web_two, bodies)["acme-chat"] == "retired"
                retired = web_one.get("/api/owner/models", headers=auth).json()["models"][0]
                assert retired["status"] == "retired" and retired["votes"] >= 1

                # -- the page, from both processes
                for web in (web_one, web_two):
                    bodies.append(web.get("/").text)
                    bodies.append(web.get("/api/leaderboard").text)
        finally:
            second.terminate()
            second_output, _ = second.communicate(timeout=30)

    # -- the key in plain text: nowhere
    every_value = []
    for key in redis_client.scan_iter("*"):
        kind = redis_client.type(key).decode()
        if kind == "string":
            every_value.append(redis_client.get(key))
        elif kind == "hash":
            every_value.extend(redis_client.hvals(key))
        elif kind == "list":
            every_value.extend(redis_client.lrange(key, 0, -1))
        elif kind == "set":
            every_value.extend(redis_client.smembers(key))
        elif kind == "zset":
            every_value.extend(redis_client.zrange(key, 0, -1))
        elif kind == "stream":
            every_value.extend(str(entry).encode() for entry in redis_client.xrange(key))
    log_text = "\n".join(record.getMessage() for record in log_lines.records) + second_output
    for secret in (KEY, ROTATED):
        assert not any(secret in body for body in bodies)
        assert not any(secret.encode() in value for value in every_value)
        assert secret not in log_text
    assert len(bodies) > 10 and len(every_value) > 10 and len(log_lines.records) > 100  # the search had material


def test_self_service_signup_is_off_by_default_and_rate_limited_when_on(redis_url, tmp_path):
    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False)) as stack:
        refused = httpx.post(f"{stack.url}/api/owner/signup", json={"name": "walk-in"})
        assert refused.status_code == 403 and "sign-up is off" in refused.json()["detail"]
    settings = arena_settings(redis_url, tmp_path / "2", run_worker=False, owner_signup=True, owner_signups_per_hour=2)
    with ArenaStack(settings) as stack, httpx.Client(base_url=stack.url) as http:
        tokens = [http.post("/api/owner/signup", json={"name": f"walk-in-{n}"}) for n in range(3)]
        assert [t.status_code for t in tokens] == [201, 201, 429]
        assert "2 an hour" in tokens[2].json()["detail"]
        me = http.get("/api/owner/models", headers={"Authorization": f"Bearer {tokens[0].json()['token']}"})
        assert me.status_code == 200 and me.json() == {"owner": "walk-in-0", "models": []}


def test_reject_needs_a_reason_the_owner_then_sees(redis_url, tmp_path, capsys):
    settings = arena_settings(redis_url, tmp_path, run_worker=False, allow_private_endpoints=True)
    with OwnerEndpoint() as endpoint, ArenaStack(settings) as stack, \
            httpx.Client(base_url=stack.url, timeout=60) as http:
        _, out, _ = cli(capsys, "owners", redis_url, "add", "acme")
        auth = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
        body = {"name": "acme/hf", "provider": "huggingface", "base_url": endpoint.url, "model_id": "acme/7b"}
        assert http.post("/api/owner/models", json=body, headers=auth).status_code == 201
        code, out, err = cli(capsys, "models", redis_url, "approve", "nobody")
        assert code == 2 and "no registered model 'nobody'" in err
        code, _, err = cli(capsys, "models", redis_url, "reject", "acme/hf", "--why", " ")
        assert code == 2 and "say why" in err
        code, out, _ = cli(capsys, "models", redis_url, "reject", "acme/hf", "--why", "licence unclear")
        assert code == 0
        view = http.get("/api/owner/models/acme/hf", headers=auth).json()  # a name with a slash
        assert view["status"] == "rejected" and view["reason"] == "licence unclear"
        # approving it after all: a Hugging Face provider model in battles, through huggingface_hub
        assert cli(capsys, "models", redis_url, "approve", "acme/hf")[0] == 0
        battle_until(http, "acme/hf", [])


def pending_in_models_list(capsys, redis_url, name: str) -> bool:
    """The operator's ``models list`` shows ``name`` pending (the public /api/models does not list it)."""
    code, out, _ = cli(capsys, "models", redis_url, "list")
    return code == 0 and any(name in line and "pending" in line for line in out.splitlines())


def test_revoke_says_what_became_of_each_model_and_approve_does_not_promise_a_paused_one(redis_url, tmp_path,
                                                                                          capsys):
    settings = arena_settings(redis_url, tmp_path, run_worker=False, allow_private_endpoints=True)
    with OwnerEndpoint() as endpoint, ArenaStack(settings) as stack, \
            httpx.Client(base_url=stack.url, timeout=60) as http:
        _, out, _ = cli(capsys, "owners", redis_url, "add", "acme")
        auth = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
        for name in ("acme-tiny", "beta-one"):
            body = {"name": name, "base_url": endpoint.url, "model_id": "m"}
            assert http.post("/api/owner/models", json=body, headers=auth).status_code == 201
        assert cli(capsys, "models", redis_url, "approve", "acme-tiny")[0] == 0
        shown = statuses(http, [])
        assert shown["acme-tiny"] == "active" and "beta-one" not in shown  # pending: not public
        assert pending_in_models_list(capsys, redis_url, "beta-one")

        code, out, _ = cli(capsys, "owners", redis_url, "revoke", "acme")
        assert code == 0
        assert "acme-tiny: paused; beta-one: pending, will stay out of battles (owner revoked)" in out
        assert "their models are paused" not in out
        shown = statuses(http, [])
        assert shown["acme-tiny"] == "paused" and "beta-one" not in shown  # as the command said
        assert pending_in_models_list(capsys, redis_url, "beta-one")

        code, out, err = cli(capsys, "models", redis_url, "approve", "beta-one")
        assert code == 2 and out == ""
        assert "owner 'acme', whose account was revoked" in err and "owners add acme" in err
        # unchanged: not public, still pending
        assert "beta-one" not in statuses(http, []) and pending_in_models_list(capsys, redis_url, "beta-one")

        _, out, _ = cli(capsys, "owners", redis_url, "add", "acme")  # the owner is back, with a new token
        auth = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
        code, out, _ = cli(capsys, "models", redis_url, "approve", "beta-one")
        assert code == 0 and "stays out of battles" in out and "seats it" not in out
        assert statuses(http, [])["beta-one"] == "paused"  # as the command said
        resumed = http.patch("/api/owner/models/beta-one", json={"paused": False}, headers=auth)
        assert resumed.status_code == 200 and resumed.json()["status"] == "active"
        code, out, _ = cli(capsys, "models", redis_url, "approve", "beta-one")
        assert code == 0 and "every web process seats it within seconds" in out


def test_models_list_shows_the_last_error_without_a_key_or_an_address(redis_url, tmp_path, capsys):
    settings = arena_settings(redis_url, tmp_path, run_worker=False, allow_private_endpoints=True, matchmaker="uniform")
    crash = f"the model server crashed on worker 203.0.113.9 (upstream fe80::1) serving key {KEY}"
    with OwnerEndpoint(api_key=KEY, error_message=crash) as endpoint, ArenaStack(settings) as stack, \
            httpx.Client(base_url=stack.url, timeout=60) as http:
        _, out, _ = cli(capsys, "owners", redis_url, "add", "acme")
        auth = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
        body = {"name": "acme-flaky", "base_url": endpoint.url, "model_id": "m", "api_key": KEY}
        assert http.post("/api/owner/models", json=body, headers=auth).status_code == 201
        assert cli(capsys, "models", redis_url, "approve", "acme-flaky")[0] == 0
        endpoint.mode = "500"

        def errors_after_a_battle() -> list[dict]:
            http.post("/api/battles", json={"prompt": "Say something."})
            return http.get("/api/owner/models/acme-flaky", headers=auth).json()["recent_errors"]

        errors = wait_until(bool, observe=errors_after_a_battle, what="a battle to meet acme-flaky's HTTP 500")
        assert "HTTP 500" in errors[0]["reason"]  # what the owner sees
        code, out, _ = cli(capsys, "models", redis_url, "list")
    assert code == 0
    line = [line for line in out.splitlines() if "last error" in line]
    assert len(line) == 1 and "(battle, HTTP 500): endpoint returned HTTP 500: the model server crashed" in line[0]
    assert "worker <address> (upstream <address>)" in line[0]
    assert "203.0.113.9" not in out and "fe80::1" not in out and KEY not in out


def signup_from(url: str, source: str, name: str) -> httpx.Response:
    """One sign-up whose TCP peer is ``source`` (any 127.0.0.0/8 address is this machine's)."""
    with httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=source)) as http:
        return http.post("/api/owner/signup", json={"name": name})


def test_signups_are_limited_per_network_and_per_arena_not_only_per_address(redis_url, tmp_path):
    """25 addresses of one /24, 4 sign-ups each (the attack that made 75 accounts at 3 an hour per
    address): the /24 gets its 5 a day. Another /24 gets its own 5, until the arena's 8 a day are
    spent for everyone. IPv6 clients (named by a trusted proxy) count per /48, every /64 in it together."""
    settings = arena_settings(redis_url, tmp_path, run_worker=False, owner_signup=True, owner_signups_per_hour=3,
                              owner_signups_per_network_per_day=5, owner_signups_per_day=8)
    with ArenaStack(settings) as stack:
        first_block = [signup_from(stack.url, f"127.0.0.{n + 2}", f"a{n}-{k}") for n in range(25) for k in range(4)]
        created = [r for r in first_block if r.status_code == 201]
        refused = [r for r in first_block if r.status_code == 429]
        assert len(created) == 5 and len(refused) == 95, [r.text for r in first_block if r.status_code != 429][:3]
        assert "too many owner sign-ups from your network: the limit is 5 a day" in refused[-1].json()["detail"]
        by_network = [r for r in refused if "from your network" in r.json()["detail"]]
        assert len(by_network) >= 90 and all(int(r.headers["Retry-After"]) > 23 * 3600 for r in by_network)
        second_block = [signup_from(stack.url, f"127.0.1.{n + 2}", f"b{n}") for n in range(5)]
        assert [r.status_code for r in second_block] == [201, 201, 201, 429, 429]  # 5 + 3: the arena's 8
        assert "too many owner sign-ups on this arena: the limit is 8 a day" in second_block[-1].json()["detail"]
        print(f"100 sign-ups from 25 addresses of one /24: {len(created)} accounts; the arena's total: 8")
    settings = arena_settings(redis_url, tmp_path / "v6", run_worker=False, prefix="signup-v6", owner_signup=True,
                              owner_signups_per_network_per_day=2, owner_signups_per_day=0, trusted_proxies="127.0.0.1")
    with ArenaStack(settings) as stack, httpx.Client(base_url=stack.url) as http:
        one_site = [http.post("/api/owner/signup", json={"name": f"v6-{n}"},
                              headers={"X-Forwarded-For": f"2001:db8:5:{n:x}::1"}) for n in range(4)]
        assert [r.status_code for r in one_site] == [201, 201, 429, 429]  # four /64s, one /48
        other_site = http.post("/api/owner/signup", json={"name": "v6-other"},
                               headers={"X-Forwarded-For": "2001:db8:6::1"})
        assert other_site.status_code == 201
