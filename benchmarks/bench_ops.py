"""Sizing figures for operators: what web processes on one Redis carry, and what a battle costs Redis.

Starts one embedded Redis (append-only, fsync always, as ``serve`` runs it), the demo endpoints in
their own process, N web processes (``serve --no-worker``) and one worker, all on 127.0.0.1, then
drives them with closed-loop voters over the JSON API (each: new battle -> vote -> again) for a
fixed time, spread over the web processes. Prints battles+votes per second, latencies, the CPU
seconds each web process and the worker used per vote, and Redis memory per battle (battle hash +
vote stream entry) and per vote (stream entry) from MEMORY USAGE.

    .venv/bin/python benchmarks/bench_ops.py [--web 1] [--voters 16] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
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

from arena.models.demo_models import DEMO_MODELS  # noqa: E402
from arena.ops.redis_server import EmbeddedRedis, free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, process: subprocess.Popen) -> None:
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


async def voter(url: str, deadline: float, create_ms: list, vote_ms: list, errors: list) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            battle = await http.post("/api/battles", json={"prompt": "Name a prime number"})
            if battle.status_code != 200:
                errors.append(battle.status_code)
                continue
            created = time.perf_counter()
            body = battle.json()
            vote = await http.post(f"/api/battles/{body['battle_id']}/vote", json={"outcome": "model_a"},
                                   headers={"X-Arena-Session": body["session"]})
            if vote.status_code != 200:
                errors.append(vote.status_code)
                continue
            create_ms.append((created - began) * 1000)
            vote_ms.append((time.perf_counter() - created) * 1000)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web", type=int, default=1, help="web processes")
    parser.add_argument("--voters", type=int, default=16, help="concurrent closed-loop voters")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    server = EmbeddedRedis(work / "redis").start()
    demo_port = free_port()
    models = work / "models.yaml"
    models.write_text("models:\n" + "".join(
        f"  - name: {name}\n    provider: openai\n    base_url: http://127.0.0.1:{demo_port}/v1\n    model_id: {name}\n"
        for name in DEMO_MODELS))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(ARENA_BATTLES_PER_MINUTE="0", ARENA_VOTER_SECRET="bench-secret-0123456789abcdef")
    processes = [subprocess.Popen([sys.executable, "-m", "arena.models.demo_server", "--port", str(demo_port),
                                   "--token-delay", "0"], cwd=ROOT, stdout=subprocess.DEVNULL)]
    webs = []
    try:
        wait_http(f"http://127.0.0.1:{demo_port}/v1/models", processes[0])
        for index in range(args.web):
            port = free_port()
            web = subprocess.Popen([sys.executable, "-m", "arena", "serve", "--redis-url", server.url, "--no-worker",
                                    "--models", str(models), "--port", str(port),
                                    "--data-dir", str(work / f"web{index}")],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(web)
            webs.append((web, f"http://127.0.0.1:{port}"))
        worker = subprocess.Popen([sys.executable, "-m", "leaderboard", "worker", "--redis-url", server.url,
                                   "--data-dir", str(work / "worker")], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(worker)
        for web, url in webs:
            wait_http(f"{url}/healthz", web)
        client = redis.Redis.from_url(server.url)
        memory_before = client.info("memory")["used_memory"]
        cpu_before = {p.pid: cpu_seconds(p.pid) for p, _ in webs} | {worker.pid: cpu_seconds(worker.pid)}
        create_ms, vote_ms, errors = [], [], []

        async def run() -> None:
            deadline = time.perf_counter() + args.seconds
            await asyncio.gather(*(voter(webs[i % len(webs)][1], deadline, create_ms, vote_ms, errors)
                                   for i in range(args.voters)))

        began = time.perf_counter()
        asyncio.run(run())
        elapsed = time.perf_counter() - began
        votes = len(vote_ms)
        while client.xpending("arena:votes", "arena:leaderboard-workers")["pending"] or \
                client.xinfo_groups("arena:votes")[0]["last-delivered-id"] \
                != client.xinfo_stream("arena:votes")["last-generated-id"]:
            time.sleep(0.1)  # the worker has archived every vote
        web_cpu = sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p, _ in webs)
        worker_cpu = cpu_seconds(worker.pid) - cpu_before[worker.pid]
        memory_after = client.info("memory")["used_memory"]
        battle_keys = list(client.scan_iter(match="arena:battle:*", count=1000))
        sample = battle_keys[:200]
        battle_bytes = statistics.mean(client.memory_usage(key, samples=0) for key in sample)
        stream_bytes = client.memory_usage("arena:votes", samples=0) / max(1, client.xlen("arena:votes"))
        print(f"web processes {args.web}, voters {args.voters}, {elapsed:.1f} s; load average {os.getloadavg()[0]:.1f}")
        print(f"  {votes} battles created and voted = {votes / elapsed:.1f} battles+votes/s; errors {len(errors)}")
        print(f"  create (incl. both answers) p50 {percentile(create_ms, 50):.0f} ms, "
              f"p95 {percentile(create_ms, 95):.0f} ms; "
              f"vote p50 {percentile(vote_ms, 50):.0f} ms, p95 {percentile(vote_ms, 95):.0f} ms")
        print(f"  CPU per battle+vote: web {1000 * web_cpu / max(1, votes):.1f} ms (all web processes), "
              f"worker {1000 * worker_cpu / max(1, votes):.2f} ms")
        print(f"  Redis: {battle_bytes:.0f} bytes per battle hash (one turn), {stream_bytes:.0f} bytes per vote "
              f"in the stream; used_memory grew {(memory_after - memory_before) / max(1, votes):.0f} bytes "
              "per battle+vote")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()


if __name__ == "__main__":
    main()
