"""The matchmaker: which models meet in the next battle.

``build_matchmaker(strategy, redis_client, prefix=...)`` returns an object with
``choose(available, k, rng=None) -> Selection``. ``Selection.probability`` is the probability
of the unordered set, for inverse-propensity weighting in the rating engine.
"""

from __future__ import annotations

from arena.matchmaker.selection import Matchmaker, Selection
from arena.matchmaker.uniform import UniformMatchmaker

STRATEGIES = ("uniform",)


def build_matchmaker(strategy: str, redis_client=None, *, prefix: str = "arena", **options) -> Matchmaker:
    """The configured matchmaker. ``strategy`` is one of ``STRATEGIES``."""
    if strategy == "uniform":
        return UniformMatchmaker()
    raise ValueError(f"unknown matchmaker strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")


__all__ = ["Matchmaker", "Selection", "STRATEGIES", "build_matchmaker"]
