"""Speed of the extra rating models: online Elo, Plackett-Luce (K-wise) and style control.

    .venv/bin/python benchmarks/bench_extras.py            # full sizes (about a minute)
    .venv/bin/python benchmarks/bench_extras.py --quick    # a tenth of the sizes

Prints wall-clock seconds (best of --repeat runs) and a known-truth check for each fit, on
synthetic data with known strengths. Nothing is asserted: tests check correctness, this prints
figures.
"""

from __future__ import annotations

import os

# On a small shared machine OpenBLAS's worker threads spin while waiting for each other, and a
# 200 x 200 solve can take 100x longer under load; the fits here do only small dense algebra.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leaderboard.data.rankings import Unranked  # noqa: E402
from leaderboard.fit import fit_plackett_luce, fit_style_control  # noqa: E402
from leaderboard.models.elo import online_elo  # noqa: E402
from leaderboard.models.plackett_luce import plackett_luce, plackett_luce_covariance  # noqa: E402
from leaderboard.models.style_control import style_covariates  # noqa: E402


def best_time(function, repeat: int):
    timings, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - start)
    return min(timings), result


def model_names(n_models: int) -> np.ndarray:
    return np.array([f"model-{i:03d}" for i in range(n_models)])


def bench_elo(rng, n_votes: int, n_models: int, repeat: int) -> None:
    names = model_names(n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n_votes, p=[0.4, 0.4, 0.15, 0.05])
    seconds, ratings = best_time(lambda: online_elo(names[a], names[b], winner), repeat)
    print(f"online_elo            {n_votes:>9,} votes, {n_models} models: {seconds:6.2f} s "
          f"({len(ratings)} ratings)")


def simulate_rankings(rng, strengths, n_rankings: int, k: int) -> np.ndarray:
    items = np.argsort(rng.random((n_rankings, len(strengths))), axis=1)[:, :k]
    utility = strengths[items] + rng.gumbel(size=items.shape)
    return np.take_along_axis(items, np.argsort(-utility, axis=1), axis=1)


def bench_plackett_luce(rng, n_rankings: int, n_models: int, repeat: int) -> None:
    strengths = rng.normal(0.0, 1.0, n_models)
    ranked = simulate_rankings(rng, strengths, n_rankings, 4)
    label = f"{n_rankings:>9,} 4-way rankings, {n_models} models"

    seconds, theta = best_time(lambda: plackett_luce(n_models, ranked), repeat)
    print(f"plackett_luce (array) {label}: {seconds:6.2f} s  corr(theta, truth) = "
          f"{np.corrcoef(theta, strengths)[0, 1]:.4f}")
    as_groups = [[[int(i)] for i in row] for row in ranked]
    seconds, _ = best_time(lambda: plackett_luce(n_models, as_groups), repeat)
    print(f"plackett_luce (lists) {label}: {seconds:6.2f} s")
    seconds, covariance = best_time(lambda: plackett_luce_covariance(n_models, ranked, theta), repeat)
    coverage = np.mean(np.abs(theta - (strengths - strengths.mean())) <= 1.96 * np.sqrt(np.diag(covariance)))
    print(f"  sandwich covariance {label}: {seconds:6.2f} s  95% interval coverage of truth = {coverage:.3f}")

    # one ranking in five ties its middle two
    with_ties = [[[int(r[0])], [int(r[1]), int(r[2])], [int(r[3])]] if n % 5 == 0 else [[int(i)] for i in r]
                 for n, r in enumerate(ranked)]
    seconds, _ = best_time(lambda: plackett_luce(n_models, with_ties), repeat)
    print(f"plackett_luce (20% ties) {label}: {seconds:6.2f} s")

    # "best only": half the voters pick the winner and leave the other three unranked (a partial ranking)
    best_only = [[[int(r[0])], Unranked([int(i) for i in r[1:]])] if n % 2 == 0 else [[int(i)] for i in r]
                 for n, r in enumerate(ranked)]
    seconds, partial_theta = best_time(lambda: plackett_luce(n_models, best_only), repeat)
    print(f"plackett_luce (50% best only) {label}: {seconds:6.2f} s  corr(theta, truth) = "
          f"{np.corrcoef(partial_theta, strengths)[0, 1]:.4f}")

    names = model_names(n_models)
    by_name = [[[str(names[i])] for i in row] for row in ranked]
    seconds, _ = best_time(lambda: fit_plackett_luce(by_name), repeat)
    print(f"fit_plackett_luce (names, sandwich) {label}: {seconds:6.2f} s")


def bench_style_control(rng, n_votes: int, n_models: int, repeat: int) -> None:
    names = model_names(n_models)
    strengths = rng.normal(0.0, 1.0, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b]})
    for feature, scale in (("tokens", 400.0), ("headers", 1.0), ("lists", 2.0), ("bold", 1.5)):
        frame[f"{feature}_a"] = np.round(scale * rng.lognormal(0.0, 0.6, n_votes))
        frame[f"{feature}_b"] = np.round(scale * rng.lognormal(0.0, 0.6, n_votes))
    true_tokens_effect = 0.3
    margin = strengths[a] - strengths[b] + true_tokens_effect * style_covariates(frame)[:, 0]
    frame["winner"] = np.where(rng.random(n_votes) < 1.0 / (1.0 + np.exp(-margin)), "model_a", "model_b")
    seconds, fit = best_time(lambda: fit_style_control(frame), repeat)
    print(f"fit_style_control     {n_votes:>9,} votes, {n_models} models: {seconds:6.2f} s "
          f"({fit.settings['newton_iterations']} Newton steps, max |gradient| {fit.settings['max_abs_gradient']:.1e}); "
          f"beta_tokens = {fit.style_coefficients['tokens']:.4f} +- {1.96 * fit.style_coefficient_se['tokens']:.4f} "
          f"(truth {true_tokens_effect})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rng = np.random.default_rng(args.seed)
    print(f"numpy {np.__version__}, {os.cpu_count()} cpus, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    bench_elo(rng, 1_000_000 // scale, 200, args.repeat)
    bench_plackett_luce(rng, 100_000 // scale, 200, args.repeat)
    bench_style_control(rng, 1_000_000 // scale, 200, args.repeat)


if __name__ == "__main__":
    main()
