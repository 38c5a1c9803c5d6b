"""Two web processes and one worker on one Redis behave as one arena: a battle started on one is
continued and voted on the other, rate limits are shared, both serve the same snapshot, and a
SIGTERM to one while it is answering loses nothing and leaves no battle half-voted."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import httpx

from arena.ops.redis_server import free_port
from leaderboard.store.redis_keys import vote_stream_key
from leaderboard.store.stream import text
from tests.helpers import wait_until
from tests.serve_support import (
    archived_vote_ids,
    cast,
    error_lines,
    new_battle,
    serve_env,
    start_serve,
    start_worker,
    stop,
    wait_healthy,
    wait_votes,
)

BATTLES_PER_MINUTE = 4


SHARED_VOTER_SECRET = "one-key-for-every-web-process"


def web_process(redis_url: str, data_dir, **variables: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    # one voter-id key for every process, as the operator's guide says: the rate limits count per
    # voter id, so processes with keys of their own would each give the same address its own budget
    env = serve_env(ARENA_BATTLES_PER_MINUTE=str(BATTLES_PER_MINUTE), ARENA_VOTER_SECRET=SHARED_VOTER_SECRET,
                    **variables)
    process = start_serve(data_dir, port, "--redis-url", redis_url, "--no-worker", env=env)
    return process, f"http://127.0.0.1:{port}"


def battle_states(redis_client) -> dict[str, tuple[str, str | None]]:
    """battle id -> (state, vote id) for every battle in Redis."""
    states = {}
    for key in redis_client.scan_iter(match="arena:battle:*"):
        state, vote_id = redis_client.hmget(key, ["state", "vote_id"])
        states[text(key).rsplit(":", 1)[1]] = (text(state), text(vote_id) if vote_id else None)
    return states


def streamed_votes(redis_client) -> list[dict]:
    return [json.loads(fields[b"event"]) for _, fields in redis_client.xrange(vote_stream_key("arena"))]


def test_two_web_processes_and_one_worker_are_one_arena(redis_url, redis_client, tmp_path):
    slow, slow_url = web_process(redis_url, tmp_path / "a", ARENA_DEMO_FIRST_TOKEN_DELAY="1.0")
    fast, fast_url = web_process(redis_url, tmp_path / "b")
    worker = start_worker(redis_url, tmp_path / "worker")
    acknowledged: set[str] = set()
    try:
        wait_healthy(slow_url, slow)
        wait_healthy(fast_url, fast)
        with httpx.Client(base_url=slow_url, timeout=60) as on_a, httpx.Client(base_url=fast_url, timeout=60) as on_b:
            # started on one, continued and voted on the other
            battle = new_battle(on_a)
            turn = on_b.post(f"/api/battles/{battle['battle_id']}/turns", json={"prompt": "and a second one?"},
                             headers={"X-Arena-Session": battle["session"]})
            assert turn.status_code == 200 and turn.json()["turn"] == 2
            voted = cast(on_b, battle, "model_b")
            assert voted.status_code == 200
            acknowledged.add(voted.json()["vote_id"])
            assert cast(on_a, battle, "model_a").status_code == 409  # the other process knows it is voted

            # SIGTERM to A while it is answering: the answer finishes, B takes the vote
            answering_result: dict = {}
            answering = threading.Thread(target=lambda: answering_result.update(
                response=on_a.post("/api/battles", json={"prompt": "slow please"})), daemon=True)
            answering.start()
            wait_until(lambda: any(state == "streaming" for state, _ in battle_states(redis_client).values()),
                       what="A to be streaming an answer")
            slow.send_signal(signal.SIGTERM)
            answering.join(timeout=60)
            in_flight = answering_result["response"]
            assert in_flight.status_code == 200 and in_flight.json()["votable"]
            voted = cast(on_b, in_flight.json(), "tie")
            assert voted.status_code == 200
            acknowledged.add(voted.json()["vote_id"])
            try:
                _, slow_log = slow.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                raise AssertionError("the web process did not exit within 10 s of SIGTERM")
            assert slow.returncode == 0 and error_lines(slow_log) == []

        # a new process joins (the stopped one restarted): same battles, same limits, same snapshot
        slow, slow_url = web_process(redis_url, tmp_path / "a")
        wait_healthy(slow_url, slow)
        with httpx.Client(base_url=slow_url, timeout=60) as on_a, httpx.Client(base_url=fast_url, timeout=60) as on_b:
            refused_by = set()
            for _attempt in range(2):  # a second block only if a minute boundary reset the budget
                window = int(time.time()) // 60
                created = 0
                for http, name in [(on_a, "A"), (on_b, "B")] * BATTLES_PER_MINUTE:
                    response = http.post("/api/battles", json={"prompt": "count me"})
                    assert response.status_code in (200, 429), response.text
                    created += response.status_code == 200
                    if response.status_code == 429:
                        refused_by.add(name)
                if int(time.time()) // 60 == window:
                    break
            # one budget for both: per-process budgets would have let all 2 x limit through
            assert created <= BATTLES_PER_MINUTE and refused_by == {"A", "B"}

            board_b = wait_votes(fast_url, len(acknowledged))
            assert board_b["total_votes"] == len(acknowledged)
            assert on_a.get("/api/leaderboard").json() == on_b.get("/api/leaderboard").json()
    finally:
        for process in (slow, fast):
            if process.poll() is None:
                stop(process, signal.SIGTERM)
        worker_log = stop(worker, signal.SIGTERM)
    assert error_lines(worker_log) == []
    # nothing lost, nothing twice, nothing half-voted
    votes = streamed_votes(redis_client)
    assert sorted(vote["vote_id"] for vote in votes) == sorted(acknowledged)
    assert sorted(archived_vote_ids(tmp_path / "worker")) == sorted(acknowledged)
    for battle_id, (state, vote_id) in battle_states(redis_client).items():
        assert (state == "voted") == (vote_id is not None), battle_id
        assert vote_id is None or vote_id in acknowledged
