"""The high-level entry point: per-pair counts in, a leaderboard (ratings, 95% intervals, ranks) out.

May import: leaderboard.data, leaderboard.models, leaderboard.resampling.
"""

from __future__ import annotations

import numpy as np

from leaderboard.data.counts import I_WINS, J_WINS, TIE_CLASS, PairArrays, PairCounts
from leaderboard.models.blas import blas_threads_for
from leaderboard.models.bradley_terry import bradley_terry, davidson, half_tie_scores
from leaderboard.models.graph import DisconnectedGraphError, NoMaximumLikelihoodError, check_connected, check_mle_exists
from leaderboard.models.result import (
    BOOTSTRAP,
    BRADLEY_TERRY,
    BRADLEY_TERRY_DAVIDSON,
    NO_INTERVALS,
    SANDWICH,
    RatingResult,
    fit_settings,
    method_name,
)
from leaderboard.models.sandwich import (
    davidson_sandwich_cov,
    model_based_cov,
    normal_bounds,
    percentile_bounds,
    sandwich_cov,
)
from leaderboard.models.scale import ELO_PER_NAT, rating_transform

CI_METHODS = (SANDWICH, BOOTSTRAP, NO_INTERVALS)
TIE_MODELS = ("half", "davidson")

__all__ = ["fit_leaderboard", "DisconnectedGraphError", "NoMaximumLikelihoodError", "NoVotesError"]


class NoVotesError(ValueError):
    """Nothing to fit: fewer than two models have votes."""


def fit_leaderboard(counts: PairCounts, *, ci: str = SANDWICH, n_bootstrap: int = 1000, seed: int = 0,
                    anchor: tuple[str, float] | None = None, init_theta: dict[str, float] | None = None,
                    ties: str = "half", alpha: float = 0.0, progress: bool = False) -> RatingResult:
    with blas_threads_for(counts.n_models):
        return _fit_leaderboard(counts, ci=ci, n_bootstrap=n_bootstrap, seed=seed, anchor=anchor,
                                init_theta=init_theta, ties=ties, alpha=alpha, progress=progress)


def _fit_leaderboard(counts: PairCounts, *, ci: str, n_bootstrap: int, seed: int, anchor, init_theta,
                     ties: str, alpha: float, progress: bool) -> RatingResult:
    """Fit Bradley-Terry ratings with 95% intervals and rank intervals.

    ci: "sandwich" (robust normal intervals), "bootstrap" (percentile intervals from ``n_bootstrap``
    batched replicates, reproducible with ``seed``) or "none" (lower = upper = rating; the
    covariance is then the model-based inverse information). ties: "half" (a tie is half a win
    each way, LMArena's convention) or "davidson". alpha: prior precision per theta (nats^-2);
    0 = exact MLE. init_theta: warm start by model name (nats); it changes the path, not the answer.
    anchor: (model, rating) pins that model's rating; otherwise ratings have mean 1000.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"ci must be one of {CI_METHODS}, got {ci!r}")
    if ties not in TIE_MODELS:
        raise ValueError(f"ties must be one of {TIE_MODELS}, got {ties!r}")
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    if ci == BOOTSTRAP and n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be at least 2, got {n_bootstrap}")
    models = list(counts.models)
    if anchor is not None and anchor[0] not in models:
        raise ValueError(f"anchor model {anchor[0]!r} has no votes; models are {models[:10]}{'...' if len(models) > 10 else ''}")

    arrays = _informative_pairs(counts.arrays())
    if len(models) < 2 or arrays.n_pairs == 0:
        raise NoVotesError(f"need votes between at least two models to fit ratings; got {counts!r}")
    check_connected(models, arrays.pair_i, arrays.pair_j)

    start = None
    if init_theta:
        start = np.array([float(init_theta.get(name, 0.0)) for name in models])

    weights = arrays.weight
    log_nu = None
    if ties == "half":
        wins, totals = half_tie_scores(arrays)
        if alpha == 0:
            check_mle_exists(models, arrays.pair_i, arrays.pair_j, wins > 0, totals - wins > 0)
        solution = bradley_terry(len(models), arrays.pair_i, arrays.pair_j, wins, totals,
                                 alpha=alpha, initial_params=start)
    else:
        wins_i, wins_j, tied = weights[:, I_WINS], weights[:, J_WINS], weights[:, TIE_CLASS]
        if tied.sum() == 0 or (wins_i + wins_j).sum() == 0:
            raise NoMaximumLikelihoodError(
                "the Davidson tie model needs both ties and decisive votes to estimate its tie parameter; "
                "these votes have " + ("no ties" if tied.sum() == 0 else "only ties") + ". Use ties='half'.", [])
        if alpha == 0:
            check_mle_exists(models, arrays.pair_i, arrays.pair_j, wins_i + tied > 0, wins_j + tied > 0)
        solution = davidson(len(models), arrays.pair_i, arrays.pair_j, wins_i, wins_j, tied,
                            alpha=alpha, initial_params=start)
        log_nu = solution.log_nu
    theta = solution.theta

    transform, offset = rating_transform(models, anchor)
    rating = offset + transform @ theta
    bounds, details, row_notes = None, {}, {}
    if ci == BOOTSTRAP:
        if ties == "half":
            from leaderboard.resampling.bootstrap import bootstrap_thetas  # heavy batched code, only when asked for

            replicates = bootstrap_thetas(theta, arrays, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha,
                                          progress=progress)
        else:  # Davidson: one exact refit per replicate
            from leaderboard.resampling.bootstrap_refit import davidson_replicates

            replicates = davidson_replicates(theta, arrays, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha,
                                             progress=progress)
        finite = np.all(np.isfinite(replicates), axis=1)
        covariance = np.cov(replicates[finite], rowvar=False) if finite.sum() > 1 else np.full((len(models),) * 2, np.nan)
        # elementwise, not a matrix product: replicates may hold +-inf (unbounded in that resample)
        reference = replicates[:, [models.index(anchor[0])]] if anchor is not None else 0.0
        with np.errstate(invalid="ignore"):
            bounds = percentile_bounds(offset + ELO_PER_NAT * (replicates - reference))
        details = {"n_bootstrap": n_bootstrap, "seed": seed,
                   "bootstrap_replicates_with_unbounded_models": int((~finite).sum())}
        row_notes = unbounded_notes(models, replicates, *bounds, alpha=alpha)
    elif ties == "davidson":
        covariance = davidson_sandwich_cov(theta, log_nu, arrays, alpha=alpha)
    elif ci == SANDWICH:
        covariance = sandwich_cov(theta, arrays, alpha=alpha)
    else:
        covariance = model_based_cov(theta, arrays, alpha=alpha)
    if ci == SANDWICH:
        bounds = normal_bounds(rating, transform @ covariance @ transform.T)
    if log_nu is not None:
        details["davidson_nu"] = float(np.exp(log_nu))

    lower, upper = bounds if bounds is not None else (None, None)
    return RatingResult(
        models=models, theta=theta, covariance=covariance, rating=rating, lower=lower, upper=upper,
        votes=counts.model_vote_counts(), n_votes=counts.n_votes,
        method=method_name(BRADLEY_TERRY if ties == "half" else BRADLEY_TERRY_DAVIDSON, ci),
        settings=fit_settings(ci=ci, anchor=anchor, solution=solution, ties=ties, alpha=alpha, **details),
        row_notes=row_notes,
    )


def unbounded_notes(models: list[str], replicates: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                    alpha: float) -> dict[str, str]:
    """model -> why its bootstrap interval is unbounded and what to do, for the models with an
    infinite bound: how many of the (B, M) ``replicates`` had no finite estimate for it."""
    without = (~np.isfinite(replicates)).sum(axis=0)
    notes = {}
    for k, name in enumerate(models):
        ends = [end for end, value in (("lower", lower[k]), ("upper", upper[k])) if not np.isfinite(value)]
        if not ends:
            continue
        prior = (f"a larger --alpha than {alpha:g}" if alpha > 0 else "--alpha > 0 (e.g. --alpha 0.01)")
        notes[name] = (f"{' and '.join(ends)} bound unbounded: {int(without[k])} of {len(replicates)} bootstrap "
                       "replicates had no finite estimate for this model (in them it won every comparison, or "
                       f"lost every one); more votes for it, or {prior}, bound it")
    return notes


def _informative_pairs(arrays: PairArrays) -> PairArrays:
    """Drop pairs whose votes all have weight 0 (they compare nothing)."""
    keep = arrays.weight.sum(axis=1) > 0
    if keep.all():
        return arrays
    return PairArrays(arrays.n_models, arrays.pair_i[keep], arrays.pair_j[keep], arrays.count[keep],
                      arrays.weight[keep], arrays.weight_sq[keep])

