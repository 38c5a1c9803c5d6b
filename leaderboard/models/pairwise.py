"""Bradley-Terry as a :class:`~leaderboard.models.base.RatingModel`: ties as half a win each way
(:class:`BradleyTerry`, LMArena's convention) or by Davidson's tie model (:class:`DavidsonBradleyTerry`).

Both fit the per-pair counts of ``VoteData.pairs`` exactly (leaderboard.models.bradley_terry),
after checking that the comparison graph is connected and, without a prior, that the maximum
likelihood exists (leaderboard.models.graph). Both resample the (pair, outcome) cells, each
drawn as a scaled Poisson matching its weights' mean and variance, and refit a replicate
exactly; for plain Bradley-Terry ``leaderboard.fit`` uses the batched bootstrap instead
(leaderboard.resampling.bootstrap: the same replicates, solved together in array code).
"""

from __future__ import annotations

import numpy as np

from leaderboard.data.counts import I_WINS, J_WINS, TIE_CLASS, PairArrays, PairCounts
from leaderboard.models.base import Estimate, RatingModel, VoteData, check_alpha
from leaderboard.models.bradley_terry import bradley_terry, davidson, half_tie_scores
from leaderboard.models.graph import (
    NoMaximumLikelihoodError,
    check_connected,
    check_mle_exists,
    runaway_limits,
    scored_edges,
    with_limits,
)
from leaderboard.models.optim import ConvergenceError
from leaderboard.models.result import BRADLEY_TERRY, BRADLEY_TERRY_DAVIDSON
from leaderboard.models.sandwich import davidson_sandwich_cov, model_based_cov, sandwich_cov

TIE_MODELS = ("half", "davidson")
TINY_PRIOR = 1e-6  # keeps a replicate without an MLE finite while its runaway models are marked


class NoVotesError(ValueError):
    """Nothing to fit: fewer than two models have votes."""


def informative_pairs(arrays: PairArrays) -> PairArrays:
    """Drop pairs whose votes all have weight 0 (they compare nothing)."""
    keep = arrays.weight.sum(axis=1) > 0
    if keep.all():
        return arrays
    return PairArrays(arrays.n_models, arrays.pair_i[keep], arrays.pair_j[keep], arrays.count[keep],
                      arrays.weight[keep], arrays.weight_sq[keep])


def fitted_pairs(counts: PairCounts) -> tuple[list[str], PairArrays]:
    """(models, the informative pairs) of ``counts``, checked: two models or more, connected."""
    models = list(counts.models)
    arrays = informative_pairs(counts.arrays())
    if len(models) < 2 or arrays.n_pairs == 0:
        raise NoVotesError(f"need votes between at least two models to fit ratings; got {counts!r}")
    check_connected(models, arrays.pair_i, arrays.pair_j)
    return models, arrays


def poisson_cells(arrays: PairArrays, rng: np.random.Generator, size: int) -> list:
    """``size`` Poisson-bootstrap resamples of the per-(pair, outcome) cells, each (wins_i, wins_j,
    ties) per pair: a cell is c * Poisson(lambda) with lambda = (sum w)^2 / sum w^2 and
    c = sum w^2 / sum w (its votes' mean and variance; exact when their weights are equal)."""
    classes = []
    for outcome_class in (I_WINS, J_WINS, TIE_CLASS):
        weight, weight_sq = arrays.weight[:, outcome_class], arrays.weight_sq[:, outcome_class]
        lam = np.divide(weight**2, weight_sq, out=np.zeros_like(weight), where=weight_sq > 0)
        scale = np.divide(weight_sq, weight, out=np.zeros_like(weight), where=weight > 0)
        classes.append(rng.poisson(lam[:, None], size=(arrays.n_pairs, size)) * scale[:, None])
    return [(classes[0][:, b], classes[1][:, b], classes[2][:, b]) for b in range(size)]


def start_from(models: list[str], warm_start: dict | None) -> np.ndarray | None:
    """The warm start's theta in ``models`` order (0 for a model it does not know), or None."""
    init_theta = (warm_start or {}).get("theta")
    if not init_theta:
        return None
    return np.array([float(init_theta.get(name, 0.0)) for name in models])


class BradleyTerry(RatingModel):
    """Bradley-Terry, a tie half a win each way; ``alpha``: prior precision per theta (nats^-2, 0 = MLE)."""

    name = BRADLEY_TERRY

    def __init__(self, *, alpha: float = 0.0):
        check_alpha(alpha)
        self.alpha = alpha

    def estimate(self, data: VoteData, *, warm_start=None) -> Estimate:
        models, arrays = fitted_pairs(data.pairs)
        wins, totals = half_tie_scores(arrays)
        if self.alpha == 0:
            check_mle_exists(models, arrays.pair_i, arrays.pair_j, wins > 0, totals - wins > 0)
        solution = bradley_terry(len(models), arrays.pair_i, arrays.pair_j, wins, totals, alpha=self.alpha,
                                 initial_params=start_from(models, warm_start))
        return Estimate(models=models, theta=solution.theta, params=solution.theta, solution=solution,
                        votes=data.pairs.model_vote_counts(), n_votes=data.pairs.n_votes,
                        details={"ties": "half", "alpha": self.alpha}, work=arrays)

    def covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        cov = sandwich_cov if robust else model_based_cov
        return cov(estimate.theta, estimate.work, alpha=self.alpha)

    def resample(self, estimate: Estimate, rng: np.random.Generator, size: int) -> list:
        """The cells' Poisson bootstrap (``leaderboard.fit`` prefers the batched bootstrap, which
        solves the same replicates in array code, for this model)."""
        return poisson_cells(estimate.work, rng, size)

    def refit(self, estimate: Estimate, draw) -> np.ndarray:
        arrays = estimate.work
        wins_i, wins_j, ties = draw
        wins, totals = wins_i + 0.5 * ties, wins_i + wins_j + ties
        limits = None
        if self.alpha == 0:
            limits = runaway_limits(arrays.n_models, *scored_edges(arrays.pair_i, arrays.pair_j, wins > 0,
                                                                   totals - wins > 0))
        try:
            theta = bradley_terry(arrays.n_models, arrays.pair_i, arrays.pair_j, wins, totals,
                                  alpha=self.alpha if limits is None else max(self.alpha, TINY_PRIOR),
                                  initial_params=estimate.theta).theta
        except (ConvergenceError, FloatingPointError, np.linalg.LinAlgError):
            return np.full(arrays.n_models, np.nan)
        return with_limits(theta, limits)


class DavidsonBradleyTerry(RatingModel):
    """Bradley-Terry with Davidson's (1970) tie model: P(i) : P(j) : P(tie) = pi_i : pi_j : nu sqrt(pi_i pi_j).
    Its covariance is always the sandwich (nu profiled in), ``robust`` or not."""

    name = BRADLEY_TERRY_DAVIDSON
    bootstrap_label = "bootstrap (Davidson)"

    def __init__(self, *, alpha: float = 0.0):
        check_alpha(alpha)
        self.alpha = alpha

    def estimate(self, data: VoteData, *, warm_start=None) -> Estimate:
        models, arrays = fitted_pairs(data.pairs)
        weights = arrays.weight
        wins_i, wins_j, tied = weights[:, I_WINS], weights[:, J_WINS], weights[:, TIE_CLASS]
        if tied.sum() == 0 or (wins_i + wins_j).sum() == 0:
            raise NoMaximumLikelihoodError(
                "the Davidson tie model needs both ties and decisive votes to estimate its tie parameter; "
                "these votes have " + ("no ties" if tied.sum() == 0 else "only ties") + ". Use ties='half'.", [])
        if self.alpha == 0:
            check_mle_exists(models, arrays.pair_i, arrays.pair_j, wins_i + tied > 0, wins_j + tied > 0)
        solution = davidson(len(models), arrays.pair_i, arrays.pair_j, wins_i, wins_j, tied, alpha=self.alpha,
                            initial_params=start_from(models, warm_start))
        return Estimate(models=models, theta=solution.theta, params=solution.theta, solution=solution,
                        votes=data.pairs.model_vote_counts(), n_votes=data.pairs.n_votes,
                        details={"ties": "davidson", "alpha": self.alpha},
                        found={"davidson_nu": float(np.exp(solution.log_nu))}, work=arrays)

    def covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        return davidson_sandwich_cov(estimate.theta, estimate.solution.log_nu, estimate.work, alpha=self.alpha)

    def resample(self, estimate: Estimate, rng: np.random.Generator, size: int) -> list:
        return poisson_cells(estimate.work, rng, size)

    def refit(self, estimate: Estimate, draw) -> np.ndarray:
        arrays = estimate.work
        wins_i, wins_j, ties = draw
        n_models = arrays.n_models
        if ties.sum() == 0 or (wins_i + wins_j).sum() == 0:  # the tie parameter has no estimate in this resample
            return np.full(n_models, np.nan)
        limits = None
        if self.alpha == 0:
            limits = runaway_limits(n_models, *scored_edges(arrays.pair_i, arrays.pair_j, wins_i + ties > 0,
                                                            wins_j + ties > 0))
        try:
            theta = davidson(n_models, arrays.pair_i, arrays.pair_j, wins_i, wins_j, ties,
                             alpha=self.alpha if limits is None else max(self.alpha, TINY_PRIOR),
                             initial_params=estimate.theta).theta
        except (ConvergenceError, FloatingPointError, np.linalg.LinAlgError):
            return np.full(n_models, np.nan)
        return with_limits(theta, limits)


def pairwise_model(ties: str, alpha: float) -> RatingModel:
    """The Bradley-Terry model for ``ties`` ("half" or "davidson")."""
    if ties not in TIE_MODELS:
        raise ValueError(f"ties must be one of {TIE_MODELS}, got {ties!r}")
    return BradleyTerry(alpha=alpha) if ties == "half" else DavidsonBradleyTerry(alpha=alpha)
