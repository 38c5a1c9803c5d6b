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
from scipy.special import ndtr

from arena.matchmaker.state import MIN_VARIANCE, RatingState, sigmoid

# Gauss-Hermite nodes for expectations over a standard normal (weights normalised to sum to 1).
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(10)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()
CRITERIA = ("kg", "pwrong-fisher")


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
    p = sigmoid(gap / np.sqrt(1.0 + np.pi * variance / 8.0))
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


def active_pair_weights(state: RatingState, criterion: str = "kg") -> np.ndarray:
    """n x n symmetric weights, zero diagonal."""
    gap, variance = difference_moments(state)
    information = vote_information(gap, variance)
    if criterion == "kg":
        weights = misorder_reduction(gap, variance, information)
    elif criterion == "pwrong-fisher":
        weights = ndtr(-np.abs(gap) / np.sqrt(variance)) * information
    else:
        raise ValueError(f"unknown active criterion {criterion!r}: expected one of {', '.join(CRITERIA)}")
    np.fill_diagonal(weights, 0.0)
    return weights
