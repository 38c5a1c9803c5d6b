"""Leaderboard worker figures: ingest throughput, refit time, start-up cost, XADD-to-snapshot latency.

Runs against a real embedded redis-server (append-only file, fsync always, as in production) in a
temporary directory. Prints one line per figure.

    .venv/bin/python benchmarks/bench_worker.py [--ingest 20000] [--sizes 10000 100000] [--latency-samples 10]
    .venv/bin/python benchmarks/bench_worker.py --only mixed-refit [--mixed 200000 1000]

``mixed-refit`` times the Plackett-Luce refit when a few K-wise votes sit among many pairwise
ones (every vote then goes into the joint fit); it needs no Redis.

``views`` times one full publishing cycle of every leaderboard view (overall + 10 categories, each
with and without style control: 22 fits, their ViewStats, one Redis transaction) at each size:

    .venv/bin/python benchmarks/bench_worker.py --only views [--views-sizes 100000 300000 1000000]
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

from arena.ops.redis_server import EmbeddedRedis  # noqa: E402
from leaderboard.data.archive import VoteArchive, archive_path  # noqa: E402
from leaderboard.data.events import StyleFeatures, VoteEvent  # noqa: E402
from leaderboard.store.redis_keys import snapshot_channel, snapshot_key, vote_stream_key  # noqa: E402
from leaderboard.store.vote_signature import VoteSigner  # noqa: E402
from leaderboard.views.snapshot import Snapshot  # noqa: E402
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


# The worker refuses unsigned vote entries (as the web process writes them: signed with the vote key).
BENCH_VOTE_KEY = "bench-worker-vote-key"
SIGNER = VoteSigner(BENCH_VOTE_KEY.encode())


def xadd_all(client: redis.Redis, votes: list[VoteEvent], prefix: str) -> None:
    pipe = client.pipeline(transaction=False)
    for k, vote in enumerate(votes, start=1):
        pipe.xadd(vote_stream_key(prefix), SIGNER.fields(vote.model_dump_json()))
        if k % 1000 == 0:
            pipe.execute()
    pipe.execute()


def bench_ingest(client: redis.Redis, work: Path, n_votes: int) -> None:
    votes = synthetic_votes(n_votes)
    for batch in (500, 50):
        prefix = f"ingest{batch}"
        xadd_all(client, votes, prefix)
        worker = VoteWorker(client, work / prefix, prefix=prefix, batch=batch, catch_up=False,
                            vote_key=BENCH_VOTE_KEY)
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
        worker = VoteWorker(client, data_dir, prefix=prefix, vote_key=BENCH_VOTE_KEY)
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
    worker = VoteWorker(client, work / prefix, prefix=prefix, refit_interval=refit_interval,
                        vote_key=BENCH_VOTE_KEY)
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
            client.xadd(vote_stream_key(prefix), SIGNER.fields(vote.model_dump_json()))
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


VIEW_TAGS = (("code", 0.30), ("long_prompt", 0.15), ("hard_prompt", 0.20), ("math", 0.10), ("creative_writing", 0.10))
VIEW_LANGUAGES = (("en", 0.6), ("de", 0.12), ("fr", 0.1), ("zh", 0.1))  # the rest: no language detected


def view_votes(n_votes: int, n_models: int = 200, kwise_share: float = 0.01, seed: int = 0):
    """Votes for the views benchmark: every pair of ``n_models`` played, Bradley-Terry outcomes with a
    style effect, 10 categories (4 languages, coding, long prompt, hard prompts, multi-turn, math,
    creative writing) and ``kwise_share`` 4-wise votes. Built without validation (it is not timed)."""
    theta = np.random.default_rng(0).normal(size=n_models)  # one truth for every seed
    rng = np.random.default_rng(seed)
    names = [f"model-{k:03d}" for k in range(n_models)]
    styles = [StyleFeatures.model_construct(tokens=int(t), headers=int(h), list_items=int(li), bold=int(b))
              for t, h, li, b in zip(rng.poisson(400, 4096), rng.poisson(2, 4096), rng.poisson(3, 4096),
                                     rng.poisson(2, 4096))]
    tag_draws = rng.random((n_votes, len(VIEW_TAGS)))
    language_draw = rng.random(n_votes)
    cumulative = np.cumsum([share for _, share in VIEW_LANGUAGES])
    start = time.time() - 30 * 86400
    votes = []
    for k in range(n_votes):
        tags = [tag for (tag, share), u in zip(VIEW_TAGS, tag_draws[k]) if u < share]
        spot = int(np.searchsorted(cumulative, language_draw[k]))
        language = VIEW_LANGUAGES[spot][0] if spot < len(VIEW_LANGUAGES) else None
        common = dict(vote_id=uuid.uuid4().hex, battle_id="b", voter_id="bench", served_at=start + k * 2.5,
                      voted_at=start + k * 2.5, selection_probability=0.5, categories=tags,
                      turns=2 if (k % 10) == 0 else 1, language=language)
        if rng.random() < kwise_share:
            picked = rng.choice(n_models, size=4, replace=False)
            order = sorted(picked, key=lambda m: -(theta[m] + rng.gumbel()))
            votes.append(VoteEvent.model_construct(
                mode="kwise", models=[names[m] for m in picked], ranking=[[names[m]] for m in order], outcome=None,
                style=[styles[int(x)] for x in rng.integers(0, 4096, 4)], **common))
            continue
        i, j = rng.choice(n_models, size=2, replace=False)
        style_a, style_b = styles[int(rng.integers(4096))], styles[int(rng.integers(4096))]
        margin = theta[i] - theta[j] + 0.5 * (style_a.tokens - style_b.tokens) / (style_a.tokens + style_b.tokens + 1)
        u = rng.random()
        outcome = "tie" if u < 0.1 else ("model_a" if rng.random() < 1.0 / (1.0 + np.exp(-margin)) else "model_b")
        votes.append(VoteEvent.model_construct(mode="anonymous", models=[names[i], names[j]], outcome=outcome,
                                               ranking=None, style=[style_a, style_b], **common))
    return votes


def bench_views(sizes: list[int], repeats: int = 3, arriving: int = 2000) -> None:
    """One cold cycle, then ``repeats`` warm cycles each after ``arriving`` new votes (as in a busy
    arena between two refits; counting them is not timed)."""
    from leaderboard.live.view_fit import LiveVotes
    from leaderboard.worker.publish import ViewPublisher

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        client = redis.Redis.from_url(server.url)
        try:
            for n_votes in sizes:
                started = time.perf_counter()
                votes = view_votes(n_votes, seed=n_votes)
                made = time.perf_counter() - started
                started = time.perf_counter()
                live = LiveVotes.from_events(votes)
                counted = time.perf_counter() - started
                del votes
                publisher = ViewPublisher(client, f"views{n_votes}", min_category_votes=50, history_spacing=0.0)
                n_kwise = len(live.overall.rankings)
                timings, cpu = [], []
                for cycle in range(repeats + 1):
                    if cycle:
                        for vote in view_votes(arriving, seed=n_votes + cycle):
                            live.add(vote)
                    started, started_cpu = time.perf_counter(), time.process_time()
                    overall = build_snapshot(live.overall,
                                             init_theta=publisher.warm_starts.get("overall", {}).get("theta"))
                    publisher.warm_starts["overall"] = {"theta": dict(zip(overall.models, overall.theta))}
                    index = publisher.publish(live, overall)
                    timings.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - started_cpu)
                print(f"views: {n_votes} votes ({n_votes - n_kwise} pairwise + {n_kwise} 4-wise), 200 models, "
                      f"{len(index.categories)} categories x 2 (style control): first cycle (cold) {timings[0]:.2f}s "
                      f"({cpu[0]:.2f}s CPU); then, {arriving} new votes before each, "
                      f"{', '.join(f'{t:.2f}' for t in timings[1:])}s ({', '.join(f'{t:.2f}' for t in cpu[1:])}s CPU); "
                      f"counting the votes {counted:.1f}s (making them {made:.1f}s, not part of the worker)")
        finally:
            client.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest", type=int, default=20000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--latency-samples", type=int, default=10)
    parser.add_argument("--mixed", type=int, nargs=2, default=[200000, 1000], metavar=("PAIRWISE", "KWISE"),
                        help="vote counts for mixed-refit (default 200000 1000)")
    parser.add_argument("--views-sizes", type=int, nargs="+", default=[100000, 300000, 1000000])
    parser.add_argument("--only", choices=["mixed-refit", "views"], default=None,
                        help="run one figure only (default: all but mixed-refit)")
    args = parser.parse_args()
    if args.only == "mixed-refit":
        bench_mixed_refit(*args.mixed)
        return
    if args.only == "views":
        bench_views(args.views_sizes)
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
