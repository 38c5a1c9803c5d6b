"""``top-k``: ``active`` aimed at identifying (and ordering) the best ``top`` models.

Targets: every pair among the current best 2 * top models (order inside the top and who is at
the boundary), plus each model ranked lower against the model currently at place ``top`` (a
low-ranked model that might really belong in the top). Everything else is left to the fairness
floor.
"""

from __future__ import annotations

import numpy as np

from arena.matchmaker.active import information_weights
from arena.matchmaker.state import RatingState


def top_targets(state: RatingState, top: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-state.mean, kind="stable")
    n = len(order)
    top = max(1, min(top, n - 1))
    head = order[: min(n, 2 * top)]
    firsts, seconds = np.triu_indices(len(head), k=1)
    a, b = list(head[firsts]), list(head[seconds])
    boundary = order[top - 1]
    for other in order[len(head) :]:
        a.append(boundary)
        b.append(other)
    return np.array(a, dtype=int), np.array(b, dtype=int)


def top_k_pair_weights(state: RatingState, top: int = 5) -> np.ndarray:
    return information_weights(state, *top_targets(state, top))
