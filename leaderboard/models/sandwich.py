"""Uncertainty of Bradley-Terry ratings: sandwich (robust) covariance and percentile helpers.

Sandwich: cov = H^+ B H^+ with H the information and B the sum over votes of the outer product
of each vote's score w * (y - p_ij) (e_i - e_j). A vote's outcome y takes only three values
(1, 0, 1/2), so B is computed exactly from per-pair, per-outcome sums of squared weights
(PairArrays.weight_sq) without a pass over the votes. Everything is in natural-log units, for the
mean-zero parameterisation of theta.
"""

from __future__ import annotations

import numpy as np

from leaderboard.data.counts import PairArrays
from leaderboard.models.bradley_terry import (
    bt_information,
    constrained_inverse,
    davidson_class_scores,
    davidson_information,
    half_tie_scores,
    laplacian,
    scatter_pairs,
)

Z_95 = 1.959963984540054  # two-sided 95% normal quantile

# the outcome y of one vote for the lower-index model, per class (I_WINS, J_WINS, TIE)
_HALF_TIE_OUTCOME = np.array([1.0, 0.0, 0.5])


def sandwich_cov(theta: np.ndarray, arrays: PairArrays, *, alpha: float = 0.0) -> np.ndarray:
    """Robust (M, M) covariance of mean-zero theta for the half-tie Bradley-Terry fit."""
    _, totals = half_tie_scores(arrays)
    p = 1.0 / (1.0 + np.exp(theta[arrays.pair_j] - theta[arrays.pair_i]))
    squared_residual = (_HALF_TIE_OUTCOME[None, :] - p[:, None]) ** 2
    meat = laplacian(arrays.n_models, arrays.pair_i, arrays.pair_j, (arrays.weight_sq * squared_residual).sum(axis=1))
    bread = constrained_inverse(bt_information(theta, arrays.pair_i, arrays.pair_j, totals, alpha), alpha=alpha)
    return centred(bread @ meat @ bread)


def davidson_sandwich_cov(theta: np.ndarray, log_nu: float, arrays: PairArrays, *, alpha: float = 0.0) -> np.ndarray:
    """Robust (M, M) covariance of mean-zero theta under the Davidson tie model (nu profiled in)."""
    n_models = arrays.n_models
    weights = arrays.weight
    info = davidson_information(theta, log_nu, arrays.pair_i, arrays.pair_j,
                                weights[:, 0], weights[:, 1], weights[:, 2], alpha)
    score_d, score_nu = davidson_class_scores(theta, log_nu, arrays.pair_i, arrays.pair_j)
    meat = np.zeros((n_models + 1, n_models + 1))
    meat[:n_models, :n_models] = laplacian(n_models, arrays.pair_i, arrays.pair_j,
                                           (arrays.weight_sq * score_d**2).sum(axis=1))
    cross = scatter_pairs(n_models, arrays.pair_i, arrays.pair_j, (arrays.weight_sq * score_d * score_nu).sum(axis=1))
    meat[:n_models, n_models] = cross
    meat[n_models, :n_models] = cross
    meat[n_models, n_models] = float((arrays.weight_sq * score_nu**2).sum())
    bread = constrained_inverse(info, n_free=n_models, alpha=alpha)
    return centred((bread @ meat @ bread)[:n_models, :n_models])


def model_based_cov(theta: np.ndarray, arrays: PairArrays, *, alpha: float = 0.0) -> np.ndarray:
    """Inverse-information (M, M) covariance of mean-zero theta (correct when weights are 1)."""
    _, totals = half_tie_scores(arrays)
    return centred(constrained_inverse(bt_information(theta, arrays.pair_i, arrays.pair_j, totals, alpha), alpha=alpha))


def normal_bounds(estimate: np.ndarray, covariance: np.ndarray, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    half_width = z * np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    return estimate - half_width, estimate + half_width


def percentile_bounds(replicates: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of (B, M) replicates.

    Replicates may hold +-inf (a resample in which a model's strength is unbounded) and NaN
    (undetermined: unbounded both ways). Bounds are order statistics ("inverted_cdf"), so they
    never interpolate with an infinity: a bound is infinite only when more than the tail share
    of replicates are.
    """
    tail = 100.0 * (1.0 - level) / 2.0
    undetermined = np.isnan(replicates)
    lower = np.percentile(np.where(undetermined, -np.inf, replicates), tail, axis=0, method="inverted_cdf")
    upper = np.percentile(np.where(undetermined, np.inf, replicates), 100.0 - tail, axis=0, method="inverted_cdf")
    return lower, upper


def centred(covariance: np.ndarray) -> np.ndarray:
    """C @ cov @ C with C = I - 11^T/M, in O(M^2): subtract row and column means, add the grand mean."""
    row_mean = covariance.mean(axis=1, keepdims=True)
    col_mean = covariance.mean(axis=0, keepdims=True)
    out = covariance - row_mean - col_mean + covariance.mean()
    return 0.5 * (out + out.T)
