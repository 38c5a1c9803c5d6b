"""The live path, measured as a user meets it: start-up, vote -> leaderboard latency, concurrency.

Runs ``python -m arena serve`` as a subprocess on 127.0.0.1 with a fresh data directory
(embedded Redis, demo endpoints, in-process worker), and drives it over the JSON API.

    .venv/bin/python benchmarks/bench_spine.py [--votes 10] [--concurrent 20]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.ops.redis_server import free_port  # noqa: E402


def start(data_dir: Path, port: int, *flags: str) -> tuple[subprocess.Popen, float]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "arena", "serve", "--data-dir", str(data_dir),
                                "--port", str(port), *flags], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, time.perf_counter() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def battle_and_vote(client: httpx.Client, prompt: str, outcome: str = "model_a") -> None:
    battle = client.post("/api/battles", json={"prompt": prompt}).json()
    response = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": outcome},
                           headers={"X-Arena-Session": battle["session"]})
    response.raise_for_status()


def vote_to_leaderboard(url: str, votes: int) -> list[float]:
    """Seconds from a vote's 200 to /api/leaderboard counting it, one vote at a time."""
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for index in range(votes):
            before = client.get("/api/leaderboard").json()["total_votes"]
            battle_and_vote(client, f"question number {index}", ("model_a", "model_b", "tie")[index % 3])
            voted = time.perf_counter()
            while client.get("/api/leaderboard").json()["total_votes"] <= before:
                time.sleep(0.01)
            latencies.append(time.perf_counter() - voted)
    return latencies


def concurrency(url: str, battles: int) -> tuple[float, float]:
    def one(index: int) -> float:
        with httpx.Client(base_url=url, timeout=120) as client:
            began = time.perf_counter()
            client.post("/api/battles", json={"prompt": f"Write a poem, {index}"}).raise_for_status()
            return time.perf_counter() - began

    single = one(-1)
    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=battles) as pool:
        list(pool.map(one, range(battles)))
    return single, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        process, startup = start(Path(scratch) / "data", port)
        url = f"http://127.0.0.1:{port}"
        try:
            print(f"start-up to /healthz (fresh data dir, embedded Redis, demo models): {startup:.2f} s")
            latencies = vote_to_leaderboard(url, args.votes)
            print(f"vote -> /api/leaderboard (refit interval 2 s, {args.votes} votes): "
                  f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")
        finally:
            stop(process)

        port = free_port()
        process, _ = start(Path(scratch) / "slow", port, "--demo-first-token-delay", "1.0",
                           "--demo-token-delay", "0.005")
        try:
            single, together = concurrency(f"http://127.0.0.1:{port}", args.concurrent)
            print(f"{args.concurrent} concurrent battles (1 s to first token): {together:.2f} s total "
                  f"vs {single:.2f} s "
                  f"for one ({together / single:.2f}x; one after another would be {args.concurrent}x)")
        finally:
            stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
