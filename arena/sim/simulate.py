"""The matchmaker simulator: how many votes each strategy needs to find the true ranking.

    python -m arena simulate --models 50 --spread 175 --votes 100000 --noise 0.05 --k 2,4 \
        --strategies uniform-elo,uniform,ci-reduction,active,top-k,ucb --seeds 10 --out sim.json

Runs :func:`arena.sim.simulation.run_one` for every strategy, K and seed (in parallel with
``--jobs``), then reports per strategy and K the median votes until Kendall tau reaches and
keeps 0.9 and 0.95, until the top 5 are exactly right, and until a model that joins halfway is
placed within 2 ranks. How one run works (truth, voters, belief, metrics): :mod:`arena.sim.simulation`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

import numpy as np

from arena.matchmaker.fairness import FairnessPolicy
from arena.matchmaker.policy import StrategyOptions
from arena.ops.settings import MATCHMAKER_FAIRNESS, MATCHMAKER_FLOOR, fairness_options
from arena.sim.simulation import SIM_STRATEGIES, RunResult, SimConfig, run_one
from leaderboard.config import add_arguments, command_description, parse_with_settings


def median_or_none(values: list[int | None]) -> float | None:
    """Median over seeds, counting 'never reached' as larger than any number; None if the median
    itself is never reached."""
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    m = len(ordered)
    if m == 0:
        return None
    lo, hi = ordered[(m - 1) // 2], ordered[m // 2]
    if lo is None or hi is None:
        return None
    return float(lo + hi) / 2.0


def summarise(runs: list[RunResult]) -> list[dict]:
    rows = []
    keys = sorted({(r.strategy, r.k) for r in runs}, key=lambda sk: (sk[1], SIM_STRATEGIES.index(sk[0])))
    for strategy, k in keys:
        group = [r for r in runs if r.strategy == strategy and r.k == k]
        per_seed = [r.summary() for r in group]
        row = {"strategy": strategy, "k": k}
        for metric in ("votes_to_tau90", "votes_to_tau95", "votes_to_top5", "votes_to_place_new"):
            row[metric] = median_or_none([s[metric] for s in per_seed])
        shares = np.array([r.battle_share for r in group])
        row["battle_share_min"] = float(np.median(shares.min(axis=1)))
        row["battle_share_max"] = float(np.median(shares.max(axis=1)))
        row["seeds"] = [r.seed for r in group]
        row["per_seed"] = per_seed
        row["votes_run"] = [r.votes_run for r in group]
        row["seconds"] = float(sum(r.seconds for r in group))
        rows.append(row)
    return rows


def rank_error_curves(runs: list[RunResult]) -> dict:
    """Median over seeds of tau and mean squared rank error on the common checkpoint grid."""
    curves = {}
    for strategy, k in sorted({(r.strategy, r.k) for r in runs}):
        group = [r for r in runs if r.strategy == strategy and r.k == k]
        length = min(len(r.checkpoints) for r in group)
        curves[f"{strategy}/k={k}"] = {
            "votes": group[0].checkpoints[:length],
            "tau": np.median([r.tau[:length] for r in group], axis=0).tolist(),
            "rank_mse": np.median([r.rank_mse[:length] for r in group], axis=0).tolist(),
        }
    return curves


def _run_packed(args):
    return run_one(*args)


def _run_key(strategy: str, k: int, seed: int, config: SimConfig) -> str:
    return json.dumps([strategy, k, seed, repr(config)])


def simulate(strategies: Sequence[str], ks: Sequence[int], seeds: Sequence[int], config: SimConfig,
             jobs: int = 1, progress=None, runs_file: str | None = None) -> list[RunResult]:
    """All runs; with ``runs_file`` (JSON lines) finished runs are saved as they finish and runs
    already saved there with the same configuration are not run again (resume after a stop)."""
    # seed-major order, so a run stopped part-way leaves whole seeds for every strategy and K
    tasks = [(s, k, seed, config) for seed in seeds for k in ks for s in strategies]
    if runs_file:
        done = _load_runs(runs_file)
        cached = {key: done[key] for key in (_run_key(*task) for task in tasks) if key in done}
        todo = [task for task in tasks if _run_key(*task) not in cached]
        with open(runs_file, "a") as handle:
            def saving(result: RunResult) -> None:
                handle.write(json.dumps({"key": _run_key(result.strategy, result.k, result.seed, config),
                                         "run": asdict(result)}) + "\n")
                handle.flush()
                if progress:
                    progress(result)

            fresh = simulate_tasks(todo, jobs, saving)
        by_key = {**cached, **{_run_key(r.strategy, r.k, r.seed, config): r for r in fresh}}
        return [by_key[_run_key(*task)] for task in tasks]
    return simulate_tasks(tasks, jobs, progress)


def _load_runs(path: str) -> dict[str, RunResult]:
    runs = {}
    try:
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    runs[record["key"]] = RunResult(**record["run"])
    except FileNotFoundError:
        pass
    return runs


def simulate_tasks(tasks, jobs: int = 1, progress=None) -> list[RunResult]:
    if jobs <= 1:
        results = []
        for task in tasks:
            results.append(run_one(*task))
            if progress:
                progress(results[-1])
        return results
    results = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(_run_packed, tasks):
            results.append(result)
            if progress:
                progress(result)
    return results


def plot(runs: list[RunResult], path: str) -> None:
    # only for --plot: matplotlib takes a second to import, and the backend must be chosen before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg") (see above)

    curves = rank_error_curves(runs)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    palette = plt.get_cmap("tab10")
    # one colour per strategy, one line style per K (curves end where the first seed stopped early)
    for label, curve in curves.items():
        strategy, k_label = label.split("/")
        style = {"color": palette(SIM_STRATEGIES.index(strategy) % 10),
                 "linestyle": "-" if k_label == "k=2" else "--"}
        axes[0].plot(curve["votes"], curve["tau"], label=label, **style)
        axes[1].plot(curve["votes"], curve["rank_mse"], label=label, **style)
    axes[0].axhline(0.9, color="grey", lw=0.5)
    axes[0].axhline(0.95, color="grey", lw=0.5)
    axes[0].set(xscale="log", xlabel="votes", ylabel="Kendall tau with the truth (median over seeds)")
    axes[1].set(xscale="log", yscale="log", xlabel="votes", ylabel="mean squared rank error")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m arena simulate", description=command_description(__doc__))
    defaults = SimConfig()
    parser.add_argument("--models", type=int, default=defaults.models)
    parser.add_argument("--spread", type=float, default=defaults.spread, help="sd of true strengths, rating points")
    parser.add_argument("--votes", type=int, default=defaults.votes, help="vote budget per run")
    parser.add_argument("--noise", type=float, default=defaults.noise, help="probability a vote is flipped")
    parser.add_argument("--position-bias", type=float, default=defaults.position_bias,
                        help="nats added to the first-shown answer")
    parser.add_argument("--length-bias", type=float, default=defaults.length_bias,
                        help="nats per unit of answer-length difference")
    parser.add_argument("--k", default="2", help="battle sizes, comma-separated, e.g. 2,4")
    parser.add_argument("--strategies", default=",".join(SIM_STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--refresh", type=int, default=defaults.refresh,
                        help="votes between rebuilding the selection distribution")
    add_arguments(parser, MATCHMAKER_FAIRNESS)  # the live matchmaker's knobs, flags, variables and defaults
    parser.add_argument("--floor", dest=MATCHMAKER_FLOOR.name, type=MATCHMAKER_FLOOR.parse, default=argparse.SUPPRESS,
                        help=f"the same as {MATCHMAKER_FLOOR.flag} (older name)")
    parser.add_argument("--no-early-stop", action="store_true")
    parser.add_argument("--jobs", type=int, default=1, help="processes")
    parser.add_argument("--out", help="write results JSON here")
    parser.add_argument("--runs-file", help="JSON lines of finished runs: saved as they finish, reused on a re-run")
    parser.add_argument("--plot", help="write a PNG of tau and rank error over votes")
    parser.add_argument("--quiet", action="store_true")
    return parse_with_settings(parser, argv, MATCHMAKER_FAIRNESS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ks = [int(k) for k in str(args.k).split(",") if k]
    except ValueError:
        print(f"--k {args.k!r}: give battle sizes as integers, e.g. --k 2,4", file=sys.stderr)
        return 2
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in SIM_STRATEGIES]
    if unknown or any(k < 2 or k > 5 or k > args.models for k in ks) or args.models < 3:
        print(f"bad arguments: strategies must be among {', '.join(SIM_STRATEGIES)} (got unknown {unknown}); "
              f"k between 2 and 5 and at most --models; --models at least 3", file=sys.stderr)
        return 2
    fairness = fairness_options(vars(args))
    options = StrategyOptions(fairness=FairnessPolicy(**fairness))
    config = SimConfig(models=args.models, spread=args.spread, votes=args.votes, noise=args.noise,
                       position_bias=args.position_bias, length_bias=args.length_bias, refresh=args.refresh,
                       early_stop=not args.no_early_stop, options=options)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))

    def progress(result: RunResult) -> None:
        if not args.quiet:
            print(f"  {result.strategy:>12} k={result.k} seed={result.seed}: {result.summary()} "
                  f"({result.votes_run} votes, {result.seconds:.1f}s)", file=sys.stderr, flush=True)

    runs = simulate(strategies, ks, seeds, config, jobs=args.jobs, progress=progress, runs_file=args.runs_file)
    results = summarise(runs)
    header = f"{'strategy':>12} {'k':>2} {'tau90':>8} {'tau95':>8} {'top5':>8} {'place':>8} {'share min/max':>14}"
    print(header)
    for row in results:
        cells = [f"{row[m]:>8.0f}" if row[m] is not None else f"{'never':>8}"
                 for m in ("votes_to_tau90", "votes_to_tau95", "votes_to_top5", "votes_to_place_new")]
        print(f"{row['strategy']:>12} {row['k']:>2} {' '.join(cells)} "
              f"{row['battle_share_min']:>6.2f}/{row['battle_share_max']:<6.2f}")
    if args.out:
        payload = {"config": {"models": args.models, "spread": args.spread, "votes": args.votes, "noise": args.noise,
                              "position_bias": args.position_bias, "length_bias": args.length_bias, "k": ks,
                              "refresh": args.refresh, "early_stop": not args.no_early_stop,
                              **fairness},
                   "results": results, "curves": rank_error_curves(runs)}
        with open(args.out, "w") as handle:
            json.dump(payload, handle, indent=1)
    if args.plot:
        plot(runs, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
