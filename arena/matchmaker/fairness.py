"""Fairness and operations, applied on top of any strategy as a mixture of set distributions.

- ``floor``: every available model keeps at least ``floor`` times its equal share (k / n) of
  battles: a ``floor`` part of the mixture is uniform over all k-sets.
- new models: a model with fewer than ``new_model_votes`` battles (and fewer than half the
  median model's) whose 95% interval is still wider than +-``new_model_ci`` rating points is
  boosted: a ``boost_share`` part of the mixture seats a boosted model first and fills the other
  seats by the strategy's pair weights.
- ``max_pair_share``: no pair gets more than this share of the strategy's own battles (a cap on
  its normalised pair weights, excess spread over the other pairs in proportion to their
  weights; at least twice an equal share, so 2/3 with 3 models). With 50 models it binds only for
  ``top-k``; with 5 (10 pairs) an adaptive strategy would otherwise show voters the same two
  models in most battles.
- ``pins``: operator-pinned sets, each with the share of battles it must get; a pin with fewer
  than k models has its other seats filled uniformly.
- exclusions (failing, over capacity, paused) are applied before any of this: excluded models are
  not in the candidate list at all, so their probability is exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arena.matchmaker.sets import MixtureSets, PinnedSets, SetDistribution, UniformSets, WeightedSets
from leaderboard.models.sandwich import Z_95
from leaderboard.models.scale import ELO_PER_NAT


@dataclass(frozen=True)
class FairnessPolicy:
    floor: float = 0.1
    boost_share: float = 0.5
    new_model_votes: int = 300
    new_model_ci: float = 40.0
    max_pair_share: float = 0.2
    pins: tuple[tuple[tuple[str, ...], float], ...] = ()

    def __post_init__(self):
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError(f"floor={self.floor}: must be a share between 0 and 1")
        if not 0.0 <= self.boost_share <= 1.0:
            raise ValueError(f"boost_share={self.boost_share}: must be a share between 0 and 1")
        if not 0.0 < self.max_pair_share <= 1.0:
            raise ValueError(f"max_pair_share={self.max_pair_share}: must be a share in (0, 1]")
        if self.new_model_votes < 0 or self.new_model_ci < 0:
            raise ValueError("new_model_votes and new_model_ci must be >= 0")
        pinned_total = 0.0
        for members, share in self.pins:
            if len(set(members)) != len(members) or not members:
                raise ValueError(f"pin {members!r}: name one or more distinct models")
            if not 0.0 < share <= 1.0:
                raise ValueError(f"pin {members!r}: share {share} must be in (0, 1]")
            pinned_total += share
        if pinned_total + self.floor > 1.0:
            raise ValueError(f"pins ({pinned_total}) plus floor ({self.floor}) exceed all battles")

    def boosted(self, votes: np.ndarray, variance: np.ndarray) -> np.ndarray:
        """Mask of models still being placed: fewer than ``new_model_votes`` battles, interval
        wider than ``new_model_ci``, and new relative to the field (fewer than half the median
        model's battles), so that a whole arena starting from nothing is not all "new"."""
        half_width = Z_95 * np.sqrt(np.maximum(variance, 0.0)) * ELO_PER_NAT
        newcomer = votes < 0.5 * np.median(votes)
        return (votes < self.new_model_votes) & (half_width > self.new_model_ci) & newcomer


def capped_pair_weights(weights: np.ndarray, max_share: float) -> np.ndarray:
    """``weights`` (symmetric, n x n) with no pair above ``max_share`` of the total, the excess
    handed to the uncapped pairs in proportion to their weights (water-filling). With very few
    pairs the cap is raised to twice an equal share (3 models: 2/3), so a strategy still has room
    to prefer one pair."""
    n = weights.shape[0]
    n_pairs = n * (n - 1) // 2
    if n_pairs == 0:
        return weights
    max_share = max(max_share, min(1.0, 2.0 / n_pairs))
    # Fast path, every choice at 200 models: the weights are symmetric with a zero diagonal, so
    # the pairs' total is half the matrix's and the cap rarely binds.
    total = 0.5 * (weights.sum() - np.trace(weights))
    if total <= 0 or weights.max() <= max_share * total:
        return weights
    upper = np.triu_indices(n, 1)
    values = np.maximum(weights[upper], 0.0)
    shares = values / values.sum()
    capped = np.zeros(len(values), dtype=bool)
    while True:
        over = ~capped & (shares > max_share * (1.0 + 1e-12))
        if not over.any():
            break
        capped |= over
        free = ~capped
        shares[capped] = max_share
        # The uncapped pairs share what is left, in proportion to their original weights.
        base = values[free] if values[free].sum() > 0 else np.ones(free.sum())
        shares[free] = base / base.sum() * (1.0 - max_share * capped.sum())
    out = np.zeros_like(weights, dtype=float)
    out[upper] = shares
    return out + out.T


def fair_distribution(
    policy: FairnessPolicy,
    models: Sequence[str],
    k: int,
    strategy_component: SetDistribution,
    pair_weights: np.ndarray | None,
    boosted: np.ndarray,
) -> SetDistribution:
    """The mixture: pins, the uniform floor, the new-model boost and the strategy itself.

    ``pair_weights`` (None for a weightless strategy such as uniform, which gets no boost) fills
    the seats beside a boosted model.
    """
    n = len(models)
    index = {name: i for i, name in enumerate(models)}
    components: list[SetDistribution] = []
    shares: list[float] = []
    for members, share in policy.pins:
        if len(members) <= k and all(m in index for m in members):
            components.append(PinnedSets(n, k, [index[m] for m in members]))
            shares.append(share)
    remaining = 1.0 - sum(shares)
    floor = min(policy.floor, remaining)
    if floor > 0:
        components.append(UniformSets(n, k))
        shares.append(floor)
    remaining -= floor
    boost = policy.boost_share if pair_weights is not None and 0 < boosted.sum() < n else 0.0
    if boost > 0:
        components.append(WeightedSets(pair_weights, k, first_weights=boosted.astype(float)))
        shares.append(remaining * boost)
    components.append(strategy_component)
    shares.append(remaining * (1.0 - boost))
    return MixtureSets(components, shares)
