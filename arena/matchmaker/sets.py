"""Distributions over unordered k-sets of model indices, each able to say exactly how likely
any set is.

Every strategy is expressed as one of these (or a mixture of them), so the probability recorded
with a battle is the true probability of that unordered set under the distribution it was drawn
from, which is what inverse-propensity weighting needs.

Sets are built sequentially: a first model, then each further model with weight equal to the sum
of its pair weights to the models already chosen (so a K-set forms a cluster of mutually
informative models). The probability of an unordered set is the sum over its k! orders of the
product of the sequential choice probabilities; for k <= 5 that is at most 120 short products.
For k = 2 with the first model drawn in proportion to its row sum, P({i, j}) = W_ij / sum_{a<b} W_ab.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

# Weights below this fraction of the largest are lifted to it, so every set keeps a positive
# probability (a zero propensity could never be reweighted) and sampling never divides by zero.
RELATIVE_WEIGHT_FLOOR = 1e-9


class SetDistribution(Protocol):
    n_items: int
    k: int

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]: ...

    def probability(self, members: Sequence[int]) -> float: ...


def _draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    """One index with probability proportional to ``weights`` (non-negative, positive sum)."""
    cumulative = np.cumsum(weights)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, len(weights) - 1)


class UniformSets:
    """Every unordered k-subset of n items equally likely."""

    def __init__(self, n_items: int, k: int):
        self.n_items, self.k = n_items, k
        self._probability = 1.0 / math.comb(n_items, k)

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(sorted(int(i) for i in rng.choice(self.n_items, size=self.k, replace=False)))

    def probability(self, members: Sequence[int]) -> float:
        return self._probability


class WeightedSets:
    """Sequential sets from a symmetric pair-weight matrix.

    ``pair_weights``: n x n, symmetric, non-negative (the diagonal is ignored).
    ``first_weights``: weights of the first model; default the row sums of ``pair_weights``.
    A first weight of zero makes a model eligible only as a later pick (used to anchor battles on
    boosted or least-played models).
    """

    def __init__(self, pair_weights: np.ndarray, k: int, first_weights: np.ndarray | None = None):
        weights = np.array(pair_weights, dtype=float)
        n_items = weights.shape[0]
        if weights.shape != (n_items, n_items) or n_items < k:
            raise ValueError(f"pair_weights must be square with at least k={k} rows, got {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("pair_weights must be finite and non-negative")
        weights = 0.5 * (weights + weights.T)
        largest = weights.max()
        weights = np.maximum(weights, (largest if largest > 0 else 1.0) * RELATIVE_WEIGHT_FLOOR)
        np.fill_diagonal(weights, 0.0)
        self.n_items, self.k = n_items, k
        self.pair_weights = weights
        first = weights.sum(axis=1) if first_weights is None else np.asarray(first_weights, dtype=float)
        if first.shape != (n_items,) or np.any(first < 0) or not first.sum() > 0:
            raise ValueError("first_weights must be n non-negative numbers with a positive sum")
        self.first_weights = first
        self._first_total = float(first.sum())

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        chosen = [_draw(self.first_weights, rng)]
        affinity = self.pair_weights[chosen[0]].copy()
        for _ in range(self.k - 1):
            affinity[chosen] = 0.0
            nxt = _draw(affinity, rng)
            chosen.append(nxt)
            affinity += self.pair_weights[nxt]
        return tuple(sorted(chosen))

    def probability(self, members: Sequence[int]) -> float:
        members = list(members)
        if len(set(members)) != self.k:
            raise ValueError(f"expected {self.k} distinct members, got {members}")
        # Each member's weight to the models outside the set, summed directly: computing it as
        # row sum minus the weight inside the set cancels catastrophically when one pair holds
        # nearly all of its models' weight. The k x k products below run on Python floats: for
        # k <= 5 that is faster than numpy calls per permutation.
        outside = np.ones(self.n_items, dtype=bool)
        outside[members] = False
        out = self.pair_weights[np.ix_(members, np.flatnonzero(outside))].sum(axis=1).tolist()
        w = self.pair_weights[np.ix_(members, members)].tolist()
        first_share = (self.first_weights[members] / self._first_total).tolist()
        total = 0.0
        for order in itertools.permutations(range(self.k)):
            p = first_share[order[0]]
            if p == 0.0:
                continue
            # Affinity mass available at each step: the chosen models' weight to every model not
            # yet chosen (outside the set, or members still to come).
            for step in range(1, self.k):
                chosen, rest = order[:step], order[step:]
                available = sum(out[c] for c in chosen) + sum(w[c][r] for c in chosen for r in rest)
                p *= sum(w[c][order[step]] for c in chosen) / available
            total += p
        return float(total)


class PinnedSets:
    """Sets containing every member of ``pinned``; the remaining seats filled uniformly."""

    def __init__(self, n_items: int, k: int, pinned: Sequence[int]):
        pinned = tuple(sorted(set(int(i) for i in pinned)))
        if not 1 <= len(pinned) <= k:
            raise ValueError(f"a pin needs 1..k={k} models, got {len(pinned)}")
        self.n_items, self.k, self.pinned = n_items, k, pinned
        self._others = np.array([i for i in range(n_items) if i not in pinned])
        self._probability = 1.0 / math.comb(len(self._others), k - len(pinned))

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        fill = rng.choice(self._others, size=self.k - len(self.pinned), replace=False)
        return tuple(sorted([*self.pinned, *(int(i) for i in fill)]))

    def probability(self, members: Sequence[int]) -> float:
        return self._probability if set(self.pinned) <= set(members) else 0.0


class MixtureSets:
    """Draw a component with the given weight, then a set from it."""

    def __init__(self, components: Sequence[SetDistribution], weights: Sequence[float]):
        weights = np.asarray(weights, dtype=float)
        keep = weights > 0
        if not keep.any():
            raise ValueError("a mixture needs at least one component with positive weight")
        self.components = [c for c, kept in zip(components, keep) if kept]
        self.weights = weights[keep] / weights[keep].sum()
        self.n_items, self.k = self.components[0].n_items, self.components[0].k

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return self.components[_draw(self.weights, rng)].sample(rng)

    def probability(self, members: Sequence[int]) -> float:
        return float(sum(w * c.probability(members) for c, w in zip(self.components, self.weights)))


def inclusion_probabilities(distribution: SetDistribution) -> np.ndarray:
    """P(model i is in the battle), by enumerating every set (small n only: tests and reports)."""
    shares = np.zeros(distribution.n_items)
    for members in itertools.combinations(range(distribution.n_items), distribution.k):
        shares[list(members)] += distribution.probability(members)
    return shares
