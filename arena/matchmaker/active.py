"""``active``: the pair (or K-set) with the largest expected information about the ranking.

The ranking is wrong where a pair of models is mis-ordered, so a vote is worth the expected drop
it brings in the probability that its pair is mis-ordered: a knowledge gradient for ordering,
computed from the current means and the covariance (through the variance of each pair's
difference, so transitive evidence counts). Pairs are drawn in proportion to it.

Why this and not P(wrong) x Fisher information (the simple rule in the issue, kept here as the
criterion ``pwrong-fisher`` for comparison): that rule keeps giving a pair of nearly equal
models the same weight however precisely they are already measured, so near-ties absorb votes
that cannot change the ranking much. The expected drop in P(wrong) falls as the pair's
difference variance falls, whatever its mean.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtr

from arena.matchmaker.state import MIN_VARIANCE, RatingState

# Gauss-Hermite nodes for expectations over a standard normal (weights normalised to sum to 1).
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(8)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()
CRITERIA = ("kg", "pwrong-fisher")
NEGLIGIBLE_Z = 5.0


def difference_moments(state: RatingState) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of theta_i - theta_j for every pair (n x n each)."""
    mean, cov = state.mean, state.covariance
    diag = np.diag(cov)
    gap = mean[:, None] - mean[None, :]
    variance = np.maximum(diag[:, None] + diag[None, :] - 2.0 * cov, MIN_VARIANCE)
    return gap, variance


def vote_information(gap: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Expected Fisher information of one vote on each pair, p(1 - p) at the probit-corrected
    predicted win probability (MacKay), so uncertain pairs are not treated as certain."""
    p = expit(gap / np.sqrt(1.0 + np.pi * variance / 8.0))
    return p * (1.0 - p)


def misorder_reduction(gap: np.ndarray, variance: np.ndarray, information: np.ndarray) -> np.ndarray:
    """Expected drop in P(the pair's order is wrong) from one more vote on it.

    Now the difference D ~ N(gap, v) and P(wrong) = Phi(-|gap| / sqrt v). After one vote with
    information I the posterior variance is v' = v / (1 + I v) and, before the vote is seen, the
    posterior mean is normal around ``gap`` with variance s^2 = v - v' (pre-posterior analysis),
    so the expected posterior P(wrong) is E[Phi(-|gap + s x| / sqrt v')], x ~ N(0, 1), computed
    by Gauss-Hermite quadrature.
    """
    posterior_var = variance / (1.0 + information * variance)
    shift_sd = np.sqrt(np.maximum(variance - posterior_var, 0.0))
    now = ndtr(-np.abs(gap) / np.sqrt(variance))
    moved = np.abs(gap[..., None] + shift_sd[..., None] * _HERMITE_NODES)
    after = ndtr(-moved / np.sqrt(posterior_var)[..., None]) @ _HERMITE_WEIGHTS
    return np.maximum(now - after, 0.0)


def active_pair_weights(state: RatingState, criterion: str = "kg", rows=None,
                        previous: np.ndarray | None = None) -> np.ndarray:
    """n x n symmetric weights, zero diagonal.

    ``rows``/``previous``: recompute only the rows (and columns) of the models in ``rows`` and
    take the rest from ``previous`` -- one vote moves two models, so between refits the live
    matchmaker updates O(n) pairs instead of O(n^2).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown active criterion {criterion!r}: expected one of {', '.join(CRITERIA)}")
    n = len(state.models)
    if rows is None or previous is None:
        first, second = np.triu_indices(n, 1)
        weights = np.zeros((n, n))
    else:
        rows = np.asarray(rows, dtype=int)
        first = np.repeat(rows, n)
        second = np.tile(np.arange(n), len(rows))
        keep = first != second
        first, second = first[keep], second[keep]
        weights = previous.copy()
    mean, cov = state.mean, state.covariance
    diag = np.diag(cov)
    gap = mean[first] - mean[second]
    variance = np.maximum(diag[first] + diag[second] - 2.0 * cov[first, second], MIN_VARIANCE)
    # Pairs whose order is settled beyond doubt (|gap| > 5 sd) are worth nothing: skip them.
    candidate = np.abs(gap) < NEGLIGIBLE_Z * np.sqrt(variance)
    gap, variance = gap[candidate], variance[candidate]
    information = vote_information(gap, variance)
    if criterion == "kg":
        value = misorder_reduction(gap, variance, information)
    else:
        value = ndtr(-np.abs(gap) / np.sqrt(variance)) * information
    pair_value = np.zeros(len(first))
    pair_value[candidate] = value
    weights[first, second] = pair_value
    weights[second, first] = pair_value
    np.fill_diagonal(weights, 0.0)
    return weights
