"""Strategy name -> distribution over k-sets for a given belief: the one function both the live
matchmaker and the simulator call, so the simulator measures exactly what the arena runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arena.matchmaker.active import active_pair_weights
from arena.matchmaker.ci_reduction import ci_reduction_pair_weights
from arena.matchmaker.fairness import FairnessPolicy, capped_pair_weights, fair_distribution
from arena.matchmaker.sets import SetDistribution, UniformSets, WeightedSets
from arena.matchmaker.state import RatingState
from arena.matchmaker.topk import top_k_pair_weights
from arena.matchmaker.ucb import least_played_first, ucb_pair_weights

STRATEGIES = ("uniform", "ci-reduction", "active", "top-k", "ucb")
DEFAULT_STRATEGY = "active"


@dataclass(frozen=True)
class StrategyOptions:
    """Knobs of the strategies (the defaults are what the benchmark reports)."""

    criterion: str = "kg"  # active and top-k: 'kg' (expected drop in P(mis-ordered)) or 'pwrong-fisher'
    top: int = 5  # top-k: how many best models to identify
    closeness: float = 0.5  # ucb: nats
    bonus: float = 1.0  # ucb: exploration weight
    fairness: FairnessPolicy = field(default_factory=FairnessPolicy)


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown matchmaker strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    return strategy


def selection_distribution(
    strategy: str, state: RatingState, k: int, options: StrategyOptions | None = None,
    active_weights: np.ndarray | None = None,
) -> SetDistribution:
    """The distribution over unordered k-sets of ``state.models`` (indices into that list).

    ``active_weights``: the active criterion's pair weights for ``state`` if the caller keeps
    them up to date incrementally (active and top-k only; computed here otherwise)."""
    options = options or StrategyOptions()
    n = len(state.models)
    if n < k:
        raise ValueError(f"only {n} models for a battle of k={k}")
    check_strategy(strategy)
    if strategy == "uniform":
        return fair_distribution(options.fairness, state.models, k, UniformSets(n, k), None, np.zeros(n, bool))
    first = None
    if strategy == "active":
        weights = active_pair_weights(state, options.criterion) if active_weights is None else active_weights
    elif strategy == "top-k":
        weights = top_k_pair_weights(state, options.top, options.criterion, active_weights)
    elif strategy == "ci-reduction":
        weights = ci_reduction_pair_weights(state)
    else:
        weights = ucb_pair_weights(state, options.closeness, options.bonus)
        first = least_played_first(state)
    weights = capped_pair_weights(weights, options.fairness.max_pair_share)
    component = WeightedSets(weights, k, first_weights=first)
    boosted = options.fairness.boosted(state.votes, state.variance)
    return fair_distribution(options.fairness, state.models, k, component, component.pair_weights, boosted)
