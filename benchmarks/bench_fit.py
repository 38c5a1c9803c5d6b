"""Rating-engine benchmark: 1,000,000 seeded votes among 200 models (Zipf-like popularity, ~25% ties).

    .venv/bin/python benchmarks/bench_fit.py              # the headline figures (about a minute)
    .venv/bin/python benchmarks/bench_fit.py --scaling    # + N = 10k..10M and M = 20..1000 (several minutes)
    .venv/bin/python benchmarks/bench_fit.py --dense      # LMArena-shaped: all 19,900 pairs played;
                                                          # `fit --bootstrap 1000` end to end
    .venv/bin/python benchmarks/bench_fit.py --dense --compare main~3   # same, old tree side by side

Each figure is printed on its own line: wall seconds (and CPU seconds of this process, which is the
fairer number when other work shares the machine's two cores).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_votes import dense_votes, synthetic_votes  # noqa: E402

from leaderboard.data.counts import PairCounts  # noqa: E402
from leaderboard.data.loading import load_votes  # noqa: E402
from leaderboard.fit import fit_leaderboard  # noqa: E402
from leaderboard.models.blas import blas_threads_for  # noqa: E402
from leaderboard.models.bradley_terry import bt_gradient, half_tie_scores  # noqa: E402
from leaderboard.models.sandwich import sandwich_cov  # noqa: E402
from leaderboard.models.scale import ELO_PER_NAT  # noqa: E402
from leaderboard.resampling.bootstrap import bootstrap_thetas  # noqa: E402


class Timer:
    def __init__(self, label: str, quiet: bool = False):
        self.label, self.quiet = label, quiet

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        if not self.quiet:
            print(f"{self.label:<46} {self.wall:8.3f} s wall  {self.cpu:8.3f} s cpu", flush=True)


def headline(n_votes: int, n_models: int, n_bootstrap: int, seed: int) -> None:
    frame, _ = synthetic_votes(n_votes, n_models, seed=seed, with_style=True)
    print(f"# {n_votes:,} votes, {n_models} models, "
          f"{np.mean(frame['winner'].str.startswith('tie')):.1%} ties, seed {seed}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "votes.parquet"
        frame[["model_a", "model_b", "winner"]].to_parquet(path)
        with Timer("load parquet + aggregate") as load_aggregate:
            votes = load_votes(path)
            counts = PairCounts.from_frame(votes)
    with Timer("aggregate only (frame in memory)"):
        counts = PairCounts.from_frame(frame)
    arrays = counts.arrays()
    print(f"# {arrays.n_pairs} pairs with votes; fewest votes per model {counts.model_vote_counts().min()}")
    with Timer("one Bradley-Terry fit, first call (cold)"):
        fit_leaderboard(counts, ci="none")
    with Timer("one Bradley-Terry fit (exact Newton)") as one_fit:
        fit = fit_leaderboard(counts, ci="none")
    wins, totals = half_tie_scores(arrays)
    gradient = bt_gradient(fit.theta, arrays.pair_i, arrays.pair_j, wins, totals)
    print(f"# max |gradient| at the solution {np.max(np.abs(gradient)):.1e}; "
          f"Newton steps {fit.settings['newton_iterations']}")
    with Timer("sandwich intervals (given the fit)") as sandwich, blas_threads_for(n_models):
        sandwich_cov(fit.theta, arrays)
    with Timer(f"{n_bootstrap}-replicate bootstrap (batched)") as bootstrap:
        replicates = bootstrap_thetas(fit.theta, arrays, n_bootstrap=n_bootstrap, seed=seed)
    total_wall = load_aggregate.wall + one_fit.wall + sandwich.wall + bootstrap.wall
    total_cpu = load_aggregate.cpu + one_fit.cpu + sandwich.cpu + bootstrap.cpu
    print(f"{'TOTAL load+aggregate+fit+sandwich+bootstrap':<46} {total_wall:8.3f} s wall  {total_cpu:8.3f} s cpu")

    with Timer("fit_leaderboard(ci='sandwich') end to end"):
        board = fit_leaderboard(counts, ci="sandwich")
    boot_low, boot_high = np.percentile(replicates, [2.5, 97.5], axis=0)
    sand_half = (board.upper - board.rating) / ELO_PER_NAT
    gap = np.maximum(np.abs(boot_low - (board.theta - sand_half)), np.abs(boot_high - (board.theta + sand_half)))
    print(f"# sandwich vs bootstrap 95% bounds: largest gap {ELO_PER_NAT * gap.max():.2f} rating points "
          f"(median {ELO_PER_NAT * np.median(gap):.2f}); interval half-widths {ELO_PER_NAT * sand_half.min():.1f}"
          f"..{ELO_PER_NAT * sand_half.max():.1f}")

    try:
        from leaderboard.fit import fit_style_control

        with Timer("style-controlled fit (sandwich)"):
            fit_style_control(frame)
    except ImportError:
        print("style-controlled fit: leaderboard.models.style_control not available")

    try:
        from leaderboard.fit import fit_plackett_luce

        rankings = four_way_rankings(100_000, n_models, seed)
        with Timer("Plackett-Luce fit, 100,000 4-way rankings"):
            fit_plackett_luce(rankings)
    except ImportError:
        print("Plackett-Luce fit: leaderboard.models.plackett_luce not available")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"{'peak memory (max RSS)':<46} {peak:8.0f} MB")


def four_way_rankings(n_rankings: int, n_models: int, seed: int) -> list[list[list[str]]]:
    """Seeded K=4 rankings under Plackett-Luce (Gumbel trick), no ties."""
    rng = np.random.default_rng(seed + 1)
    theta = rng.normal(0, 0.6, n_models)
    popularity = 1.0 / np.arange(1, n_models + 1) ** 1.2
    popularity /= popularity.sum()
    names = [f"model-{k:04d}" for k in range(n_models)]
    rankings = []
    chosen = [rng.choice(n_models, size=4, replace=False, p=popularity) for _ in range(n_rankings)]
    noise = rng.gumbel(size=(n_rankings, 4))
    for items, gumbel in zip(chosen, noise):
        order = items[np.argsort(-(theta[items] + gumbel))]
        rankings.append([[names[k]] for k in order])
    return rankings


def scaling(n_bootstrap: int, seed: int) -> None:
    print(f"\n# scaling: seconds wall (aggregate | fit | sandwich | bootstrap x{n_bootstrap})")
    print(f"{'N':>10} {'M':>5} {'pairs':>7} {'aggregate':>10} {'fit':>8} {'sandwich':>9} {'bootstrap':>10}")
    grid = [(10_000, 200), (100_000, 200), (1_000_000, 200), (10_000_000, 200),
            (1_000_000, 20), (1_000_000, 1000)]
    for n_votes, n_models in grid:
        frame, _ = synthetic_votes(n_votes, n_models, seed=seed, zipf_exponent=1.9 if n_models <= 200 else 1.3)
        with Timer("", quiet=True) as aggregate:
            counts = PairCounts.from_frame(frame)
        del frame
        arrays = counts.arrays()
        alpha = 0.0
        try:
            with Timer("", quiet=True) as fit_time:
                fit = fit_leaderboard(counts, ci="none")
        except ValueError as error:  # small N among many models: MLE may not exist; use the worker's prior
            alpha = 1e-3
            print(f"# N={n_votes} M={n_models}: {type(error).__name__}; using alpha={alpha}")
            with Timer("", quiet=True) as fit_time:
                fit = fit_leaderboard(counts, ci="none", alpha=alpha)
        with Timer("", quiet=True) as sandwich, blas_threads_for(n_models):
            sandwich_cov(fit.theta, arrays, alpha=alpha)
        with Timer("", quiet=True) as bootstrap:
            bootstrap_thetas(fit.theta, arrays, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha)
        print(f"{n_votes:>10,} {n_models:>5} {arrays.n_pairs:>7} {aggregate.wall:>10.3f} {fit_time.wall:>8.3f} "
              f"{sandwich.wall:>9.3f} {bootstrap.wall:>10.3f}", flush=True)


REPO = Path(__file__).resolve().parents[1]


def dense(n_votes: int, n_models: int, n_bootstrap: int, seed: int, compare: str | None, rounds: int) -> None:
    """The dense case: every pair played, skewed pair frequencies (benchmarks/synthetic_votes.dense_votes).

    Times `python -m leaderboard fit FILE --bootstrap N` end to end (a fresh process: imports,
    Parquet, aggregation, fit, bootstrap, output), then the bootstrap alone on 1 thread and on the
    default number of threads. With --compare, the same command runs from a `git archive` of that
    tree, alternating with this one, so both see the same machine load."""
    frame, _ = dense_votes(n_votes, n_models, seed=seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "dense.parquet"
        frame.to_parquet(path)
        counts = PairCounts.from_frame(frame)
        del frame
        arrays = counts.arrays()
        per_pair = counts.arrays().count.sum(axis=1)
        print(f"# dense: {n_votes:,} votes, {n_models} models, {arrays.n_pairs:,} pairs played "
              f"(votes per pair: min {per_pair.min()}, median {int(np.median(per_pair))}, "
              f"max {per_pair.max()}), seed {seed}")
        fit = fit_leaderboard(counts, ci="none")
        for threads in (1, None):
            label = f"{n_bootstrap}-replicate bootstrap, " + ("1 thread" if threads == 1 else "default threads")
            with Timer(label):
                bootstrap_thetas(fit.theta, arrays, n_bootstrap=n_bootstrap, seed=seed, threads=threads)
        trees = {"this tree": REPO}
        if compare:
            old = Path(scratch) / "compare"
            old.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", compare], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            trees = {compare: old, "this tree": REPO}
        command = [sys.executable, "-m", "leaderboard", "fit", str(path), "--bootstrap", str(n_bootstrap),
                   "--seed", str(seed), "--quiet", "--out", str(Path(scratch) / "out.json")]
        walls: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, tree in trees.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run(command, cwd=tree, check=True, env={**os.environ, "PYTHONPATH": str(tree)})
                wall = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                walls[name].append(wall)
                print(f"{'fit --bootstrap ' + str(n_bootstrap) + ' end to end (' + name + ')':<46} {wall:8.3f} s wall  "
                      f"{cpu:8.3f} s cpu", flush=True)
        best = {name: min(values) for name, values in walls.items()}
        print(f"# best of {rounds}: " + ", ".join(f"{name} {value:.2f} s" for name, value in best.items()))
        if compare:
            print(f"# ratio {compare} / this tree (best of {rounds}): {best[compare] / best['this tree']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scaling", action="store_true", help="also run the N x M scaling table (slow)")
    parser.add_argument("--dense", action="store_true",
                        help="only the dense case: every pair played, `fit --bootstrap` end to end")
    parser.add_argument("--compare", default=None, metavar="GIT_TREE",
                        help="with --dense: also time a git tree (commit, branch) of this repository, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="with --dense: end-to-end runs per tree (default 3)")
    args = parser.parse_args()
    if args.dense:
        dense(args.votes, args.models, args.bootstrap, args.seed, args.compare, args.rounds)
        return
    if args.compare:
        parser.error("--compare needs --dense")
    headline(args.votes, args.models, args.bootstrap, args.seed)
    if args.scaling:
        scaling(args.bootstrap, args.seed)


if __name__ == "__main__":
    main()
