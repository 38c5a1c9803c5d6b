"""Leaderboard API latency: /api/leaderboard (and its views, CSV, categories, model stats) p50/p99.

A real embedded redis-server holds the views the worker publishes for 200 models and 10
categories (leaderboard.worker.publish, from synthetic votes); ``python -m arena serve
--no-worker`` runs in its own process; this process sends sequential GETs over HTTP and prints
one line per endpoint. The handlers only read Redis (nothing is fitted per request).

    .venv/bin/python benchmarks/bench_leaderboard_api.py [--requests 1000] [--votes 30000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_worker import view_votes  # noqa: E402

from arena.ops.redis_server import EmbeddedRedis, free_port  # noqa: E402
from leaderboard.live.view_fit import LiveVotes  # noqa: E402
from leaderboard.worker import build_snapshot  # noqa: E402
from leaderboard.worker.publish import ViewPublisher  # noqa: E402


def publish_views(client: redis.Redis, n_votes: int) -> list[str]:
    live = LiveVotes.from_events(view_votes(n_votes, seed=3))
    index = ViewPublisher(client, "arena").publish(live, build_snapshot(live.overall))
    return [info.name for info in index.categories]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("serve did not become healthy")


def timed(http: httpx.Client, path: str, params: dict, n: int) -> list[float]:
    for _ in range(20):  # warm-up
        http.get(path, params=params).raise_for_status()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = http.get(path, params=params)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--votes", type=int, default=30000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        client = redis.Redis.from_url(server.url)
        process = None
        try:
            categories = publish_views(client, args.votes)
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "arena", "serve", "--redis-url", server.url, "--no-worker", "--port", str(port),
                 "--data-dir", str(Path(tmp) / "data")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            second = categories[1] if len(categories) > 1 else "overall"
            # /healthz (one Redis PING) is the floor: what the machine's scheduling alone costs a request
            cases = [("/healthz", {}), ("/api/leaderboard", {}),
                     ("/api/leaderboard", {"category": second, "style_control": "true"}),
                     ("/api/leaderboard.csv", {"category": second}), ("/api/leaderboard/categories", {}),
                     ("/api/models/model-000/stats", {})]
            with httpx.Client(base_url=url, timeout=30) as http:
                for path, params in cases:
                    times = sorted(timed(http, path, params, args.requests))
                    p99 = times[int(0.99 * (len(times) - 1))]
                    query = "&".join(f"{k}={v}" for k, v in params.items())
                    print(f"GET {path}{'?' + query if query else ''}: {args.requests} requests, 200 models, "
                          f"{len(categories)} categories: p50 {statistics.median(times) * 1000:.1f} ms, "
                          f"p99 {p99 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
            client.close()
            server.stop()


if __name__ == "__main__":
    main()
