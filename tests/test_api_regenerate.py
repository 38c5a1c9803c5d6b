"""POST /api/battles/{id}/regenerate end to end: real uvicorn, real Redis, real demo endpoints whose
answers differ per call (tests.numbered_models), the vote stream and the vote download."""

from __future__ import annotations

import json

import httpx
import pytest

from arena.models.demo_models import DEMO_MODELS
from leaderboard.data.events import VoteEvent
from leaderboard.store.redis_keys import vote_stream_key
from tests.numbered_models import NumberedModels, numbered_stack


def new_battle(http: httpx.Client, prompt: str = "What is a good name for a cat?") -> dict:
    response = http.post("/api/battles", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    return response.json()


def regenerate(http: httpx.Client, battle: dict, body, session: str | None = None) -> httpx.Response:
    headers = {"X-Arena-Session": session if session is not None else battle["session"]}
    return http.post(f"/api/battles/{battle['battle_id']}/regenerate", json=body, headers=headers)


def cast(http: httpx.Client, battle: dict, outcome: str = "model_a") -> httpx.Response:
    return http.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": outcome},
                     headers={"X-Arena-Session": battle["session"]})


@pytest.fixture
def stack(redis_url, tmp_path):
    with numbered_stack(redis_url, tmp_path) as running:
        yield running


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client


def test_regenerated_answer_is_the_one_voted_on_and_exported(http, redis_client):
    battle = new_battle(http)
    response = regenerate(http, battle, {"label": "A"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["label"], body["regenerations"], body["regenerations_left"], body["votable"]) == ("A", [1, 0], 1, True)
    assert body["battle_id"] == battle["battle_id"] and body["turn"] == 1
    assert body["answers"][0]["text"] != battle["answers"][0]["text"]  # a new answer for A
    assert body["answers"][1] == battle["answers"][1]  # B as it was
    assert not any(name in response.text for name in DEMO_MODELS)  # still anonymous

    assert cast(http, battle).status_code == 200
    (entry,) = redis_client.xrange(vote_stream_key("arena"))
    assert VoteEvent.model_validate_json(entry[1][b"event"]).regenerations == [1, 0]
    row = json.loads(http.get("/api/votes").text)
    assert row["regenerations"] == [1, 0]
    header, line = http.get("/api/votes", params={"format": "csv"}).text.splitlines()
    assert "regenerations" in header.split(",") and '"[1, 0]"' in line


def test_refusals_and_their_statuses(http):
    battle = new_battle(http)
    for body, detail in (({"label": "C"}, "unknown label 'C': this battle's answers are A, B"),
                         ({"label": 1}, "valid string"),
                         ({}, "label"),
                         ({"label": "A", "model": "x"}, "model")):
        refused = regenerate(http, battle, body)
        assert refused.status_code == 422 and detail in refused.text, (body, refused.text)
    assert regenerate(http, battle, {"label": "A"}, session="0" * 32).status_code == 403
    # no session at all (neither the header nor the cookie): not this caller's battle
    no_session = httpx.post(f"{str(http.base_url).rstrip('/')}/api/battles/{battle['battle_id']}/regenerate",
                            json={"label": "A"})
    assert no_session.status_code == 403, no_session.text
    assert regenerate(http, {**battle, "battle_id": "f" * 32}, {"label": "A"}).status_code == 404

    for left in (1, 0):
        again = regenerate(http, battle, {"label": "B"})
        assert again.status_code == 200 and again.json()["regenerations_left"] == left
    capped = regenerate(http, battle, {"label": "B"})
    assert capped.status_code == 409 and "already regenerated 2 times, the limit per answer" in capped.json()["detail"]
    assert cast(http, battle).status_code == 200
    voted = regenerate(http, battle, {"label": "A"})
    assert voted.status_code == 409 and "cannot be regenerated after the vote" in voted.json()["detail"]


def test_regeneration_off_is_403(redis_url, tmp_path):
    with numbered_stack(redis_url, tmp_path, max_regenerations=0) as running, \
            httpx.Client(base_url=running.url, timeout=60) as client:
        refused = regenerate(client, new_battle(client), {"label": "A"})
        assert refused.status_code == 403 and "--max-regenerations 0" in refused.json()["detail"]


def test_a_failed_regeneration_is_502_and_the_battle_stays_votable(redis_url, tmp_path, redis_client):
    with numbered_stack(redis_url, tmp_path, NumberedModels(failing=DEMO_MODELS)) as running, \
            httpx.Client(base_url=running.url, timeout=60) as client:
        battle = new_battle(client)
        failed = regenerate(client, battle, {"label": "B"})
        assert failed.status_code == 502 and "previous answer is kept" in failed.json()["detail"]
        assert not any(name in failed.text for name in DEMO_MODELS)
        assert cast(client, battle, "model_b").status_code == 200
    (entry,) = redis_client.xrange(vote_stream_key("arena"))
    assert VoteEvent.model_validate_json(entry[1][b"event"]).regenerations == []


def test_a_regeneration_spends_a_new_battle_of_the_voters_limit(redis_url, tmp_path):
    with numbered_stack(redis_url, tmp_path, battles_per_minute=2) as running, \
            httpx.Client(base_url=running.url, timeout=60) as client:
        battle = new_battle(client)
        assert regenerate(client, battle, {"label": "A"}).status_code == 200
        limited = regenerate(client, battle, {"label": "A"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "a regeneration counts as a new battle" in limited.json()["detail"]
        assert cast(client, battle).status_code == 200  # the battle is still votable
