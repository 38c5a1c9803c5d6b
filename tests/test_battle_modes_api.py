"""Battle sizes and named battles through the JSON API (real uvicorn, Redis, demo endpoints)."""

from __future__ import annotations

import json

import httpx
import pytest

from arena import availability
from arena.battle_requests import InvalidBattleRequest, kway_sizes
from leaderboard.events import VoteEvent
from leaderboard.redis_keys import vote_stream_key
from tests.helpers import wait_until


@pytest.fixture
def client(six_model_stack):
    with httpx.Client(base_url=six_model_stack.url, timeout=60) as http:
        yield http


def events(redis_client) -> list[VoteEvent]:
    return [VoteEvent.model_validate_json(fields[b"event"]) for _, fields in redis_client.xrange(vote_stream_key("arena"))]


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


@pytest.mark.parametrize("models, problem", [
    (["demo-steps", "demo-steps"], "named twice"),
    (["demo-steps", "no-such-model"], "unknown model 'no-such-model'"),
    (["demo-steps"], "has 2 models, got 1"),
    (["demo-steps", "demo-terse", "demo-echo"], "has 2 models, got 3"),
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
