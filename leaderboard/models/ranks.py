"""Rank intervals from rating intervals, as on the LMArena leaderboard."""

from __future__ import annotations

import numpy as np


def rank_intervals(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst plausible rank of each model from its interval [lower, upper].

    ``rank`` (the number LMArena shows, "rank (upper bound)") = 1 + number of models whose lower
    bound exceeds this model's upper bound: only those are confidently better. ``rank_lower`` =
    1 + number of other models whose upper bound exceeds this model's lower bound: every one of
    them might be better. O(M log M) by sorting.
    """
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    sorted_lower = np.sort(lower)
    sorted_upper = np.sort(upper)
    n = lower.shape[0]
    confidently_better = n - np.searchsorted(sorted_lower, upper, side="right")
    possibly_better = n - np.searchsorted(sorted_upper, lower, side="right")
    # a model's own upper bound exceeds its own lower bound unless the interval is a point
    possibly_better -= (upper > lower).astype(np.int64)
    return (1 + confidently_better).astype(np.int64), (1 + possibly_better).astype(np.int64)
