"""``top-k``: ``active`` aimed at identifying (and ordering) the best ``top`` models.

Only pairs that can change who is in the top ``top`` or their order count: pairs with at least
one model currently ranked in the top ``top``. Their weight is the same expected drop in
P(mis-ordered) as ``active``; a model wrongly ranked low still gets votes through its pair with
the current top models, as long as there is a real chance it belongs above them. Everything
else is left to the fairness floor.
"""

from __future__ import annotations

import numpy as np

from arena.matchmaker.active import active_pair_weights
from arena.matchmaker.state import RatingState


def top_k_pair_weights(state: RatingState, top: int = 5, criterion: str = "kg",
                       active_weights: np.ndarray | None = None) -> np.ndarray:
    """``active_weights`` (the active strategy's, if already computed) are reused."""
    order = np.argsort(-state.mean, kind="stable")
    in_top = np.zeros(len(order), dtype=bool)
    in_top[order[: max(1, min(top, len(order) - 1))]] = True
    weights = active_pair_weights(state, criterion) if active_weights is None else active_weights
    return weights * (in_top[:, None] | in_top[None, :])
