"""Endpoint streaming figures: many concurrent streams through EndpointPool to the demo server.

The demo server runs in a child process (as a real endpoint would), so the figures show the
client side's cost: wall time against the ideal (one answer's length), time to first delta,
and the client process's CPU time per delta. Prints one line per provider and concurrency.

    .venv/bin/python benchmarks/bench_endpoints.py [--streams 1 20 100 200] [--token-delay 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.models.config import ModelSpec  # noqa: E402
from arena.models.endpoints import EndpointPool  # noqa: E402
from arena.ops.redis_server import free_port  # noqa: E402


def start_demo_server(token_delay: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "arena.models.demo_server", "--port", str(port), "--token-delay", str(token_delay)],
        cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/models")
            return process, url
        except httpx.ConnectError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("demo server did not start")
            time.sleep(0.1)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a child process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(pool: EndpointPool, model: str, streams: int) -> tuple[float, list[float], int, float]:
    first_delta_after: list[float] = []
    deltas = 0
    started = time.perf_counter()
    cpu_started = time.process_time()

    async def one(index: int) -> None:
        nonlocal deltas
        begin = time.perf_counter()
        seen_first = False
        async for _ in pool.stream(model, [{"role": "user", "content": f"Question {index} about gardening tools"}]):
            deltas += 1
            if not seen_first:
                first_delta_after.append(time.perf_counter() - begin)
                seen_first = True

    await asyncio.gather(*(one(index) for index in range(streams)))
    return time.perf_counter() - started, first_delta_after, deltas, time.process_time() - cpu_started


async def main_async(args: argparse.Namespace, url: str, server_pid: int) -> None:
    specs = [
        ModelSpec(name=f"verbose-{provider}", provider=provider, base_url=url, model_id="demo-verbose", max_retries=0)
        for provider in ("openai", "huggingface")
    ]
    pool = EndpointPool(specs)
    try:
        for spec in specs:
            single, _, single_deltas, _ = await run(pool, spec.name, 1)  # also warms the connection pool
            for streams in args.streams:
                server_cpu_before = process_cpu_seconds(server_pid)
                wall, first, deltas, cpu = await run(pool, spec.name, streams)
                server_cpu = process_cpu_seconds(server_pid) - server_cpu_before
                print(
                    f"{spec.provider:12s} streams={streams:4d}  wall={wall:6.2f}s  (one answer alone: {single:5.2f}s, "
                    f"{single_deltas} deltas)  first delta p50={statistics.median(first) * 1000:7.1f}ms "
                    f"max={max(first) * 1000:7.1f}ms  client CPU/delta={cpu / deltas * 1e6:6.1f}us  "
                    f"server CPU/delta={server_cpu / deltas * 1e6:6.1f}us"
                )
    finally:
        await pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 20, 100, 200])
    parser.add_argument("--token-delay", type=float, default=0.02)
    args = parser.parse_args()
    process, url = start_demo_server(args.token_delay)
    try:
        asyncio.run(main_async(args, url, process.pid))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
