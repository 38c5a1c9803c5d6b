"""``ci-reduction``: the Chatbot Arena rule (Chiang et al. 2024, section 5).

A pair is sampled in proportion to how much one more vote would shrink the confidence interval
of its win rate: sqrt(s2 / n) - sqrt(s2 / (n + 1)), with n the pair's battles so far and s2 the
variance of one outcome, p(1 - p) at the current predicted win probability. A pair never played
is treated as having had one battle (the rule is undefined at n = 0).
"""

from __future__ import annotations

import numpy as np

from arena.matchmaker.active import difference_moments, vote_information
from arena.matchmaker.state import RatingState


def ci_reduction_pair_weights(state: RatingState) -> np.ndarray:
    gap, variance = difference_moments(state)
    outcome_variance = vote_information(gap, variance)
    battles = np.maximum(state.pair_votes, 1.0)
    weights = np.sqrt(outcome_variance) * (1.0 / np.sqrt(battles) - 1.0 / np.sqrt(battles + 1.0))
    np.fill_diagonal(weights, 0.0)
    return weights
