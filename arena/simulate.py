"""The matchmaker simulator: how many votes each strategy needs to find the true ranking.

    python -m arena simulate --models 50 --spread 175 --votes 100000 --noise 0.05 --k 2,4 \
        --strategies uniform-elo,uniform,ci-reduction,active,top-k,ucb --seeds 10 --out sim.json

Truth: each model's strength is drawn with standard deviation ``--spread`` rating points; at half
the budget a new model joins at a strength drawn the same way. Voters follow Bradley-Terry
(Plackett-Luce for K-wise votes) on the true strengths, then flip a pairwise outcome (or swap a
random adjacent pair of a K-wise ranking) with probability ``--noise``; optional position bias
(first-shown answer gets ``--position-bias`` nats) and length bias (each model has a verbosity;
per battle the longer answer gets ``--length-bias`` nats per unit of length difference).
One vote is one voter action: a K-wise ranking is one vote.

Every strategy sees the same truth and the same voter randomness for a seed. Battles are chosen
by the live matchmaker's own code (``arena.matchmaker.policy.selection_distribution``) from a
belief that is refitted by the real engine on a checkpoint grid (Bradley-Terry for pairs,
Plackett-Luce for K-wise; ``leaderboard``) and moved by the online Bayesian update after every
vote in between. The selection distribution is rebuilt every ``--refresh`` votes (default 10, as
when several voters are served from one state; later every 0.2% of the votes so far); ``uniform-elo`` is uniform pairs rated by online
Elo (k = 4), the classic baseline (a K-wise ranking updates Elo with each of its pairs).

Metrics on the checkpoint grid (100-vote steps at first, coarser later, restarting when the new
model joins): Kendall tau of the fitted ratings with the truth and "top 5 exactly right, in
order", both over the original models; for the new model, votes after it joins until its rank
among all models is within 2 of its true rank. "Reaches and stays" = the first checkpoint after
which the metric holds at every later checkpoint. A run stops early once past the new model's
arrival every metric has held for at least ``EARLY_STOP_MARGIN`` votes and for half the votes it
took to reach (``--no-early-stop`` runs the full budget).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np
from scipy.stats import kendalltau

from arena.matchmaker.fairness import FairnessPolicy
from arena.matchmaker.policy import STRATEGIES, StrategyOptions, selection_distribution
from arena.matchmaker.state import PRIOR_SD_NATS, RatingState, online_ranking_update, rescaled_covariance
from arena.settings import MATCHMAKER_FAIRNESS, MATCHMAKER_FLOOR, fairness_options
from leaderboard.bradley_terry import bradley_terry, bt_information, constrained_inverse
from leaderboard.config import add_arguments, parse_with_settings
from leaderboard.elo import OnlineElo
from leaderboard.intervals import centred
from leaderboard.plackett_luce import plackett_luce, plackett_luce_covariance
from leaderboard.rankings import all_pairs, order_to_ranking
from leaderboard.scale import ELO_PER_NAT
from leaderboard.worker import DEFAULT_ALPHA

# Beyond the live strategies: ``uniform-elo`` (uniform pairs rated by online Elo, the classic
# baseline) and ``simple-rule`` (``active`` with P(wrong) x Fisher information, the rule the issue
# quotes as the bar the default must beat).
SIM_STRATEGIES = ("uniform-elo",) + STRATEGIES + ("simple-rule",)
EARLY_STOP_MARGIN = 2000
# The selection distribution is rebuilt every max(--refresh, votes so far / 500) votes: a belief
# built on 50,000 votes barely moves in 100 more, and rebuilding it is most of a run's cost.
REFRESH_FRACTION_DIVISOR = 500
TOP = 5
PLACE_WITHIN = 2
# Prior precision of the engine fit (nats^-2): the worker's own, a N(0, 10^2) prior, only there so
# that the first few hundred votes (a model that has not lost yet) give finite ratings.
FIT_ALPHA = DEFAULT_ALPHA


@dataclass(frozen=True)
class SimConfig:
    models: int = 50
    spread: float = 175.0
    votes: int = 100_000
    noise: float = 0.05
    position_bias: float = 0.0
    length_bias: float = 0.0
    refresh: int = 10
    early_stop: bool = True
    options: StrategyOptions = field(default_factory=StrategyOptions)


@dataclass
class RunResult:
    strategy: str
    k: int
    seed: int
    checkpoints: list[int]
    tau: list[float]
    top_right: list[bool]
    new_placed: list[bool | None]
    rank_mse: list[float]
    join_at: int
    votes_run: int
    battle_share: list[float]  # per model (originals then the new one), share of battles x n / k
    seconds: float

    def votes_to(self, holds: Sequence[bool | None], start: int = 0) -> int | None:
        """Votes (from ``start``) until ``holds`` becomes true and stays true to the end."""
        last_false = None
        for i, (c, h) in enumerate(zip(self.checkpoints, holds)):
            if h is not None and c >= start and not h:
                last_false = i
        usable = [i for i, c in enumerate(self.checkpoints) if c >= start and holds[i] is not None]
        if not usable:
            return None
        first_ok = usable[0] if last_false is None else next((i for i in usable if i > last_false), None)
        return None if first_ok is None else self.checkpoints[first_ok] - start

    def summary(self) -> dict:
        return {
            "votes_to_tau90": self.votes_to([t >= 0.9 for t in self.tau]),
            "votes_to_tau95": self.votes_to([t >= 0.95 for t in self.tau]),
            "votes_to_top5": self.votes_to(self.top_right),
            "votes_to_place_new": self.votes_to(self.new_placed, self.join_at),
        }


def checkpoint_step(votes_since_phase_start: int) -> int:
    if votes_since_phase_start < 2000:
        return 100
    if votes_since_phase_start < 10000:
        return 250
    if votes_since_phase_start < 30000:
        return 500
    return 1000


def ranks_of(values: np.ndarray) -> np.ndarray:
    """Rank 0 = best."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(len(values))
    return ranks


class Voters:
    """Simulated voters over the true strengths (nats)."""

    def __init__(self, truth: np.ndarray, verbosity: np.ndarray, config: SimConfig, rng: np.random.Generator):
        self.truth, self.verbosity, self.config, self.rng = truth, verbosity, config, rng

    def _utility_shift(self, shown: np.ndarray) -> np.ndarray:
        shift = np.zeros(len(shown))
        shift[0] += self.config.position_bias
        if self.config.length_bias:
            lengths = self.verbosity[shown] + 0.5 * self.rng.standard_normal(len(shown))
            shift += self.config.length_bias * (lengths - lengths.mean())
        return shift

    def rank(self, shown: np.ndarray) -> list[int]:
        """Indices of ``shown`` (display order), best first."""
        utility = self.truth[shown] + self._utility_shift(shown)
        if len(shown) == 2:
            p_first = 1.0 / (1.0 + math.exp(utility[1] - utility[0]))
            first_wins = self.rng.random() < p_first
            if self.rng.random() < self.config.noise:
                first_wins = not first_wins
            return [int(shown[0]), int(shown[1])] if first_wins else [int(shown[1]), int(shown[0])]
        order = np.argsort(-(utility + self.rng.gumbel(size=len(shown))))  # Plackett-Luce draw
        ranking = [int(shown[i]) for i in order]
        if self.rng.random() < self.config.noise:
            swap = int(self.rng.integers(len(ranking) - 1))
            ranking[swap], ranking[swap + 1] = ranking[swap + 1], ranking[swap]
        return ranking


class EngineFit:
    """The real engine refitted on the votes so far: BT on pair counts, PL on K-wise rankings."""

    def __init__(self, n_total: int, k: int):
        self.k = k
        self.wins = np.zeros((n_total, n_total))  # wins[i, j]: times i beat j
        self.rankings: list[list[int]] = []
        self.theta: np.ndarray | None = None

    def record(self, ranking: list[int]) -> None:
        if self.k == 2:
            self.wins[ranking[0], ranking[1]] += 1.0
        else:
            self.rankings.append(ranking)

    def fit(self, n_present: int) -> tuple[np.ndarray, np.ndarray]:
        start = None
        if self.theta is not None:
            start = np.zeros(n_present)
            start[: len(self.theta)] = self.theta
        if self.k == 2:
            wins = self.wins[:n_present, :n_present]
            totals = wins + wins.T
            pair_i, pair_j = np.nonzero(np.triu(totals, 1))
            solution = bradley_terry(n_present, pair_i, pair_j, wins[pair_i, pair_j], totals[pair_i, pair_j],
                                     alpha=FIT_ALPHA, initial_params=start)
            theta = solution.theta
            info = bt_information(theta, pair_i, pair_j, totals[pair_i, pair_j], FIT_ALPHA)
            covariance = constrained_inverse(info, alpha=FIT_ALPHA)
        else:
            # Models not yet in any ranking (the newcomer at its arrival) are left out of the fit
            # and given the prior; the Plackett-Luce fitter refuses items it has no data on.
            rankings = np.array(self.rankings, dtype=int)
            seen = np.unique(rankings)
            local = np.full(n_present, -1)
            local[seen] = np.arange(len(seen))
            local_start = None if start is None else start[seen]
            seen_theta = plackett_luce(len(seen), local[rankings], alpha=FIT_ALPHA, initial_params=local_start)
            seen_cov = plackett_luce_covariance(len(seen), local[rankings], seen_theta, kind="fisher", alpha=FIT_ALPHA)
            theta = np.zeros(n_present)
            covariance = np.eye(n_present) * PRIOR_SD_NATS**2
            theta[seen] = seen_theta
            covariance[np.ix_(seen, seen)] = seen_cov
        self.theta = theta
        return theta, centred(covariance)


def _seed_for(seed: int, *labels) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *(zlib.crc32(str(label).encode()) for label in labels)])


def run_one(strategy: str, k: int, seed: int, config: SimConfig) -> RunResult:
    """One simulated arena from an empty vote log to the budget (or early stop)."""
    started = time.perf_counter()
    if strategy not in SIM_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: expected one of {', '.join(SIM_STRATEGIES)}")
    truth_rng = np.random.default_rng(_seed_for(seed, "truth"))
    n = config.models
    truth = truth_rng.normal(0.0, config.spread / ELO_PER_NAT, n + 1)  # the last one joins later
    verbosity = truth_rng.standard_normal(n + 1)
    join_at = config.votes // 2
    voters = Voters(truth, verbosity, config, np.random.default_rng(_seed_for(seed, "voters", k)))
    choice_rng = np.random.default_rng(_seed_for(seed, "choices", k, strategy))
    names = [f"model-{i:03d}" for i in range(n + 1)]

    elo = OnlineElo(k=4) if strategy == "uniform-elo" else None
    engine = EngineFit(n + 1, k)
    matchmaker_strategy = {"uniform-elo": "uniform", "simple-rule": "active"}.get(strategy, strategy)
    options = config.options
    if strategy == "simple-rule":
        options = replace(options, criterion="pwrong-fisher")
    present = n
    state = RatingState.prior(names[:present])
    fit_covariance = state.covariance.copy()
    battles = np.zeros(n + 1)
    battles_since_join = np.zeros(n + 1)

    checkpoints, taus, tops, placed, mses = [], [], [], [], []
    phase_start, next_checkpoint = 0, checkpoint_step(0)
    distribution, distribution_age = None, 0  # None: rebuild before the next choice
    votes = 0
    while votes < config.votes:
        if votes == join_at and present == n:
            present = n + 1
            state = state.restricted(names[:present])  # the newcomer gets the prior, centred on the field
            fit_covariance = state.covariance.copy()
            distribution = None
            phase_start, next_checkpoint = votes, votes + checkpoint_step(0)
        if distribution is None or distribution_age >= max(config.refresh, votes // REFRESH_FRACTION_DIVISOR):
            state.covariance = rescaled_covariance(fit_covariance, np.diag(state.covariance))
            distribution = selection_distribution(matchmaker_strategy, state, k, options)
            distribution_age = 0
        members = np.array(distribution.sample(choice_rng))
        shown = members[choice_rng.permutation(k)]
        order = voters.rank(shown)
        distribution_age += 1
        votes += 1
        battles[members] += 1
        if present > n:
            battles_since_join[members] += 1
        engine.record(order)
        ranking = order_to_ranking(order)
        if elo is not None:  # Elo has no K-wise form: every pair of the ranking is one Elo vote
            for ahead, behind, outcome in all_pairs(ranking):
                elo.update(names[ahead], names[behind], outcome)
        # online Bayesian step (the matchmaker's own belief between refits)
        variance = np.diag(state.covariance).copy()
        online_ranking_update(state.mean, variance, ranking)
        np.fill_diagonal(state.covariance, variance)
        state.votes[members] += 1
        for a_pos in range(k):
            for b_pos in range(a_pos + 1, k):
                state.pair_votes[members[a_pos], members[b_pos]] += 1
                state.pair_votes[members[b_pos], members[a_pos]] += 1

        if votes == next_checkpoint or votes == config.votes:
            if elo is not None:  # uniform pairs need no belief: only the Elo ratings are scored
                ratings = elo.ratings()
                estimate = np.array([ratings.get(name, elo.initial) for name in names[:present]])
            else:
                theta, covariance = engine.fit(present)
                estimate = theta
                # the state's own covariance copy: the online step writes its diagonal in place,
                # and fit_covariance must keep the fit's variances to rescale from
                state = RatingState(names[:present], theta.copy(), covariance.copy(), state.votes, state.pair_votes)
                fit_covariance = covariance
                distribution = None
            original = estimate[:n]
            checkpoints.append(votes)
            taus.append(float(kendalltau(original, truth[:n]).statistic))
            tops.append(bool(np.array_equal(np.argsort(-original)[:TOP], np.argsort(-truth[:n])[:TOP])))
            est_ranks, true_ranks = ranks_of(estimate), ranks_of(truth[:present])
            placed.append(bool(abs(est_ranks[n] - true_ranks[n]) <= PLACE_WITHIN) if present > n else None)
            mses.append(float(np.mean((est_ranks - true_ranks) ** 2)))
            next_checkpoint = votes + checkpoint_step(votes - phase_start)
            if config.early_stop and present > n and _settled(checkpoints, taus, tops, placed, join_at):
                break

    # share of battles relative to an equal share (1 = fair): originals over the whole run, the
    # new model over the time it was present
    share = battles[:n] / max(votes, 1) * n / k
    if votes > join_at:
        share = np.append(share, battles_since_join[n] / (votes - join_at) * (n + 1) / k)
    return RunResult(strategy, k, seed, checkpoints, taus, tops, placed, mses, join_at, votes,
                     share.tolist(), time.perf_counter() - started)


def _settled(checkpoints, taus, tops, placed, join_at) -> bool:
    """True once every metric has held for EARLY_STOP_MARGIN votes and half the votes it took."""
    now = checkpoints[-1]
    series = [([t >= 0.9 for t in taus], 0), ([t >= 0.95 for t in taus], 0), (tops, 0), (placed, join_at)]
    for holds, start in series:
        since = None
        for c, h in zip(reversed(checkpoints), reversed(holds)):
            if h is None or c < start:
                break
            if not h:
                break
            since = c
        if since is None:
            return False
        reached = since - start
        if now - since < max(EARLY_STOP_MARGIN, 0.5 * reached):
            return False
    return True


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    parser = argparse.ArgumentParser(prog="python -m arena simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--spread", type=float, default=175.0, help="sd of true strengths, rating points")
    parser.add_argument("--votes", type=int, default=100_000, help="vote budget per run")
    parser.add_argument("--noise", type=float, default=0.05, help="probability a vote is flipped")
    parser.add_argument("--position-bias", type=float, default=0.0, help="nats added to the first-shown answer")
    parser.add_argument("--length-bias", type=float, default=0.0, help="nats per unit of answer-length difference")
    parser.add_argument("--k", default="2", help="battle sizes, comma-separated, e.g. 2,4")
    parser.add_argument("--strategies", default=",".join(SIM_STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--refresh", type=int, default=10, help="votes between rebuilding the selection distribution")
    add_arguments(parser, MATCHMAKER_FAIRNESS)  # the live matchmaker's knobs, flags, variables and defaults
    parser.add_argument("--floor", dest=MATCHMAKER_FLOOR.name, type=MATCHMAKER_FLOOR.parse, default=argparse.SUPPRESS,
                        help=f"the same as {MATCHMAKER_FLOOR.flag}")
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
