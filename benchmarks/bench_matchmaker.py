"""Matchmaker benchmark: choice latency at 200 models, the online update, and the simulator ratios.

    .venv/bin/python benchmarks/bench_matchmaker.py latency            # < 5 ms per choice?
    .venv/bin/python benchmarks/bench_matchmaker.py online             # our update vs openskill (if installed)
    .venv/bin/python benchmarks/bench_matchmaker.py simulate --jobs 2  # the defaults; ~1 h on 2 busy cores, resumable
    .venv/bin/python benchmarks/bench_matchmaker.py ratios benchmarks/results/sim_defaults.json
    .venv/bin/python benchmarks/bench_matchmaker.py oracle             # best pair designs knowing the truth

``simulate`` runs the simulator at the issue's defaults (50 models, spread 175, 5% noise,
100,000-vote budget, K = 2 and 4, 10 seeds, every strategy) and prints the ratios the issue
sets as targets; ``ratios`` prints them from a saved results file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.matchmaker import STRATEGIES, build_matchmaker  # noqa: E402
from arena.matchmaker.state import online_ranking_update  # noqa: E402
from leaderboard.models.scale import nats_to_elo  # noqa: E402
from leaderboard.store.redis_keys import snapshot_channel, snapshot_key  # noqa: E402
from leaderboard.views.snapshot import Snapshot, SnapshotRow  # noqa: E402

TARGETS = {
    "active_tau90_vs_uniform": 0.5,
    "topk_top5_vs_uniform": 0.4,
    "place_new_vs_uniform": 0.2,
    "kwise_tau90_vs_uniform_elo": 1 / 16,
}


def synthetic_snapshot(n_models: int, seed: int = 0) -> Snapshot:
    """A mature leaderboard: strengths sd 1 nat, a covariance with realistic correlations."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, n_models)
    mixing = rng.normal(0.0, 0.01, (n_models, n_models))
    covariance = mixing @ mixing.T + np.diag(rng.uniform(0.002, 0.02, n_models))
    models = [f"model-{i:03d}" for i in range(n_models)]
    sd = np.sqrt(np.diag(covariance))
    order = np.argsort(-theta)
    rows = [SnapshotRow(model=models[i], rating=float(nats_to_elo(theta[i])),
                        lower=float(nats_to_elo(theta[i] - 1.96 * sd[i])),
                        upper=float(nats_to_elo(theta[i] + 1.96 * sd[i])), rank=r + 1, rank_lower=r + 1,
                        votes=int(rng.integers(500, 5000)))
            for r, i in enumerate(order)]
    return Snapshot(generated_at=time.time(), total_votes=100_000, method="bradley-terry+sandwich", rows=rows,
                    models=models, theta=theta.tolist(), covariance=covariance.tolist())


def bench_latency(n_models: int = 200, choices: int = 200) -> None:
    import redis

    from arena.ops.redis_server import EmbeddedRedis

    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedRedis(Path(data_dir)).start()
        try:
            client = redis.Redis.from_url(server.url)
            snapshot = synthetic_snapshot(n_models)
            client.set(snapshot_key("bench"), snapshot.model_dump_json())
            client.publish(snapshot_channel("bench"), "0")
            names = snapshot.models
            print(f"choose() with a real Redis, {n_models} models, one vote recorded between choices "
                  f"(so the belief always moved):")
            print(f"{'strategy':>13} {'k':>2} {'median ms':>10} {'p95 ms':>8} {'record_vote ms':>15}")
            rng = np.random.default_rng(0)
            for strategy in STRATEGIES:
                for k in (2, 4):
                    matchmaker = build_matchmaker(strategy, client, prefix="bench")
                    matchmaker.choose(names, k, rng)  # warm: snapshot read, full weights
                    choose_ms, record_ms = [], []
                    for _ in range(choices):
                        started = time.perf_counter()
                        selection = matchmaker.choose(names, k, rng)
                        choose_ms.append(1000 * (time.perf_counter() - started))
                        started = time.perf_counter()
                        matchmaker.record_vote(selection.models, [[m] for m in selection.models])
                        record_ms.append(1000 * (time.perf_counter() - started))
                    print(f"{strategy:>13} {k:>2} {np.median(choose_ms):>10.2f} {np.percentile(choose_ms, 95):>8.2f} "
                          f"{np.median(record_ms):>15.2f}")
            client.close()
        finally:
            server.stop()


def bench_online(n_models: int = 50, n_votes: int = 5000, seed: int = 0) -> None:
    """Accuracy (Kendall tau of the online means with the truth) and speed of the online update."""
    from scipy.stats import kendalltau

    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, 1.0, n_models)
    votes = []
    for _ in range(n_votes):
        i, j = rng.choice(n_models, 2, replace=False)
        first_wins = (rng.random() < 1.0 / (1.0 + np.exp(truth[j] - truth[i]))) != (rng.random() < 0.05)
        votes.append((i, j) if first_wins else (j, i))
    mean, variance = np.zeros(n_models), np.ones(n_models)
    started = time.perf_counter()
    for winner, loser in votes:
        online_ranking_update(mean, variance, [[winner], [loser]])
    per_vote = 1e6 * (time.perf_counter() - started) / n_votes
    z = ((mean - mean.mean()) - (truth - truth.mean())) / np.sqrt(variance)
    print(f"{n_votes} uniform votes, {n_models} models, 5% flipped:")
    print(f"  ours (Kalman step, also run as Lua in Redis): tau {kendalltau(mean, truth).statistic:.3f}, "
          f"{per_vote:.1f} us/vote, sd of standardised errors {z.std():.2f} (1 = calibrated)")
    try:
        from openskill.models import BradleyTerryFull, PlackettLuce
    except ImportError:
        print("  openskill not installed: `pip install openskill` to compare")
        return
    for model_class in (BradleyTerryFull, PlackettLuce):
        model = model_class()
        ratings = [model.rating() for _ in range(n_models)]
        started = time.perf_counter()
        for winner, loser in votes:
            [[ratings[winner]], [ratings[loser]]] = model.rate([[ratings[winner]], [ratings[loser]]])
        per_vote = 1e6 * (time.perf_counter() - started) / n_votes
        mu = np.array([r.mu for r in ratings])
        print(f"  openskill {model_class.__name__}: tau {kendalltau(mu, truth).statistic:.3f}, {per_vote:.1f} us/vote")


def _oracle_design(name: str, truth: np.ndarray) -> np.ndarray:
    """Pair weights of a static design that knows the true strengths (nats)."""
    n = len(truth)
    if name == "uniform":
        weights = np.ones((n, n))
    elif name.startswith("band"):  # pairs within about +-width nats of each other
        width = float(name[len("band"):])
        gap = truth[:, None] - truth[None, :]
        weights = np.exp(-0.5 * (gap / width) ** 2)
    else:  # "knn<m>": each model against its m nearest in true rank on each side
        reach = int(name[len("knn"):])
        rank = np.argsort(np.argsort(truth))
        weights = (np.abs(rank[:, None] - rank[None, :]) <= reach).astype(float)
    np.fill_diagonal(weights, 0.0)
    return weights


def bench_oracle(models: int = 50, spread: float = 175.0, noise: float = 0.05, reps: int = 30) -> None:
    """How far can any pair design go? Static designs that *know* the true strengths, rated by
    the engine's Bradley-Terry fit, at the simulator's defaults: votes until the mean number of
    discordant pairs falls to tau 0.9's (1225 pairs x 0.05 = 61.25 for 50 models)."""
    from scipy.stats import kendalltau

    from leaderboard.models.bradley_terry import bradley_terry
    from leaderboard.worker import DEFAULT_PRIOR_PRECISION

    pairs_total = models * (models - 1) / 2
    allowed = 0.05 * pairs_total  # tau = 1 - 2 D / pairs
    grid = np.arange(1000, 12001, 500)
    designs = ["uniform", "band0.3", "band0.45", "band0.6", "band0.8", "band1.0",
               "knn4", "knn6", "knn8", "knn10", "knn14"]
    upper = np.triu_indices(models, 1)
    print(f"{models} models, spread {spread:.0f}, {noise:.0%} flipped, {reps} reps; "
          f"votes until mean discordant pairs <= {allowed:.2f}")
    print(f"{'design':>9} {'votes':>7} {'vs uniform':>10}   mean discordant pairs at 3,500 / 5,000 / 7,000 votes")
    baseline = None
    for design in designs:
        discordant = np.zeros((reps, len(grid)))
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            truth = rng.normal(0.0, spread / (400 / np.log(10)), models)
            share = _oracle_design(design, truth)[upper]
            share = share / share.sum()
            for col, votes in enumerate(grid):
                pick = rng.choice(len(share), votes, p=share)
                first, second = upper[0][pick], upper[1][pick]
                first_wins = rng.random(votes) < 1.0 / (1.0 + np.exp(truth[second] - truth[first]))
                first_wins ^= rng.random(votes) < noise
                wins = np.zeros((models, models))
                np.add.at(wins, (np.where(first_wins, first, second), np.where(first_wins, second, first)), 1.0)
                totals = wins + wins.T
                pi, pj = np.nonzero(np.triu(totals, 1))
                theta = bradley_terry(models, pi, pj, wins[pi, pj], totals[pi, pj], alpha=DEFAULT_PRIOR_PRECISION).theta
                discordant[rep, col] = (1.0 - kendalltau(theta, truth).statistic) * pairs_total / 2.0
        mean = discordant.mean(axis=0)
        below = np.flatnonzero(mean <= allowed)
        if len(below) == 0 or below[0] == 0:
            needed = None
        else:  # linear interpolation between the grid points around the crossing
            i = below[0]
            needed = grid[i - 1] + (mean[i - 1] - allowed) / (mean[i - 1] - mean[i]) * (grid[i] - grid[i - 1])
        baseline = needed if design == "uniform" else baseline
        at = [mean[np.flatnonzero(grid == v)[0]] for v in (3500, 5000, 7000)]
        ratio = f"{needed / baseline:.2f}" if needed and baseline else "-"
        shown = f"{needed:.0f}" if needed else "> grid"
        print(f"{design:>9} {shown:>7} {ratio:>10}   {at[0]:.1f} / {at[1]:.1f} / {at[2]:.1f}", flush=True)


def _ratio(numerator, denominator, budget):
    """numerator / denominator; a None (never reached) denominator is at least the budget."""
    if numerator is None:
        return None, "never reached"
    if denominator is None:
        return numerator / budget, "<= (baseline never reached within the budget)"
    return numerator / denominator, ""


def print_ratios(payload: dict) -> dict:
    results = {(r["strategy"], r["k"]): r for r in payload["results"]}
    budget = payload["config"]["votes"]
    place_budget = budget - budget // 2

    def get(strategy, k, metric):
        row = results.get((strategy, k))
        return None if row is None else row[metric]

    print("medians over seeds; 'never' = not reached and kept within the budget")
    header = f"{'strategy':>13} {'k':>2} {'tau 0.9':>9} {'tau 0.95':>9} {'top 5':>9} {'place new':>10}"
    print(header)
    for (strategy, k), row in results.items():
        cells = [f"{row[m]:>9.0f}" if row[m] is not None else f"{'never':>9}"
                 for m in ("votes_to_tau90", "votes_to_tau95", "votes_to_top5")]
        place = f"{row['votes_to_place_new']:>10.0f}" if row["votes_to_place_new"] is not None else f"{'never':>10}"
        print(f"{strategy:>13} {k:>2} {' '.join(cells)} {place}")

    kwise = [s for (s, k) in results if k == 4 and s not in ("uniform-elo",)]
    best_kwise = min(kwise, key=lambda s: get(s, 4, "votes_to_tau90") or float("inf")) if kwise else None
    measured = {
        "active_tau90_vs_uniform": _ratio(get("active", 2, "votes_to_tau90"),
                                          get("uniform", 2, "votes_to_tau90"), budget),
        "topk_top5_vs_uniform": _ratio(get("top-k", 2, "votes_to_top5"), get("uniform", 2, "votes_to_top5"), budget),
        "place_new_vs_uniform": _ratio(get("active", 2, "votes_to_place_new"), get("uniform", 2, "votes_to_place_new"),
                                       place_budget),
        "kwise_tau90_vs_uniform_elo": _ratio(get(best_kwise, 4, "votes_to_tau90"),
                                             get("uniform-elo", 2, "votes_to_tau90"), budget),
        "active_tau90_vs_simple_rule": _ratio(get("active", 2, "votes_to_tau90"),
                                              get("simple-rule", 2, "votes_to_tau90"), budget),
    }
    print()
    print(f"{'ratio':>30} {'measured':>9} {'target':>8}")
    for name, (value, note) in measured.items():
        target = TARGETS.get(name)
        shown = f"{value:.3f}" if value is not None else "n/a"
        verdict = "" if target is None or value is None else ("met" if value <= target else "NOT met")
        label = name + (f" [{best_kwise}]" if name.startswith("kwise") else "")
        print(f"{label:>30} {shown:>9} {(f'{target:.3f}' if target else '-'):>8} {verdict} {note}")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    latency = sub.add_parser("latency")
    latency.add_argument("--models", type=int, default=200)
    sub.add_parser("online")
    oracle = sub.add_parser("oracle")
    oracle.add_argument("--reps", type=int, default=30)
    simulate = sub.add_parser("simulate")
    simulate.add_argument("--jobs", type=int, default=2)
    simulate.add_argument("--seeds", type=int, default=10)
    simulate.add_argument("--out", default="benchmarks/results/sim_defaults.json")
    ratios = sub.add_parser("ratios")
    ratios.add_argument("results")
    args = parser.parse_args(argv)
    if args.command == "latency":
        bench_latency(args.models)
    elif args.command == "online":
        bench_online()
    elif args.command == "oracle":
        bench_oracle(reps=args.reps)
    elif args.command == "simulate":
        from arena.sim.simulate import main as simulate_main

        started = time.perf_counter()
        code = simulate_main(["--models", "50", "--spread", "175", "--votes", "100000", "--noise", "0.05",
                              "--k", "2,4", "--strategies",
                              "uniform-elo,uniform,ci-reduction,active,top-k,ucb,simple-rule",
                              "--seeds", str(args.seeds), "--jobs", str(args.jobs), "--quiet",
                              "--runs-file", str(Path(args.out).with_suffix(".runs.jsonl")), "--out", args.out,
                              "--plot", str(Path(args.out).with_suffix(".png"))])
        print(f"simulated in {time.perf_counter() - started:.0f} s")
        if code:
            return code
        print_ratios(json.loads(Path(args.out).read_text()))
    else:
        print_ratios(json.loads(Path(args.results).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
