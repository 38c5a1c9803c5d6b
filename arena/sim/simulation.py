"""One simulated arena run: voters with known true strengths, a strategy choosing battles, the engine rating them.

:mod:`arena.sim.simulate` runs many of these (strategies x K x seeds), summarises and plots them.

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
when several voters are served from one state; later every 0.2% of the votes so far);
``uniform-elo`` is uniform pairs rated by online Elo (k = 4), the classic baseline (a K-wise
ranking updates Elo with each of its pairs).

Metrics on the checkpoint grid (100-vote steps at first, coarser later, restarting when the new
model joins): Kendall tau of the fitted ratings with the truth and "top 5 exactly right, in
order", both over the original models; for the new model, votes after it joins until its rank
among all models is within 2 of its true rank. "Reaches and stays" = the first checkpoint after
which the metric holds at every later checkpoint. A run stops early once past the new model's
arrival every metric has held for at least ``EARLY_STOP_MARGIN`` votes and for half the votes it
took to reach (``--no-early-stop`` runs the full budget).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import kendalltau

from arena.matchmaker.policy import STRATEGIES, StrategyOptions, selection_distribution
from arena.matchmaker.state import PRIOR_SD_NATS, RatingState, online_ranking_update, rescaled_covariance
from leaderboard.data.rankings import all_pairs, order_to_ranking
from leaderboard.live.policy import DEFAULT_PRIOR_PRECISION
from leaderboard.models.bradley_terry import bradley_terry, bt_information, constrained_inverse
from leaderboard.models.elo import OnlineElo
from leaderboard.models.plackett_luce import plackett_luce, plackett_luce_covariance
from leaderboard.models.sandwich import centred
from leaderboard.models.scale import ELO_PER_NAT

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
FIT_ALPHA = DEFAULT_PRIOR_PRECISION


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
