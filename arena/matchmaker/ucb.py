"""``ucb``: K-Sort Arena style exploration-exploitation for K-wise (and pairwise) battles.

The battle is anchored on the least-played model (ties shared equally); the other seats go to
models close to it in strength, plus an upper-confidence exploration bonus for models with few
battles: weight_ij = exp(-|mu_i - mu_j| / closeness) + bonus * (b_i + b_j), with
b = sqrt(log(1 + N) / (1 + n)). Seats after the second are drawn by affinity to everyone
already seated, so a K-set is a cluster of near-equals.
"""

from __future__ import annotations

import numpy as np

from arena.matchmaker.state import RatingState


def ucb_pair_weights(state: RatingState, closeness: float = 0.5, bonus: float = 1.0) -> np.ndarray:
    gap = np.abs(state.mean[:, None] - state.mean[None, :])
    total = float(state.votes.sum())
    exploration = np.sqrt(np.log1p(total) / (1.0 + state.votes))
    weights = np.exp(-gap / closeness) + bonus * (exploration[:, None] + exploration[None, :])
    np.fill_diagonal(weights, 0.0)
    return weights


def least_played_first(state: RatingState) -> np.ndarray:
    """First-seat weights: 1 on each least-played model, 0 elsewhere."""
    return (state.votes == state.votes.min()).astype(float)
