"""A web process that is told to stop drains: new battles refused (503, and /healthz 503 so a load
balancer looks elsewhere), answers in flight finished within the grace period, or else ended and
their battle stored as failed; another process on the same Redis takes over."""

from __future__ import annotations

import logging
import threading

import httpx

from arena.cli.serve import ArenaStack
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import arena_settings, wait_until
from tests.serve_support import cast


def in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = target()
        except Exception as error:  # the test asserts on it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def drain_log(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "arena" and record.getMessage().startswith(("stopping:", "stopped:"))]


def test_a_stopping_process_finishes_answers_in_flight_and_refuses_new_battles(redis_url, redis_client, tmp_path,
                                                                              caplog):
    caplog.set_level(logging.INFO, logger="arena")
    slow = ArenaStack(arena_settings(redis_url, tmp_path / "a", demo_first_token_delay=1.0,
                                     shutdown_grace=60.0)).start()
    other = ArenaStack(arena_settings(redis_url, tmp_path / "b", run_worker=False)).start()
    try:
        with httpx.Client(base_url=slow.url, timeout=60) as http:
            answering, answered = in_thread(lambda: http.post("/api/battles", json={"prompt": "take your time"}))
            wait_until(lambda: slow.drain.in_flight == 1, what="the battle's answers to be streaming")
            stopping, _ = in_thread(slow.stop)
            wait_until(lambda: slow.drain.closed, what="the process to start draining")
            refused = http.post("/api/battles", json={"prompt": "one more?"})
            assert refused.status_code == 503 and "shutting down" in refused.json()["detail"]
            assert http.get("/healthz").status_code == 503
            answering.join(timeout=60)
        response = answered["value"]
        assert response.status_code == 200 and response.json()["votable"]
        battle = response.json()
        stopping.join(timeout=60)
        assert not stopping.is_alive()
        assert drain_log(caplog) == ["stopping: refusing new battles, 1 answer(s) in flight, grace 60 s",
                                     "stopped: 1 answer(s) finished, 0 ended"]
        with httpx.Client(base_url=other.url, timeout=30) as http:  # another web process takes the vote
            assert cast(http, battle, "model_b").status_code == 200
        assert redis_client.xlen(vote_stream_key("arena")) == 1
    finally:
        slow.stop()
        other.stop()


def test_answers_that_outlast_the_grace_period_are_ended_and_their_battle_marked_failed(redis_url, redis_client,
                                                                                     tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="arena")
    slow = ArenaStack(arena_settings(redis_url, tmp_path / "a", demo_first_token_delay=600.0,
                                     shutdown_grace=0.2)).start()
    other = ArenaStack(arena_settings(redis_url, tmp_path / "b", run_worker=False)).start()
    try:
        with httpx.Client(base_url=slow.url, timeout=60) as http:
            answering, answered = in_thread(lambda: http.post("/api/battles", json={"prompt": "never ends"}))
            wait_until(lambda: slow.drain.in_flight == 1, what="the battle's answers to be streaming")
            slow.stop()
            answering.join(timeout=60)
        assert drain_log(caplog) == [
            "stopping: refusing new battles, 1 answer(s) in flight, grace 0.2 s",
            "stopping: ended 1 answer(s) still streaming after the 0.2 s grace period; their battles are marked "
            "failed (voters start a new round)",
            "stopped: 0 answer(s) finished, 1 ended"]
        ended = answered["value"]
        assert ended.status_code == 503 and "cannot be voted on: start a new round" in ended.json()["detail"]
        keys = list(redis_client.scan_iter(match="arena:battle:*"))
        assert len(keys) == 1
        assert redis_client.hget(keys[0], "state") == b"failed"  # ended clearly, never half-voted
        assert redis_client.xlen(vote_stream_key("arena")) == 0
    finally:
        slow.stop()
        other.stop()


async def test_an_ended_turn_says_what_became_of_the_battle():
    """A turn cut off says its battle cannot be voted on; a regeneration cut off says the previous
    answer is kept (BattleService hands that battle back ready)."""
    import asyncio

    import pytest

    from arena.battles.drain import REGENERATION_ENDED, TURN_ENDED, Drain, TurnEnded

    drain = Drain()
    for ended in (TURN_ENDED, REGENERATION_ENDED):
        started = asyncio.Event()

        async def streaming(ended=ended):
            with drain.turn(ended_message=ended):
                started.set()
                await asyncio.Event().wait()  # until the drain cancels it

        task = asyncio.create_task(streaming())
        await started.wait()
        assert drain.cancel_in_flight() == 1
        with pytest.raises(TurnEnded) as error:
            await task
        assert str(error.value) == ended
    assert "cannot be voted on" in TURN_ENDED and "can still be voted on" in REGENERATION_ENDED
