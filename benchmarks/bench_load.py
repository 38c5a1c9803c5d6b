"""Load on one web process (127.0.0.1 only, bounded): sustained votes/s and p50/p99 vote latency at
50 and 200 concurrent voters, with and without the rate limits, on pre-created battles and with
demo answers (a battle, then its vote). Prints one table; the figures go in benchmarks/README.md.

    .venv/bin/python benchmarks/bench_load.py                     # the full table (~3 min)
    .venv/bin/python benchmarks/bench_load.py --clients 200 --duration 10 --no-demo
    .venv/bin/python benchmarks/bench_load.py --profile /tmp/web.svg  # py-spy on the web process

The web process runs as ``python -m arena serve --no-worker`` (the worker would share its CPU)
against an embedded Redis with the production fsync policy (``appendfsync always``). Voters trust
127.0.0.1 as their proxy and send a fresh ``X-Forwarded-For`` per vote, so with limits every vote
is checked against (and spends) its voter's, session's and pair's windows without being refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402

from arena.models.demo_models import DEMO_MODELS  # noqa: E402
from arena.ops.redis_server import EmbeddedRedis, free_port  # noqa: E402
from arena.sim.load_test import Connection, VoteRun, percentile, store_ready_battles, vote_clients  # noqa: E402

NO_LIMITS = ["--battles-per-minute", "0", "--battles-per-day", "0", "--votes-per-minute", "0", "--votes-per-day", "0",
             "--pair-votes-per-day", "0"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WebProcess:
    def __init__(self, redis_url: str, data_dir: Path, limits: bool, demo_token_delay: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "arena", "serve", "--no-worker", "--redis-url", redis_url,
                "--data-dir", str(data_dir), "--port", str(self.port), "--trusted-proxies", "127.0.0.1",
                "--demo-token-delay", str(demo_token_delay), "--max-concurrent-answers", "0"]
        self.log = data_dir.parent / f"serve-{self.port}.log"
        with self.log.open("w") as log:  # a file, not a pipe: nobody reads a pipe while the load runs
            self.process = subprocess.Popen(args + ([] if limits else NO_LIMITS), cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not answer /healthz within 120 s")
            time.sleep(0.2)

    def stop(self) -> None:
        errors = [line for line in self.log.read_text().splitlines() if "ERROR" in line or "WARNING" in line]
        if errors:
            print(f"  web process logged {len(errors)} warnings/errors, e.g. {errors[0][:300]}")
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def addresses(count: int, offset: int = 0) -> list[str]:
    """Distinct documentation-range-free test addresses (10.x.y.z), one per vote."""
    return [f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}" for n in range(offset, offset + count)]


async def votes_on_ready_battles(url: str, battles, clients: int, duration: float) -> VoteRun:
    # warm up on a few battles (first requests pay imports and connection set-up)
    await vote_clients(url, battles[:clients * 2], clients, rotate_addresses=addresses(clients * 2, 1 << 22))
    return await vote_clients(url, battles[clients * 2:], clients, duration=duration,
                              rotate_addresses=addresses(len(battles)))


async def battles_then_votes(url: str, clients: int, duration: float) -> tuple[int, float, list[float], dict]:
    """Closed-loop voters that each start a battle (demo answers), then vote on it."""
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(1 << 30))
    begun = time.perf_counter()

    async def voter() -> None:
        connection = await Connection.open(url)
        try:
            while time.perf_counter() < deadline:
                address = addresses(1, next(counter))[0]
                status, _, content = await connection.request(
                    "POST", "/api/battles", json.dumps({"prompt": "Name a prime number."}).encode(),
                    {"X-Forwarded-For": address})
                if status != 200:
                    statuses[status] = statuses.get(status, 0) + 1
                    continue
                battle = json.loads(content)
                start = time.perf_counter()
                status, _, _ = await connection.request(
                    "POST", f"/api/battles/{battle['battle_id']}/vote", b'{"outcome": "tie"}',
                    {"X-Forwarded-For": address, "X-Arena-Session": battle["session"]})
                if status == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            await connection.close()

    await asyncio.gather(*(voter() for _ in range(clients)))
    return len(latencies), time.perf_counter() - begun, latencies, statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="50,200", help="concurrent voters, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sustained voting per row")
    parser.add_argument("--battles", type=int, default=30000, help="pre-created battles per row (the bound)")
    parser.add_argument("--demo-duration", type=float, default=8.0)
    parser.add_argument("--no-demo", action="store_true", help="skip the battle+vote rows")
    parser.add_argument("--limits", default="off,on", help="off, on or both")
    parser.add_argument("--profile", metavar="OUT.svg", help="py-spy record the web process during the first row")
    options = parser.parse_args()
    clients_list = [int(c) for c in options.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    models = list(DEMO_MODELS)
    rows = []
    store = EmbeddedRedis(work / "redis").start()  # appendfsync always, as serve runs it
    client = redis.Redis.from_url(store.url)
    try:
        for limits in options.limits.split(","):
            web = WebProcess(store.url, work / "data", limits == "on", demo_token_delay=0.001)
            try:
                for clients in clients_list:
                    client.flushdb()
                    battles = store_ready_battles(client, models, options.battles)
                    profiler = None
                    if options.profile and not rows:
                        profiler = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record",
                                                     "-o", options.profile, "-p", str(web.process.pid),
                                                     "-d", str(int(options.duration) + 2), "--gil",
                                                     *(["-f", "raw"] if options.profile.endswith(".txt") else [])],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    cpu_before, wall_before = cpu_seconds(web.process.pid), time.perf_counter()
                    redis_before = cpu_seconds(store._process.pid)
                    run = asyncio.run(votes_on_ready_battles(web.url, battles, clients, options.duration))
                    wall = time.perf_counter() - wall_before
                    web_cpu = (cpu_seconds(web.process.pid) - cpu_before) / wall
                    redis_cpu = (cpu_seconds(store._process.pid) - redis_before) / wall
                    if profiler:
                        profiler.wait()
                    rows.append(("pre-created battles", limits, clients, run.accepted, run.rate, run.percentile(50),
                                 run.percentile(99), web_cpu, redis_cpu, run.statuses, run.errors))
                    print_row(rows[-1])
                if not options.no_demo:
                    for clients in clients_list[:1]:
                        client.flushdb()
                        cpu_before, wall_before = cpu_seconds(web.process.pid), time.perf_counter()
                        count, seconds, latencies, statuses = asyncio.run(
                            battles_then_votes(web.url, clients, options.demo_duration))
                        web_cpu = (cpu_seconds(web.process.pid) - cpu_before) / (time.perf_counter() - wall_before)
                        rows.append(("battle (demo answers) + vote", limits, clients, count, count / seconds,
                                     percentile(latencies, 50), percentile(latencies, 99), web_cpu, float("nan"),
                                     statuses, 0))
                        print_row(rows[-1])
            finally:
                web.stop()
    finally:
        client.close()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| workload | limits | clients | votes | votes/s | p50 ms | p99 ms | web CPU | votes per web CPU-second "
          "| Redis CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        workload, limits, clients, count, rate, p50, p99, web_cpu, redis_cpu, _, _ = row
        print(f"| {workload} | {limits} | {clients} | {count} | {rate:.0f} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | "
              f"{web_cpu:.0%} | {rate / web_cpu:.0f} | {'' if redis_cpu != redis_cpu else f'{redis_cpu:.0%}'} |")
    print(f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          "web CPU 100% = one core)")
    return 0


def print_row(row) -> None:
    workload, limits, clients, count, rate, p50, p99, web_cpu, redis_cpu, statuses, errors = row
    print(f"{workload:30} limits {limits:3} clients {clients:4}: {count:6} votes, {rate:7.0f}/s, "
          f"p50 {p50 * 1000:6.1f} ms, p99 {p99 * 1000:6.1f} ms, web CPU {web_cpu:.0%}, other answers {statuses}, "
          f"errors {errors}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
