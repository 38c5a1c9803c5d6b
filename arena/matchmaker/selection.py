"""What a matchmaker returns, and the interface every strategy implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Selection:
    """One chosen battle.

    ``models`` are in display order (A, B, ...), shuffled so that position carries no
    information; ``probability`` is the probability with which this *unordered* set was
    chosen, recorded with the vote so the rating engine can reweight by its inverse.
    """

    models: tuple[str, ...]
    probability: float
    strategy: str


@runtime_checkable
class Matchmaker(Protocol):
    def choose(
        self, available: Sequence[str], k: int, rng: np.random.Generator | None = None
    ) -> Selection: ...


def check_available(available: Sequence[str], k: int) -> list[str]:
    """Validate the candidate list; return it as a list of distinct names."""
    if k < 2:
        raise ValueError(f"k={k}: a battle needs at least 2 models")
    names = list(dict.fromkeys(available))
    if len(names) != len(list(available)):
        raise ValueError(f"available models must be distinct, got {list(available)}")
    if len(names) < k:
        raise ValueError(
            f"only {len(names)} model(s) available ({names}) but a battle needs k={k}: "
            "register or unpause more models, or lower k"
        )
    return names


def shuffled_display_order(models: Sequence[str], rng: np.random.Generator) -> tuple[str, ...]:
    """Random A/B/... positions, so position bias averages out."""
    order = rng.permutation(len(models))
    return tuple(models[i] for i in order)
