"""A refused flood must not slow honest voters: one bounded flooding client (8 connections, as fast
as answered, every request one the arena refuses) while 20 normal clients vote. The web process and
the flooder are processes of their own (the test's clients would otherwise share their GIL), and
flood and quiet phases alternate in one run, so a machine busy with other work slows both alike:
the test compares the median of the flood phases' p99s with the median of the quiet phases' p99s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys

import httpx
import redis

from arena.models.demo_models import DEMO_MODELS
from arena.ops.redis_server import free_port
from arena.sim.load_test import store_ready_battles, vote_clients
from tests.helpers import PROJECT_ROOT, wait_until

NORMAL_CLIENTS = 20
PHASES = 8            # quiet, flood, quiet, flood, ...
PHASE_SECONDS = 4.0
VOTE_PAUSE = 0.2      # a normal client's pause between votes (reading the next battle)
FLOOD_CONNECTIONS = 8


def start_web(redis_url: str, data_dir, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    process = subprocess.Popen(
        [sys.executable, "-m", "arena", "serve", "--no-worker", "--redis-url", redis_url, "--data-dir", str(data_dir),
         "--port", str(port), "--trusted-proxies", "127.0.0.1", "--demo-token-delay", "0.001", *extra],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200

    wait_until(healthy, ignoring=(httpx.HTTPError,), interval=0.2, what="the web process to answer /healthz")
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _flood_battles_done(store, ready: int) -> bool:
    """The flooder's battles (beyond the ready ones) have all finished answering."""
    states = [store.hget(key, "state") for key in store.scan_iter(match="arena:battle:*", count=100_000)]
    return len(states) >= ready + 2 and states.count(b"streaming") == 0 and states.count(b"open") == 0


def test_a_refused_flood_leaves_normal_voters_p99_within_2x(redis_url, tmp_path):
    store = redis.Redis.from_url(redis_url)
    battles = store_ready_battles(store, list(DEMO_MODELS), 12_000)
    fresh_addresses = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(len(battles))]
    switch, stop_file = tmp_path / "flood-on", tmp_path / "flood-stop"
    # the flooder's own battles are refused too (a refused flood): 2 a minute, spent in the warm-up
    web, url = start_web(redis_url, tmp_path / "data", "--battles-per-minute", "2")
    flooder = subprocess.Popen([sys.executable, "-m", "arena.sim.load_test", url,
                                "--connections", str(FLOOD_CONNECTIONS), "--switch", str(switch),
                                "--stop", str(stop_file), "--seconds", str(PHASES * PHASE_SECONDS + 60)],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        queue = iter(battles)
        # warm-up (the flooder spends its battles), then the phases; normal voters come from fresh
        # addresses so no limit refuses them
        switch.touch()
        asyncio.run(vote_clients(url, [next(queue) for _ in range(200)], NORMAL_CLIENTS))
        wait_until(lambda: not any(True for _ in store.scan_iter(match="arena:battle:*", count=100_000))
                   or _flood_battles_done(store, len(battles)), what="the flooder's two battles to finish")
        switch.unlink()
        quiet, flooded = [], []
        for phase in range(PHASES):
            flooding = phase % 2 == 1
            if flooding:
                switch.touch()
            run = asyncio.run(vote_clients(url, queue, NORMAL_CLIENTS, duration=PHASE_SECONDS, pause=VOTE_PAUSE,
                                           rotate_addresses=fresh_addresses[phase * 1500:]))
            switch.unlink(missing_ok=True)
            assert run.statuses == {} and run.errors == 0, (run.statuses, run.errors)
            (flooded if flooding else quiet).append(run)
    finally:
        switch.unlink(missing_ok=True)
        stop_file.touch()
        try:
            output, _ = flooder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            flooder.kill()
            output, _ = flooder.communicate()
        stop(web)
        store.close()
    flood_statuses = {int(status): count for status, count in json.loads(output.strip().splitlines()[-1]).items()}
    quiet_p99 = statistics.median(run.percentile(99) for run in quiet)
    flood_p99 = statistics.median(run.percentile(99) for run in flooded)
    quiet_p50 = statistics.median(run.percentile(50) for run in quiet)
    flood_p50 = statistics.median(run.percentile(50) for run in flooded)
    votes = sum(run.accepted for run in quiet + flooded)
    print("p99 per phase, ms:", " ".join(f"{'F' if run in flooded else 'q'}{run.percentile(99) * 1000:.0f}"
                                         for pair in zip(quiet, flooded) for run in pair))
    print(f"flood: {sum(flood_statuses.values())} requests, statuses {flood_statuses}")
    print(f"flood test: {votes} normal votes; quiet p50 {quiet_p50 * 1000:.1f} ms p99 {quiet_p99 * 1000:.1f} ms; "
          f"flooded p50 {flood_p50 * 1000:.1f} ms p99 {flood_p99 * 1000:.1f} ms; "
          f"p99 ratio {flood_p99 / quiet_p99:.2f} (limit 2.00)")
    assert min(run.accepted for run in quiet + flooded) >= 100
    # it flooded, and nothing got in past its address's 2 battles a minute
    assert sum(flood_statuses.values()) >= 100 and flood_statuses.get(200, 0) <= 2 * (1 + PHASES * PHASE_SECONDS // 60)
    assert flood_p99 <= 2 * quiet_p99, f"flooded p99 {flood_p99 * 1000:.1f} ms vs quiet {quiet_p99 * 1000:.1f} ms"
