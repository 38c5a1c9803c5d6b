"""Abuse resistance, as an attacker would try it: every rejection class at least 100 times, 100%
refused, nothing created or spent by a refusal. Real uvicorn, real Redis, real demo endpoints."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
import redis

from arena.battles.types import state_error
from arena.cli.serve import ArenaStack
from arena.keys import battle_key
from arena.sim.load_test import store_ready_battles
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import arena_settings, wait_until

ATTEMPTS = 100


def battle_count(redis_client) -> int:
    return sum(1 for _ in redis_client.scan_iter(match=battle_key("arena", "*"), count=1000))


def votes_in_stream(redis_client) -> int:
    return redis_client.xlen(vote_stream_key("arena"))


def report(name: str, refused: int, attempts: int) -> None:
    print(f"{name}: {refused}/{attempts} refused")


@pytest.fixture
def limited_stack(redis_url, tmp_path):
    """3 new battles a minute per voter; no proxy trusted (the default)."""
    with ArenaStack(arena_settings(redis_url, tmp_path, battles_per_minute=3, run_worker=False)) as stack:
        yield stack


@pytest.fixture
def proxied_stack(redis_url, tmp_path):
    """As limited_stack, behind a trusted proxy on 127.0.0.1 (nginx's place)."""
    with ArenaStack(arena_settings(redis_url, tmp_path, battles_per_minute=3, run_worker=False,
                                   trusted_proxies="127.0.0.1")) as stack:
        yield stack


def post_battle(http: httpx.Client, headers: dict | None = None, prompt: str = "Name a colour.") -> httpx.Response:
    """A new battle in a new session (the per-session limit is not what these tests are about)."""
    http.cookies.clear()
    return http.post("/api/battles", json={"prompt": prompt}, headers=headers or {})


def test_rotating_x_forwarded_for_from_an_untrusted_peer_starts_no_extra_battle(limited_stack, redis_client):
    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        for n in range(3):
            assert post_battle(http, {"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 200
        refused = [post_battle(http, {"X-Forwarded-For": f"203.0.113.{n % 250}, 10.1.{n}.1"}) for n in range(ATTEMPTS)]
    statuses = [response.status_code for response in refused]
    report("XFF rotation from an untrusted peer", statuses.count(429), ATTEMPTS)
    assert statuses == [429] * ATTEMPTS
    assert battle_count(redis_client) == 3  # 0 extra battles
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert "limit is 3 a minute" in refused[0].json()["detail"] and "try again in" in refused[0].json()["detail"]


def test_a_trusted_proxy_is_believed_only_through_x_forwarded_for(proxied_stack, redis_client):
    other_headers = ("X-Real-IP", "Forwarded", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP")
    with httpx.Client(base_url=proxied_stack.url, timeout=60) as http:
        # the control: the proxy's X-Forwarded-For does name the client (each its own budget)
        for n in range(3):
            assert post_battle(http, {"X-Forwarded-For": f"198.51.100.{n}"}).status_code == 200
        assert battle_count(redis_client) == 3
        # the proxy itself (no X-Forwarded-For) spends its own budget, then other headers change nothing
        for _ in range(3):
            assert post_battle(http).status_code == 200
        wrong_header = [post_battle(http, {other_headers[n % 5]: f"for=192.0.2.{n}" if n % 5 == 1 else f"192.0.2.{n}"})
                        for n in range(ATTEMPTS)]
        # nginx's $proxy_add_x_forwarded_for: what the client claims comes first, the real peer last
        for _ in range(3):
            assert post_battle(http, {"X-Forwarded-For": "203.0.113.9"}).status_code == 200
        spoofed_left = [post_battle(http, {"X-Forwarded-For": f"192.0.2.{n % 250}, 10.9.{n}.7, 203.0.113.9"})
                        for n in range(ATTEMPTS)]
    for name, responses in (("other proxy headers from a trusted proxy", wrong_header),
                            ("client-supplied XFF entries behind a trusted proxy", spoofed_left)):
        statuses = [response.status_code for response in responses]
        report(name, statuses.count(429), ATTEMPTS)
        assert statuses == [429] * ATTEMPTS
    assert battle_count(redis_client) == 9  # 0 extra battles


def test_ipv6_clients_are_counted_per_64(proxied_stack, redis_client):
    with httpx.Client(base_url=proxied_stack.url, timeout=60) as http:
        for n in range(3):
            assert post_battle(http, {"X-Forwarded-For": f"2001:db8:7:8::{n + 1:x}"}).status_code == 200
        rotated = [post_battle(http, {"X-Forwarded-For": f"2001:db8:7:8:{n:x}:{n * 7:x}::1"}) for n in range(ATTEMPTS)]
        assert post_battle(http, {"X-Forwarded-For": "2001:db8:7:9::1"}).status_code == 200  # the next /64
    statuses = [response.status_code for response in rotated]
    report("IPv6 rotation inside one /64", statuses.count(429), ATTEMPTS)
    assert statuses == [429] * ATTEMPTS
    assert battle_count(redis_client) == 4


def test_refused_prompts_create_nothing_and_spend_no_budget(limited_stack, redis_client):
    bad = ["", "   \n\t ", "x" * 8001, {"text": "hi"}, ["hi"], 42]
    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        responses = [http.post("/api/battles", json={"prompt": bad[n % len(bad)]}) for n in range(ATTEMPTS)]
        statuses = [response.status_code for response in responses]
        report("refused prompts", sum(status in (400, 422) for status in statuses), ATTEMPTS)
        assert all(status in (400, 422) for status in statuses), statuses
        assert battle_count(redis_client) == 0
        assert "the limit is 8000" in responses[2].json()["detail"]
        # the budget is untouched: all three battles of the minute are still there
        assert [post_battle(http).status_code for _ in range(3)] == [200, 200, 200]
    assert battle_count(redis_client) == 3


def test_oversized_bodies_are_413_before_they_are_read(limited_stack, redis_client):
    big = json.dumps({"prompt": "y" * 70_000}).encode()

    def chunks():
        for _ in range(100):
            yield b" " * 1024  # 100 KB, sent without a Content-Length (chunked)

    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        sized = [http.post("/api/battles", content=big, headers={"content-type": "application/json"})
                 for _ in range(ATTEMPTS)]
        chunked = [http.post("/api/battles", content=chunks(), headers={"content-type": "application/json"})
                   for _ in range(ATTEMPTS)]
        page = [http.post("/gradio_api/queue/join", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                          headers={"content-type": "application/json"}) for _ in range(ATTEMPTS)]
    for name, responses in (("bodies over 64 KB (Content-Length)", sized), ("chunked bodies over 64 KB", chunked),
                            ("page bodies over 1 MB", page)):
        statuses = [response.status_code for response in responses]
        report(name, statuses.count(413), len(responses))
        assert statuses == [413] * len(responses)
    assert "limit of 65536 bytes" in sized[0].json()["detail"]
    assert battle_count(redis_client) == 0


def test_strict_json_bodies(limited_stack, redis_client):
    surrogates = [f'{{"prompt": "hi \\u{0xd800 + n * 20:04x} there"}}' for n in range(ATTEMPTS)]  # D800-DFFF
    duplicates = [f'{{"prompt": "a", "prompt": "b{n}"}}' for n in range(ATTEMPTS)]
    not_utf8 = [b'{"prompt": "caf\xe9 ' + str(n).encode() + b'"}' for n in range(ATTEMPTS)]
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        results = {
            "lone surrogates (API)": [http.post("/api/battles", content=body, headers=headers) for body in surrogates],
            "duplicate keys (API)": [http.post("/api/battles", content=body, headers=headers) for body in duplicates],
            "bytes that are not UTF-8 (API)": [http.post("/api/battles", content=body, headers=headers)
                                               for body in not_utf8],
            "lone surrogates (page queue)": [http.post("/gradio_api/queue/join", headers=headers,
                                                       content='{"data": ["\\udc00"], "fn_index": 0, '
                                                               '"session_hash": "x"}')
                                             for _ in range(ATTEMPTS)],
            "duplicate keys (page queue)": [http.post("/gradio_api/queue/join", headers=headers,
                                                      content='{"fn_index": 0, "fn_index": 1, "session_hash": "x"}')
                                            for _ in range(ATTEMPTS)],
        }
    for name, responses in results.items():
        statuses = [response.status_code for response in responses]
        report(name, sum(400 <= status < 500 for status in statuses), ATTEMPTS)
        assert all(400 <= status < 500 for status in statuses), statuses
        text = responses[0].text
        assert "Traceback" not in text and len(text) < 600, text
    assert "lone UTF-16 surrogate" in results["lone surrogates (API)"][0].text
    assert "duplicate key 'prompt'" in results["duplicate keys (API)"][0].text
    assert battle_count(redis_client) == 0


def test_huge_fields_are_never_echoed(limited_stack, redis_client):
    battle_id, session = store_ready_battles(redis_client, ["demo-terse", "demo-verbose"], 1)[0]
    huge = "z" * 60_000
    bodies = [{"outcome": huge}, {"outcome": "model_a", huge: 1}, {"ranking": [[huge]]}, {"outcome": [huge]},
              {"outcome": {"x": huge}}]
    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        responses = [http.post(f"/api/battles/{battle_id}/vote", json=bodies[n % len(bodies)],
                               headers={"X-Arena-Session": session}) for n in range(ATTEMPTS)]
        long_id = http.post("/api/battles/" + "q" * 5000 + "!/vote", json={"outcome": "model_a"})
    statuses = [response.status_code for response in responses]
    report("huge fields", statuses.count(422), ATTEMPTS)
    assert statuses == [422] * ATTEMPTS
    for response in [*responses, long_id]:
        assert (len(response.text) < 800 and "z" * 100 not in response.text
                and "q" * 100 not in response.text), response.text[:300]
    assert "60000 characters" in responses[0].text
    assert long_id.status_code == 404
    assert votes_in_stream(redis_client) == 0


def test_a_page_session_cannot_drive_its_battle_through_the_api(limited_stack, redis_client):
    # a page battle as the page leaves it: session "ui:" + Gradio's session hash
    battle_id, _ = store_ready_battles(redis_client, ["demo-terse", "demo-verbose"], 1)[0]
    key = battle_key("arena", battle_id)
    stored = json.loads(redis_client.hget(key, "battle"))
    stored["session_id"] = "ui:k3j4h5g6f7"
    redis_client.hset(key, "battle", json.dumps(stored))
    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        responses = []
        for n in range(ATTEMPTS):
            if n % 3 == 0:
                responses.append(http.post(f"/api/battles/{battle_id}/vote", json={"outcome": "model_a"},
                                           headers={"X-Arena-Session": "ui:k3j4h5g6f7"}))
            elif n % 3 == 1:
                http.cookies.set("arena_session", "ui:k3j4h5g6f7")
                responses.append(http.post(f"/api/battles/{battle_id}/vote", json={"outcome": "model_b"}))
                http.cookies.clear()
            else:
                responses.append(http.post(f"/api/battles/{battle_id}/turns", json={"prompt": "more"},
                                           headers={"X-Arena-Session": "ui:k3j4h5g6f7"}))
    statuses = [response.status_code for response in responses]
    report("page session over the API", statuses.count(403), ATTEMPTS)
    assert statuses == [403] * ATTEMPTS
    assert redis_client.hget(key, "state") == b"ready" and votes_in_stream(redis_client) == 0


def test_page_messages_never_show_the_battle_id():
    battle_id = "0123456789abcdef0123456789abcdef"
    for state in ("missing", "open", "streaming", "failed", "voted", "odd"):
        error = state_error(battle_id, state)
        assert battle_id in str(error)  # the API names it (the caller sent it)
        assert battle_id not in error.page_message and "this battle" in error.page_message


@pytest.fixture
def vote_limited_stack(redis_url, tmp_path):
    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False, votes_per_minute=3,
                                   pair_votes_per_day=2, trusted_proxies="127.0.0.1")) as stack:
        yield stack


def test_votes_are_limited_per_voter_and_per_pair(vote_limited_stack, redis_client):
    models = ["demo-terse", "demo-verbose", "demo-friendly"]
    with httpx.Client(base_url=vote_limited_stack.url, timeout=60) as http:
        def vote(battle, address):
            battle_id, session = battle
            return http.post(f"/api/battles/{battle_id}/vote", json={"outcome": "tie"},
                             headers={"X-Arena-Session": session, "X-Forwarded-For": address})

        # per minute: one voter, battles of every pair
        battles = store_ready_battles(redis_client, models, 3 + ATTEMPTS)
        assert [vote(battle, "198.51.100.1").status_code for battle in battles[:3]] == [200] * 3
        per_minute = [vote(battle, "198.51.100.1") for battle in battles[3:]]
        # per pair: another voter, every battle the same pair (2 a day)
        same_pair = store_ready_battles(redis_client, models[:2], 2 + ATTEMPTS)
        assert [vote(battle, "198.51.100.2").status_code for battle in same_pair[:2]] == [200] * 2
        per_pair = [vote(battle, "198.51.100.2") for battle in same_pair[2:]]
        # a refused vote spends nothing: the battle is still votable by its voter once allowed
        assert vote(same_pair[2], "198.51.100.3").status_code == 200
    for name, responses, detail in (("votes over 3 a minute", per_minute, "the limit is 3 a minute"),
                                    ("votes over 2 a day on one pair", per_pair, "on this pair of models")):
        statuses = [response.status_code for response in responses]
        report(name, statuses.count(429), ATTEMPTS)
        assert statuses == [429] * ATTEMPTS
        assert detail in responses[0].json()["detail"] and int(responses[0].headers["Retry-After"]) >= 1
    assert votes_in_stream(redis_client) == 3 + 2 + 1


@pytest.fixture
def busy_stack(redis_url, tmp_path):
    """Room for one battle's answers at a time, and answers slow enough to be caught in flight."""
    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False, max_concurrent_answers=2,
                                   demo_first_token_delay=3.0)) as stack:
        yield stack


def test_the_answer_budget_refuses_before_anything_is_spent(busy_stack, redis_client):
    with httpx.Client(base_url=busy_stack.url, timeout=120) as http:
        first = threading.Thread(target=post_battle, args=(http,))
        first.start()
        wait_until(lambda: busy_stack.app.state.arena.battles.answers_in_flight == 2,
                   what="the first battle to be answering")
        refused = [post_battle(http) for _ in range(ATTEMPTS)]
        first.join()
    statuses = [response.status_code for response in refused]
    report("battles past the answer budget", statuses.count(503), ATTEMPTS)
    assert statuses == [503] * ATTEMPTS
    assert refused[0].headers["Retry-After"] == "5" and "its limit (2)" in refused[0].json()["detail"]
    assert battle_count(redis_client) == 1


def test_the_embedded_redis_never_evicts(tmp_path):
    from arena.ops.redis_server import EmbeddedRedis

    with EmbeddedRedis(tmp_path / "redis", maxmemory="64mb") as server:
        client = redis.Redis.from_url(server.url)
        config = client.config_get("maxmemory*")
        client.close()
    assert config["maxmemory"] == str(64 * 1024 * 1024) and config["maxmemory-policy"] == "noeviction"


@pytest.fixture
def guarded_stack(redis_url, tmp_path):
    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False, flood_refusals=30,
                                   trusted_proxies="127.0.0.1")) as stack:
        yield stack


def test_a_client_that_keeps_being_refused_is_held_off(guarded_stack, redis_client):
    battle_id, session = store_ready_battles(redis_client, ["demo-terse", "demo-verbose"], 1)[0]
    flooder = {"X-Forwarded-For": "192.0.2.66"}
    with httpx.Client(base_url=guarded_stack.url, timeout=60) as http:
        first = [http.post("/api/battles", json={"prompt": " "}, headers=flooder) for _ in range(30)]
        # held now: even a request that would be fine is refused, without reaching the app
        held = [http.post(f"/api/battles/{battle_id}/vote", json={"outcome": "model_a"},
                          headers={**flooder, "X-Arena-Session": session}) for _ in range(3)]
        neighbour = http.post(f"/api/battles/{battle_id}/vote", json={"outcome": "model_a"},
                              headers={"X-Forwarded-For": "192.0.2.67", "X-Arena-Session": session})
    assert [response.status_code for response in first] == [400] * 30
    assert [response.status_code for response in held] == [429] * 3
    assert "too many refused requests" in held[0].json()["detail"] and int(held[0].headers["Retry-After"]) >= 1
    assert neighbour.status_code == 200  # another client is not held
    assert votes_in_stream(redis_client) == 1


def test_healthz_warns_before_the_store_is_full(limited_stack, redis_client):
    used = int(redis_client.info("memory")["used_memory"])
    with httpx.Client(base_url=limited_stack.url, timeout=60) as http:
        assert "warning" not in http.get("/healthz").json()
        redis_client.config_set("maxmemory", str(int(used * 1.05)))
        try:
            body = http.get("/healthz").json()
        finally:
            redis_client.config_set("maxmemory", "0")
    assert body["status"] == "ok" and body["store_memory_used"] >= 0.9
    assert "refuses new votes" in body["warning"]
