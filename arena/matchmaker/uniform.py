"""Uniform pairing: every unordered k-subset of the available models is equally likely."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from arena.matchmaker.selection import Selection, check_available, shuffled_display_order


def uniform_set_probability(n_available: int, k: int) -> float:
    """Probability of any one unordered k-subset out of ``n_available`` under uniform pairing."""
    return 1.0 / math.comb(n_available, k)


class UniformMatchmaker:
    """The classic baseline: no state, every k-subset equally likely."""

    strategy = "uniform"

    def choose(
        self, available: Sequence[str], k: int = 2, rng: np.random.Generator | None = None
    ) -> Selection:
        names = check_available(available, k)
        rng = rng if rng is not None else np.random.default_rng()
        picked = rng.choice(len(names), size=k, replace=False)
        models = shuffled_display_order([names[i] for i in picked], rng)
        return Selection(models, uniform_set_probability(len(names), k), self.strategy)
