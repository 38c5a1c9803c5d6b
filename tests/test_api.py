"""The JSON API end to end: real uvicorn, real Redis, real demo endpoints through the openai client,
and the real worker publishing the leaderboard."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import threading
import time

import httpx
import pytest
import redis

from arena.cli.serve import ArenaStack
from arena.keys import battle_key
from arena.models.endpoints import EndpointError
from leaderboard.data.events import PAIRWISE_OUTCOMES, VoteEvent
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import arena_settings, wait_until


def new_battle(client: httpx.Client, prompt: str = "What is a good name for a cat?") -> dict:
    response = client.post("/api/battles", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    return response.json()


def cast(client: httpx.Client, battle: dict, outcome: str = "model_a", session: str | None = None) -> httpx.Response:
    headers = {"X-Arena-Session": session if session is not None else battle["session"]}
    return client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": outcome}, headers=headers)


@pytest.fixture
def client(arena_stack):
    with httpx.Client(base_url=arena_stack.url, timeout=30) as http:
        yield http


def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["models_available"] >= 4


def test_battle_is_anonymous_until_the_vote(client, arena_stack):
    names = arena_stack.endpoints.names
    battle = new_battle(client)
    assert [a["label"] for a in battle["answers"]] == ["A", "B"]
    assert all(a["text"].strip() for a in battle["answers"])
    assert battle["votable"] is True
    raw = json.dumps(battle)
    leaked = [name for name in names if name in raw]
    assert leaked == [], f"model identity sent before the vote: {leaked}"

    result = cast(client, battle, "model_b")
    assert result.status_code == 200, result.text
    revealed = result.json()["models"]
    assert set(revealed) == {"model_a", "model_b"}
    assert revealed["model_a"] in names and revealed["model_b"] in names
    assert revealed["model_a"] != revealed["model_b"]


def test_vote_lands_in_the_stream_with_the_full_event(client, arena_stack, redis_client):
    battle = new_battle(client, "Explain recursion in two sentences.")
    receipt = cast(client, battle, "tie").json()
    entries = redis_client.xrange(vote_stream_key("arena"))
    events = [VoteEvent.model_validate_json(fields[b"event"]) for _, fields in entries]
    mine = [e for e in events if e.battle_id == battle["battle_id"]]
    assert len(mine) == 1
    event = mine[0]
    assert event.vote_id == receipt["vote_id"]
    assert event.outcome == "tie" and event.mode == "anonymous"
    assert event.models == [receipt["models"]["model_a"], receipt["models"]["model_b"]]
    # The live default (active) spreads probability over every pair and never rules one out.
    pairs = math.comb(len(arena_stack.endpoints.names), 2)
    assert 0 < event.selection_probability < 1 and event.selection_probability != pytest.approx(1.0)
    assert event.selection_probability > 0.1 / pairs
    assert len(event.style) == 2 and all(s.tokens > 0 for s in event.style)
    assert event.voter_id.startswith("v_") and "127.0.0.1" not in event.model_dump_json()
    assert event.served_at <= event.voted_at


def test_second_vote_is_rejected_and_counted_once(client, redis_client):
    battle = new_battle(client)
    assert cast(client, battle, "model_a").status_code == 200
    again = cast(client, battle, "model_b")
    assert again.status_code == 409
    assert "already has a vote" in again.json()["detail"]
    events = [VoteEvent.model_validate_json(f[b"event"]) for _, f in redis_client.xrange(vote_stream_key("arena"))]
    assert sum(e.battle_id == battle["battle_id"] for e in events) == 1


def test_unknown_battle_is_404(client):
    response = client.post("/api/battles/0123456789abcdef0123456789abcdef/vote", json={"outcome": "model_a"},
                           headers={"X-Arena-Session": "whatever"})
    assert response.status_code == 404
    assert "no battle" in response.json()["detail"]
    assert client.post("/api/battles/not-a-battle!/vote", json={"outcome": "model_a"}).status_code == 404


@pytest.mark.parametrize("outcome", ["A", "model_c", "TIE", "", "tie(bothbad)"])
def test_malformed_outcome_is_rejected_and_loses_nothing(client, outcome):
    battle = new_battle(client)
    response = cast(client, battle, outcome)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert repr(outcome) in detail and all(o in detail for o in PAIRWISE_OUTCOMES)
    # The battle is still votable: a bad request consumes nothing.
    assert cast(client, battle, "model_a").status_code == 200


@pytest.mark.parametrize(("body", "detail"), [
    ({"outcome": "model_c"}, "unknown outcome 'model_c'"),
    ({"outcome": ""}, "unknown outcome ''"),
    ({}, "the vote has no 'outcome'"),
    ({"ranking": [["A"], ["B"]]}, "a two-way battle takes an 'outcome'"),
    ({"outcome": "model_a", "ranking": [["A"], ["B"]]}, "not a 'ranking'"),
])
def test_malformed_vote_is_422_even_on_a_battle_already_voted(client, redis_client, body, detail):
    # The input is wrong whatever the battle's state, so it is 422 (fix the request), not 409.
    battle = new_battle(client)
    assert cast(client, battle, "model_b").status_code == 200
    response = client.post(f"/api/battles/{battle['battle_id']}/vote", json=body,
                           headers={"X-Arena-Session": battle["session"]})
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    events = [VoteEvent.model_validate_json(f[b"event"]) for _, f in redis_client.xrange(vote_stream_key("arena"))]
    assert [e.outcome for e in events if e.battle_id == battle["battle_id"]] == ["model_b"]
    assert cast(client, battle, "tie").status_code == 409  # a well-formed second vote is still a conflict


def test_vote_body_must_be_an_object_with_known_fields(client):
    battle = new_battle(client)
    response = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_a", "winner": "x"},
                           headers={"X-Arena-Session": battle["session"]})
    assert response.status_code == 422


def test_vote_from_another_session_is_rejected(client):
    battle = new_battle(client)
    response = cast(client, battle, "model_a", session="someone-else")
    assert response.status_code == 403
    assert "another session" in response.json()["detail"]
    assert cast(client, battle, "model_a").status_code == 200


def test_multi_turn_keeps_each_models_history(client):
    battle = new_battle(client, "My name is Ada. Say hello.")
    follow = client.post(f"/api/battles/{battle['battle_id']}/turns", json={"prompt": "What is my name?"},
                         headers={"X-Arena-Session": battle["session"]})
    assert follow.status_code == 200, follow.text
    assert follow.json()["turn"] == 2
    assert cast(client, battle, "model_a").status_code == 200
    closed = client.post(f"/api/battles/{battle['battle_id']}/turns", json={"prompt": "more"},
                         headers={"X-Arena-Session": battle["session"]})
    assert closed.status_code == 409


def test_vote_lands_on_the_leaderboard(client):
    battle = new_battle(client)
    revealed = cast(client, battle, "model_a").json()["models"]
    board = wait_until(lambda board: board["total_votes"] >= 1, observe=lambda: client.get("/api/leaderboard").json(),
                       interval=0.1, what="the vote on the leaderboard")
    assert board["total_votes"] == 1
    rows = {row["model"]: row for row in board["models"]}
    assert set(rows) >= {revealed["model_a"], revealed["model_b"]}
    assert rows[revealed["model_a"]]["votes"] == 1 and rows[revealed["model_b"]]["votes"] == 1
    assert rows[revealed["model_a"]]["rating"] > rows[revealed["model_b"]]["rating"]
    for row in board["models"]:
        assert set(row) >= {"model", "rating", "lower", "upper", "rank", "votes"}
        assert row["lower"] <= row["rating"] <= row["upper"]


def test_stop_closes_the_endpoint_clients(redis_url, tmp_path):
    stack = ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False)).start()
    pool = stack.endpoints
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            new_battle(http)  # two of the clients have answered and hold connections
        assert not pool.closed
    finally:
        stack.stop()
    assert pool.closed
    stack.stop()  # a second stop is harmless
    with pytest.raises(EndpointError, match="shutting down"):
        asyncio.run(pool.complete(pool.names[0], [{"role": "user", "content": "hello"}]))


def test_stop_closes_the_endpoint_clients_of_a_stack_that_never_served(redis_url, tmp_path):
    stack = ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False))
    stack.prepare()
    assert not stack.endpoints.closed
    stack.stop()
    assert stack.endpoints.closed


@pytest.fixture
def slow_stack(redis_url, tmp_path):
    """Every answer streams for over 2 s: time to send two requests while it does, even on a busy box."""
    with ArenaStack(arena_settings(redis_url, tmp_path, demo_token_delay=0.005, demo_first_token_delay=2.0)) as stack:
        yield stack


def test_vote_while_answers_stream_is_409_and_a_malformed_one_422(slow_stack):
    with httpx.Client(base_url=slow_stack.url, timeout=60) as http:
        battle = new_battle(http)
        headers = {"X-Arena-Session": battle["session"]}
        follow_up = threading.Thread(target=http.post, args=(f"/api/battles/{battle['battle_id']}/turns",),
                                     kwargs={"json": {"prompt": "Tell me much more, in detail."}, "headers": headers})
        follow_up.start()
        state_key = battle_key("arena", battle["battle_id"])
        store = redis.Redis.from_url(slow_stack.redis_url)
        wait_until(lambda state: state == b"streaming", observe=lambda: store.hget(state_key, "state"), interval=0.005,
                   what="the follow-up turn to start streaming")
        malformed = cast(http, battle, "A")
        early = cast(http, battle, "model_a")
        follow_up.join()
        assert malformed.status_code == 422 and "unknown outcome 'A'" in malformed.json()["detail"]
        assert early.status_code == 409
        assert "still answering" in early.json()["detail"]
        assert store.hget(state_key, "state") == b"ready"  # nothing recorded: still votable
        store.close()
        assert cast(http, battle, "model_a").status_code == 200


@pytest.fixture
def slow_start_stack(redis_url, tmp_path):
    """Every demo answer waits 1 s before its first token, whichever pair is chosen."""
    with ArenaStack(arena_settings(redis_url, tmp_path, demo_first_token_delay=1.0, demo_token_delay=0.005)) as stack:
        yield stack


def test_twenty_battles_stream_at_once(slow_start_stack):
    """Slow answers (1 s to first token): twenty battles together take about as long as one."""
    slow_stack = slow_start_stack
    with httpx.Client(base_url=slow_stack.url, timeout=120) as http:
        started = time.monotonic()
        new_battle(http, "Write a short poem about the sea.")
        one = time.monotonic() - started

        spans = []

        def timed_battle(index: int) -> None:
            with httpx.Client(base_url=slow_stack.url, timeout=120) as own:
                begin = time.monotonic()
                new_battle(own, "Write a short poem about the sea.")
                spans.append((begin, time.monotonic()))

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(timed_battle, range(20)))
        twenty = time.monotonic() - started
    # Run one after another they would take ~20x; every battle must overlap every other one.
    latest_start = max(begin for begin, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, "some battle only started after another had finished"
    # Serialised they would take >= 20 s (20 x the 1 s first-token wait); slack for a loaded machine.
    assert one >= 1.0
    assert twenty < 8 * one, f"20 concurrent battles took {twenty:.2f}s vs {one:.2f}s for one"


def test_redis_outage_gives_a_clear_503(tmp_path):
    from arena.ops.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        with ArenaStack(arena_settings(server.url, tmp_path, run_worker=False)) as stack:
            with httpx.Client(base_url=stack.url, timeout=30) as http:
                battle = new_battle(http)
                server.kill()
                response = cast(http, battle, "model_a")
                assert response.status_code == 503
                assert ("unreachable" in response.json()["detail"]
                        and "nothing was recorded" in response.json()["detail"])
    finally:
        server.stop()


@pytest.fixture
def stack_with_broken_model(redis_url, tmp_path):
    from arena.ops.redis_server import free_port

    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - name: broken-model\n"
        "    provider: openai\n"
        f"    base_url: http://127.0.0.1:{free_port()}/v1\n"
        "    model_id: nothing-listens-here\n"
        "    timeout: 5\n"
        "    max_retries: 0\n"
    )
    # one failure from one voter benches here: every API client is one voter (127.0.0.1);
    # tests/test_owner_health.py checks the default breaker needs several voters
    settings = arena_settings(redis_url, tmp_path / "data", models_file=config, matchmaker="uniform",
                              breaker_failures=1, breaker_voters=1)
    with ArenaStack(settings) as stack:
        yield stack


def test_unreachable_endpoint_fails_the_round_without_naming_it(stack_with_broken_model, redis_client):
    with httpx.Client(base_url=stack_with_broken_model.url, timeout=60) as http:
        assert http.get("/healthz").json()["models_available"] == 6
        for _ in range(60):  # uniform pairs among 6 models: the broken one turns up within a few battles
            battle = new_battle(http, "hello")
            if not battle["votable"]:
                break
        else:
            pytest.fail("the broken model was never matched")
        assert "broken-model" not in json.dumps(battle)
        assert any("failed to answer" in answer["text"] for answer in battle["answers"])
        refused = cast(http, battle, "model_a")
        assert refused.status_code == 409 and "failed to answer" in refused.json()["detail"]
        # The benched model sits out new battles until a probe answers; the others carry on.
        assert http.get("/healthz").json()["models_available"] == 5
        models = {m["model"]: m["available"] for m in http.get("/api/models").json()["models"]}
        assert models["broken-model"] is False
        assert {m["model"]: m["status"] for m in http.get("/api/models").json()["models"]}["broken-model"] == "benched"
        for _ in range(10):
            assert new_battle(http, "hello again")["votable"] is True
    assert redis_client.xlen(vote_stream_key("arena")) == 0


def test_new_battles_are_rate_limited_per_voter(redis_url, tmp_path):
    with ArenaStack(arena_settings(redis_url, tmp_path, battles_per_minute=3, run_worker=False)) as stack:
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            battles = [new_battle(http, f"question {n}") for n in range(3)]
            refused = http.post("/api/battles", json={"prompt": "one more"})
            if refused.status_code == 200:  # the minute turned over between the calls: the next window allows 3 again
                for n in range(3):
                    http.post("/api/battles", json={"prompt": f"again {n}"})
                refused = http.post("/api/battles", json={"prompt": "one more"})
            assert refused.status_code == 429
            assert "limit is 3 a minute" in refused.json()["detail"]
            # Voting on battles already running is not limited.
            assert cast(http, battles[0], "model_a").status_code == 200


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_votes_download_in_lmarena_format_refits_offline(client, tmp_path, fmt):
    import subprocess
    import sys

    import pandas as pd

    outcomes = ["model_a", "model_b", "tie", "tie (bothbad)"] * 3
    for outcome in outcomes:
        assert cast(client, new_battle(client), outcome).status_code == 200
    response = client.get("/api/votes", params={"format": fmt})
    assert response.status_code == 200
    path = tmp_path / f"downloaded.{fmt}"  # not votes.jsonl: that is the running worker's archive
    path.write_text(response.text)
    frame = pd.read_json(path, lines=True) if fmt == "jsonl" else pd.read_csv(path)
    assert len(frame) == len(outcomes)
    assert sorted(frame["winner"]) == sorted(outcomes)
    assert {"question_id", "model_a", "model_b", "winner", "judge", "tstamp", "conv_metadata"} <= set(frame.columns)
    refit = subprocess.run([sys.executable, "-m", "leaderboard", "fit", str(path), "--quiet", "--alpha", "0.01",
                            "--out", str(tmp_path / "board.json")], capture_output=True, text=True, timeout=120)
    assert refit.returncode == 0, refit.stderr
    board = json.loads((tmp_path / "board.json").read_text())
    assert board["n_votes"] == len(outcomes)


def test_votes_download_is_empty_but_valid_before_any_vote(client):
    assert client.get("/api/votes").text == ""
    assert client.get("/api/votes", params={"format": "csv"}).text.startswith("question_id,model_a,model_b,winner")
    assert client.get("/api/votes", params={"format": "xml"}).status_code == 422


def test_votes_download_pages_through_a_long_stream(client, redis_client):
    from leaderboard.data.events import StyleFeatures

    style = [StyleFeatures(tokens=3, headers=0, list_items=0, bold=0)] * 2
    pipe = redis_client.pipeline()
    total = 4_321  # more than two pages of 2,000
    for n in range(total):
        event = VoteEvent(vote_id=f"{n:032x}", battle_id=f"{n:032x}", mode="anonymous", models=["x", "y"],
                          outcome=PAIRWISE_OUTCOMES[n % 4], voter_id="v_test", served_at=1.0, voted_at=2.0 + n,
                          selection_probability=0.5, style=style)
        pipe.xadd(vote_stream_key("arena"), {"event": event.model_dump_json()})
    pipe.execute()
    lines = client.get("/api/votes").text.splitlines()
    ids = [json.loads(line)["vote_id"] for line in lines]
    assert len(ids) == total and len(set(ids)) == total
    assert ids == sorted(ids)  # oldest first
