"""Battle sizes and named battles through the JSON API (real uvicorn, Redis, demo endpoints)."""

from __future__ import annotations

import json

import httpx
import pytest

from arena.battles.requests import InvalidBattleRequest, kway_sizes
from arena.matchmaker.keys import pair_battles_key, pair_field
from arena.models import availability
from leaderboard.data.events import VoteEvent
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import wait_until


@pytest.fixture
def client(six_model_stack):
    with httpx.Client(base_url=six_model_stack.url, timeout=60) as http:
        yield http


def events(redis_client) -> list[VoteEvent]:
    return [VoteEvent.model_validate_json(fields[b"event"])
            for _, fields in redis_client.xrange(vote_stream_key("arena"))]


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_a_battle_of_each_offered_size_is_ranked_through_the_api(client, redis_client, k):
    response = client.post("/api/battles", json={"prompt": "Name a colour.", "k": k})
    assert response.status_code == 200, response.text
    battle = response.json()
    labels = [answer["label"] for answer in battle["answers"]]
    assert labels == [chr(ord("A") + index) for index in range(k)]
    vote = {"outcome": "model_a"} if k == 2 else {"ranking": [[label] for label in reversed(labels)]}
    result = client.post(f"/api/battles/{battle['battle_id']}/vote", json=vote,
                         headers={"X-Arena-Session": battle["session"]})
    assert result.status_code == 200, result.text
    revealed = result.json()["models"]
    [event] = events(redis_client)
    assert event.models == [revealed[f"model_{label.lower()}"] for label in labels]
    if k > 2:
        assert event.mode == "kwise" and event.ranking == [[name] for name in reversed(event.models)]
    else:
        assert event.mode == "anonymous"


@pytest.mark.parametrize("k", [1, 5, 7, 0, "4", True])
def test_a_size_not_offered_is_422_naming_the_offered_ones(client, redis_client, k):
    response = client.post("/api/battles", json={"prompt": "Name a colour.", "k": k})
    assert response.status_code == 422, response.text
    if isinstance(k, int) and not isinstance(k, bool):
        assert "must be one of 2, 3, 4, 6" in response.json()["detail"]
    assert redis_client.keys("arena:battle:*") == []


def test_named_battle_seats_the_chosen_models_and_is_not_rated(client, redis_client, six_model_stack):
    response = client.post("/api/battles", json={"prompt": "Name a colour.", "models": ["demo-steps", "extra-verbose"]})
    assert response.status_code == 200, response.text
    battle = response.json()
    result = client.post(f"/api/battles/{battle['battle_id']}/vote",
                         json={"outcome": "model_b", "feedback": "  B listed real colours.  "},
                         headers={"X-Arena-Session": battle["session"]})
    assert result.status_code == 200, result.text
    assert result.json()["models"] == {"model_a": "demo-steps", "model_b": "extra-verbose"}
    [event] = events(redis_client)
    assert event.mode == "named" and event.models == ["demo-steps", "extra-verbose"] and event.outcome == "model_b"
    assert event.selection_probability == 1.0
    assert event.feedback == "B listed real colours."
    # the worker archives it but does not rate it; the export says the names were shown
    exported = wait_until(lambda text: "extra-verbose" in text, observe=lambda: client.get("/api/votes").text,
                          what="the named vote in the export")
    [row] = [json.loads(line) for line in exported.splitlines() if "extra-verbose" in line]
    assert row["anony"] is False and row["mode"] == "named"
    anonymous = client.post("/api/battles", json={"prompt": "Name a fruit."}).json()
    client.post(f"/api/battles/{anonymous['battle_id']}/vote", json={"outcome": "tie"},
                headers={"X-Arena-Session": anonymous["session"]})
    board = wait_until(lambda body: body["total_votes"] == 1, observe=lambda: client.get("/api/leaderboard").json(),
                       what="a leaderboard of the one anonymous vote")
    assert board["total_votes"] == 1  # the named vote is not in the ratings
    # nor in the matchmaker's online belief: it learned the anonymous pair only
    taught = wait_until(lambda pairs: pairs, observe=lambda: redis_client.hgetall(pair_battles_key("arena")),
                        what="the matchmaker to learn the anonymous vote")
    assert pair_field(["demo-steps", "extra-verbose"]).encode() not in taught
    assert len(taught) == 1


@pytest.mark.parametrize("models, problem", [
    (["demo-steps", "demo-steps"], "named twice"),
    (["demo-steps", "no-such-model"], "unknown model 'no-such-model'"),
    (["demo-steps"], "has 2, 3, 4 or 6 models (the sizes this arena offers), got 1"),
    (["demo-steps", "demo-terse", "demo-echo", "demo-verbose", "extra-verbose"], "has 2, 3, 4 or 6 models"),
    (["demo-steps", "demo-terse", "demo-steps"], "demo-steps is named twice: pick 3 different models"),
])
def test_named_battle_with_bad_models_is_422(client, redis_client, models, problem):
    response = client.post("/api/battles", json={"prompt": "Name a colour.", "models": models})
    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]
    assert redis_client.keys("arena:battle:*") == []


def test_named_battle_with_a_paused_model_is_422(client, redis_client):
    availability.pause(redis_client, "arena", "demo-echo")
    response = client.post("/api/battles", json={"prompt": "Name a colour.", "models": ["demo-echo", "demo-terse"]})
    assert response.status_code == 422, response.text
    assert "demo-echo cannot answer right now" in response.json()["detail"]


def test_feedback_is_bounded(client, redis_client):
    battle = client.post("/api/battles", json={"prompt": "Name a colour."}).json()
    response = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "tie", "feedback": "x" * 1001},
                           headers={"X-Arena-Session": battle["session"]})
    assert response.status_code == 422
    assert events(redis_client) == []


def test_kway_sizes_setting():
    assert kway_sizes("6, 3,4") == (3, 4, 6) and str(kway_sizes("6,3")) == "3,6"
    for bad in ("2", "7", "3,x", ""):
        with pytest.raises(ValueError):
            kway_sizes(bad)
    assert issubclass(InvalidBattleRequest, Exception) and InvalidBattleRequest.status == 422


def _vote(client, battle, body):
    return client.post(f"/api/battles/{battle['battle_id']}/vote", json=body,
                       headers={"X-Arena-Session": battle["session"]})


def test_named_battle_of_three_is_ranked_and_kept_out_of_the_ratings(client, redis_client):
    chosen = ["demo-terse", "extra-verbose", "demo-steps"]
    response = client.post("/api/battles", json={"prompt": "Name a colour.", "models": chosen})
    assert response.status_code == 200, response.text
    battle = response.json()
    assert [answer["label"] for answer in battle["answers"]] == ["A", "B", "C"]
    assert _vote(client, battle, {"outcome": "model_a"}).status_code == 422  # three answers take a ranking
    result = _vote(client, battle, {"ranking": [["B"], ["A", "C"]]})
    assert result.status_code == 200, result.text
    assert result.json()["models"] == {"model_a": "demo-terse", "model_b": "extra-verbose", "model_c": "demo-steps"}
    [event] = events(redis_client)
    assert (event.mode, event.models, event.ranking) == ("named", chosen,
                                                         [["extra-verbose"], ["demo-terse", "demo-steps"]])
    exported = wait_until(lambda text: "extra-verbose" in text, observe=lambda: client.get("/api/votes").text,
                          what="the named 3-way vote in the export")
    [row] = [json.loads(line) for line in exported.splitlines() if line]
    assert (row["mode"], row["anony"], row["model_a"], row["winner"]) == ("named", False, None, None)
    assert row["ranking"] == [["extra-verbose"], ["demo-terse", "demo-steps"]] and row["models"] == chosen
    anonymous = client.post("/api/battles", json={"prompt": "Name a fruit."}).json()
    assert _vote(client, anonymous, {"outcome": "tie"}).status_code == 200
    # the worker has seen both votes once its note counts the named one; it rated only the anonymous one
    board = wait_until(lambda body: body["total_votes"] >= 1 and "1 named-mode vote" in (body.get("note") or ""),
                       observe=lambda: client.get("/api/leaderboard").json(),
                       what="a leaderboard noting the named vote")
    assert board["total_votes"] == 1


def test_named_battle_size_must_agree_with_k(client, redis_client):
    response = client.post("/api/battles", json={"prompt": "Hi.", "models": ["demo-terse", "demo-steps"], "k": 4})
    assert response.status_code == 422 and "'k' is 4 but 'models' names 2" in response.json()["detail"]
    assert redis_client.keys("arena:battle:*") == []


def test_best_only_is_recorded_as_a_partial_ranking(client, redis_client):
    battle = client.post("/api/battles", json={"prompt": "Name a colour.", "k": 4}).json()
    # without "partial", leaving answers out is an error that says how to rank only the best
    refused = _vote(client, battle, {"ranking": [["C"]]})
    assert refused.status_code == 422 and '"partial": true' in refused.json()["detail"]
    assert _vote(client, battle, {"ranking": [], "partial": True}).status_code == 422  # nothing placed
    assert _vote(client, battle, {"ranking": [["Z"]], "partial": True}).status_code == 422
    assert events(redis_client) == []
    result = _vote(client, battle, {"ranking": [["C"]], "partial": True})
    assert result.status_code == 200, result.text
    names = result.json()["models"]
    best = names["model_c"]
    rest = [names[f"model_{label}"] for label in "abd"]
    assert result.json()["ranking"] == [[best]] and result.json()["unranked"] == rest
    [event] = events(redis_client)
    assert (event.mode, event.ranking, event.unranked) == ("kwise", [[best]], rest)
    exported = wait_until(lambda text: best in text, observe=lambda: client.get("/api/votes").text,
                          what="the partial ranking in the export")
    [row] = [json.loads(line) for line in exported.splitlines() if line]
    assert row["ranking"] == [[best]] and row["unranked"] == rest and row["models"] == event.models


def test_partial_is_refused_on_a_two_way_battle(client, redis_client):
    battle = client.post("/api/battles", json={"prompt": "Name a colour."}).json()
    response = _vote(client, battle, {"outcome": "model_a", "partial": True})
    assert response.status_code == 422 and "two-way battle takes an 'outcome'" in response.json()["detail"]


def test_the_operator_sets_a_battles_prompt_length_and_turns(redis_url, tmp_path, redis_client):
    from arena.cli.serve import ArenaStack
    from tests.helpers import arena_settings

    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False, max_prompt_chars=40, max_turns=2,
                                   battle_ttl=120)) as stack, httpx.Client(base_url=stack.url, timeout=60) as http:
        too_long = http.post("/api/battles", json={"prompt": "x" * 41})
        assert too_long.status_code == 400 and "40" in too_long.json()["detail"]
        battle = http.post("/api/battles", json={"prompt": "Name a colour."}).json()
        assert 0 < redis_client.ttl(f"arena:battle:{battle['battle_id']}") <= 120
        headers = {"X-Arena-Session": battle["session"]}
        assert http.post(f"/api/battles/{battle['battle_id']}/turns", json={"prompt": "Another?"},
                         headers=headers).status_code == 200
        third = http.post(f"/api/battles/{battle['battle_id']}/turns", json={"prompt": "One more?"}, headers=headers)
        assert third.status_code == 409 and "2 turns" in third.json()["detail"]
