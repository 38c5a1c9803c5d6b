"""Leaderboard worker figures: ingest throughput, refit time, start-up cost, XADD-to-snapshot latency.

Runs against a real embedded redis-server (append-only file, fsync always, as in production) in a
temporary directory. Prints one line per figure.

    .venv/bin/python benchmarks/bench_worker.py [--ingest 20000] [--sizes 10000 100000] [--latency-samples 10]
    .venv/bin/python benchmarks/bench_worker.py --only mixed-refit [--mixed 200000 1000]

``mixed-refit`` times the Plackett-Luce refit when a few K-wise votes sit among many pairwise
ones (every vote then goes into the joint fit); it needs no Redis.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.redis_server import EmbeddedRedis  # noqa: E402
from leaderboard.archive import VoteArchive, archive_path  # noqa: E402
from leaderboard.events import StyleFeatures, VoteEvent  # noqa: E402
from leaderboard.redis_keys import snapshot_channel, snapshot_key, vote_stream_key  # noqa: E402
from leaderboard.snapshot import Snapshot  # noqa: E402
from leaderboard.worker import VoteTally, VoteWorker, build_snapshot  # noqa: E402

STYLE = StyleFeatures(tokens=250, headers=1, list_items=4, bold=2)


def synthetic_votes(n_votes: int, n_models: int = 40, kwise_share: float = 0.0, seed: int = 0) -> list[VoteEvent]:
    """Votes drawn from a Bradley-Terry truth (theta ~ N(0, 1) nats), ties 10% of the time."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_models)
    names = [f"model-{k:03d}" for k in range(n_models)]
    votes = []
    now = time.time()
    for _ in range(n_votes):
        if rng.random() < kwise_share:
            picked = rng.choice(n_models, size=4, replace=False)
            order = sorted(picked, key=lambda k: -(theta[k] + rng.gumbel()))
            ranking = [[names[k]] for k in order]
            votes.append(VoteEvent(
                vote_id=uuid.uuid4().hex, battle_id=uuid.uuid4().hex, mode="kwise",
                models=[names[k] for k in picked], ranking=ranking, voter_id="bench", served_at=now,
                voted_at=now, selection_probability=0.01, style=[STYLE] * 4))
            continue
        i, j = rng.choice(n_models, size=2, replace=False)
        p_i = 1.0 / (1.0 + np.exp(theta[j] - theta[i]))
        u = rng.random()
        outcome = "tie" if u < 0.1 else ("model_a" if rng.random() < p_i else "model_b")
        votes.append(VoteEvent(
            vote_id=uuid.uuid4().hex, battle_id=uuid.uuid4().hex, mode="anonymous",
            models=[names[i], names[j]], outcome=outcome, voter_id="bench", served_at=now, voted_at=now,
            selection_probability=1.0 / (n_models * (n_models - 1) / 2), style=[STYLE, STYLE]))
    return votes


def xadd_all(client: redis.Redis, votes: list[VoteEvent], prefix: str) -> None:
    pipe = client.pipeline(transaction=False)
    for k, vote in enumerate(votes, start=1):
        pipe.xadd(vote_stream_key(prefix), {"event": vote.model_dump_json()})
        if k % 1000 == 0:
            pipe.execute()
    pipe.execute()


def bench_ingest(client: redis.Redis, work: Path, n_votes: int) -> None:
    votes = synthetic_votes(n_votes)
    for batch in (500, 50):
        prefix = f"ingest{batch}"
        xadd_all(client, votes, prefix)
        worker = VoteWorker(client, work / prefix, prefix=prefix, batch=batch, catch_up=False)
        worker._start()  # open the archive, create the group: not part of the steady state
        started = time.perf_counter()
        handled = 0
        while handled < n_votes:
            handled += worker.process_once(block_ms=0)
        elapsed = time.perf_counter() - started
        print(f"ingest: {n_votes} votes, batch {batch}: {elapsed:.2f}s = {n_votes / elapsed:,.0f} votes/s "
              "(validate, archive + fsync, count, XACK)")
        worker.close()


def bench_refit_and_startup(client: redis.Redis, work: Path, sizes: list[int]) -> None:
    for n_votes in sizes:
        votes = synthetic_votes(n_votes, seed=n_votes)
        tally = VoteTally.from_events(votes)
        timings = []
        theta = None
        for _ in range(3):
            started = time.perf_counter()
            snapshot = build_snapshot(tally, init_theta=theta)
            timings.append(time.perf_counter() - started)
            theta = dict(zip(snapshot.models, snapshot.theta))
        print(f"refit: {n_votes} pairwise votes, 40 models, {snapshot.method}: cold {timings[0] * 1000:.1f} ms, "
              f"warm-started {min(timings[1:]) * 1000:.1f} ms")

        mixed = VoteTally.from_events(synthetic_votes(n_votes, kwise_share=0.1, seed=n_votes + 1))
        started = time.perf_counter()
        snapshot = build_snapshot(mixed)
        print(f"refit: {n_votes} votes with 10% 4-wise, 40 models, {snapshot.method}: "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")

        data_dir = work / f"startup{n_votes}"
        with VoteArchive(archive_path(data_dir)) as archive:
            archive.extend(votes)
        size_mb = archive_path(data_dir).stat().st_size / 1e6
        prefix = f"startup{n_votes}"
        xadd_all(client, votes, prefix)
        started = time.perf_counter()
        tally = VoteTally()
        archive = VoteArchive(archive_path(data_dir), on_event=tally.add)
        rebuilt = time.perf_counter() - started
        archive.close()
        worker = VoteWorker(client, data_dir, prefix=prefix)
        started = time.perf_counter()
        worker._start()
        full_start = time.perf_counter() - started
        worker.close()
        print(f"start-up: {n_votes} archived votes ({size_mb:.0f} MB): counts rebuilt from the archive in "
              f"{rebuilt:.2f}s; with the catch-up scan of a {n_votes}-entry stream {full_start:.2f}s")


def bench_mixed_refit(n_pairwise: int, n_kwise: int, repeats: int = 3) -> None:
    pairwise = synthetic_votes(n_pairwise, seed=11)
    kwise = synthetic_votes(n_kwise, kwise_share=1.0, seed=12)
    tally = VoteTally.from_events(pairwise + kwise)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        snapshot = build_snapshot(tally)
        timings.append(time.perf_counter() - started)
    print(f"refit: {n_pairwise} pairwise + {n_kwise} 4-wise votes, 40 models, {snapshot.method}: "
          f"best of {repeats} {min(timings) * 1000:.0f} ms, median {statistics.median(timings) * 1000:.0f} ms")


def bench_latency(client: redis.Redis, work: Path, samples: int, refit_interval: float) -> None:
    prefix = f"latency{refit_interval}"
    warm = synthetic_votes(2000, seed=7)
    xadd_all(client, warm, prefix)
    worker = VoteWorker(client, work / prefix, prefix=prefix, refit_interval=refit_interval)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    pubsub = client.pubsub()
    pubsub.subscribe(snapshot_channel(prefix))
    expected = len(warm)
    latencies = []
    try:
        while worker.last_snapshot is None or worker.last_snapshot.total_votes < expected:
            time.sleep(0.01)
        for vote in synthetic_votes(samples, seed=8):
            time.sleep(refit_interval * np.random.default_rng(len(latencies)).random())  # arrive at a random phase
            while pubsub.get_message(timeout=0.0):
                pass
            started = time.perf_counter()
            client.xadd(vote_stream_key(prefix), {"event": vote.model_dump_json()})
            expected += 1
            while True:
                message = pubsub.get_message(timeout=5.0)
                if message and message["type"] == "message":
                    raw = client.get(snapshot_key(prefix))
                    if Snapshot.model_validate_json(raw).total_votes >= expected:
                        break
            latencies.append(time.perf_counter() - started)
    finally:
        stop.set()
        thread.join(timeout=10)
        pubsub.close()
    print(f"latency XADD -> snapshot (refit_interval {refit_interval}s, {samples} votes): "
          f"median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest", type=int, default=20000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--latency-samples", type=int, default=10)
    parser.add_argument("--mixed", type=int, nargs=2, default=[200000, 1000], metavar=("PAIRWISE", "KWISE"),
                        help="vote counts for mixed-refit (default 200000 1000)")
    parser.add_argument("--only", choices=["mixed-refit"], default=None,
                        help="run one figure only (default: all but mixed-refit)")
    args = parser.parse_args()
    if args.only == "mixed-refit":
        bench_mixed_refit(*args.mixed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = EmbeddedRedis(work / "redis").start()
        client = redis.Redis.from_url(server.url)
        try:
            bench_ingest(client, work, args.ingest)
            bench_refit_and_startup(client, work, args.sizes)
            for interval in (2.0, 0.5):
                bench_latency(client, work, args.latency_samples, interval)
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()
