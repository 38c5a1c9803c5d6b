"""Vote download benchmark: the work of ``/api/votes`` per vote, without HTTP and Redis.

    .venv/bin/python benchmarks/bench_export.py              # 200,000 votes (10% 4-wise), every format
    .venv/bin/python benchmarks/bench_export.py --votes 1000000

For each format: stream entries (the JSON the vote stream holds) are parsed as VoteEvents, turned
into export rows and written a page of 2,000 at a time, as the endpoint does. Prints wall seconds,
votes per second, the output size and the peak resident memory growth (streaming: it should not
grow with the number of votes).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leaderboard.data.events import StyleFeatures, VoteEvent  # noqa: E402
from leaderboard.data.export import FORMATS, ExportWriter, Pseudonyms, export_row  # noqa: E402
from leaderboard.store.stream import PAGE_SIZE, parse_entry  # noqa: E402


def stream_entries(n_votes: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    models = [f"model-{k:03d}" for k in range(50)]
    entries = []
    for n in range(n_votes):
        kwise = n % 10 == 0
        chosen = [models[k] for k in rng.choice(len(models), 4 if kwise else 2, replace=False)]
        style = [StyleFeatures(tokens=int(rng.integers(10, 900)), headers=1, list_items=3, bold=2) for _ in chosen]
        common = dict(vote_id=f"{n:032x}", battle_id=f"{n:032x}", models=chosen, voter_id=f"v_{n % 5000:020x}",
                      served_at=1.7e9 + n, voted_at=1.7e9 + n + 5, selection_probability=0.01, style=style,
                      categories=["code"] if n % 3 == 0 else [])
        if kwise:
            event = VoteEvent(mode="kwise", ranking=[[name] for name in chosen], **common)
        else:
            event = VoteEvent(mode="anonymous", outcome="model_a" if n % 2 else "tie", **common)
        entries.append({b"event": event.model_dump_json().encode()})
    return entries


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=200_000)
    args = parser.parse_args()
    entries = stream_entries(args.votes)
    print(f"# {args.votes:,} votes (10% 4-wise), pages of {PAGE_SIZE:,}; peak RSS before: {peak_rss_mb():.0f} MB")
    pseudonyms = Pseudonyms(b"benchmark-release-key-0123456789")
    for fmt in FORMATS:
        before = peak_rss_mb()
        started = time.perf_counter()
        writer = ExportWriter(fmt)
        size = 0
        for start in range(0, len(entries), PAGE_SIZE):
            rows = [export_row(vote, pseudonyms) for vote, _ in
                    (parse_entry(fields) for fields in entries[start:start + PAGE_SIZE])]
            size += len(writer.write(rows))
        size += len(writer.finish())
        seconds = time.perf_counter() - started
        print(f"{fmt:<8} {seconds:7.2f} s  {args.votes / seconds:10,.0f} votes/s  {size / 1e6:8.1f} MB  "
              f"peak RSS +{peak_rss_mb() - before:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
