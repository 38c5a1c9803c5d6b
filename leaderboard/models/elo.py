"""Online Elo: the classic sequential rating update, for comparison and for the moment before the
first Bradley-Terry fit.

Unlike Bradley-Terry, online Elo depends on the order of the votes and has no confidence
intervals; it is kept because people know it and because it needs no fit. Ratings are in rating
points (``initial`` is the starting rating, ``scale`` points per factor of ``base`` in the odds).

Update for one vote between A and B, with ``score_a`` = 1 (A won), 0 (B won) or 0.5 (either kind
of tie)::

    expected_a = 1 / (1 + base ** ((rating_b - rating_a) / scale))
    rating_a += k * (score_a - expected_a)
    rating_b -= k * (score_a - expected_a)

Each update is zero-sum, so the mean rating stays at ``initial``. ``leaderboard.models.result.elo_result``
turns the ratings into the RatingResult every fitter returns (method ``elo``); this module stays
the bare algorithm, light to import (the matchmaker and the simulator use it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leaderboard.data.events import MODEL_A, MODEL_B, PAIRWISE_OUTCOMES, TIE, TIE_BOTHBAD, check_outcome

# Score of model A for each LMArena outcome string; both kinds of tie are half a win each way.
SCORE_A = {MODEL_A: 1.0, MODEL_B: 0.0, TIE: 0.5, TIE_BOTHBAD: 0.5}


def _check_parameters(k: float, base: float, scale: float) -> None:
    if not (math.isfinite(k) and k >= 0.0):
        raise ValueError(f"Elo k must be a finite number >= 0, got {k!r}")
    if not (math.isfinite(base) and base > 1.0):
        raise ValueError(f"Elo base must be a finite number > 1, got {base!r}")
    if not (math.isfinite(scale) and scale > 0.0):
        raise ValueError(f"Elo scale must be a finite number > 0, got {scale!r}")


class OnlineElo:
    """Sequential Elo ratings updated one vote at a time (models appear when first seen)."""

    def __init__(self, k: float = 4.0, base: float = 10.0, scale: float = 400.0, initial: float = 1000.0):
        _check_parameters(k, base, scale)
        self.k = k
        self.base = base
        self.scale = scale
        self.initial = initial
        self._ratings: dict[str, float] = {}
        self._votes: dict[str, int] = {}

    def update(self, model_a: str, model_b: str, winner: str) -> None:
        """Apply one vote; ``winner`` is one of the LMArena strings (``model_a``, ``model_b``,
        ``tie``, ``tie (bothbad)``)."""
        score_a = SCORE_A[check_outcome(winner)]
        if model_a == model_b:
            raise ValueError(f"a vote needs two different models, got {model_a!r} twice")
        rating_a = self._ratings.get(model_a, self.initial)
        rating_b = self._ratings.get(model_b, self.initial)
        expected_a = 1.0 / (1.0 + math.exp((rating_b - rating_a) * math.log(self.base) / self.scale))
        delta = self.k * (score_a - expected_a)
        self._ratings[model_a] = rating_a + delta
        self._ratings[model_b] = rating_b - delta
        self._votes[model_a] = self._votes.get(model_a, 0) + 1
        self._votes[model_b] = self._votes.get(model_b, 0) + 1

    def ratings(self) -> dict[str, float]:
        """Current rating of every model seen so far (a copy)."""
        return dict(self._ratings)

    def votes(self) -> dict[str, int]:
        """Number of votes each model has taken part in (a copy)."""
        return dict(self._votes)


def online_elo(model_a, model_b, winner, *, k: float = 4.0, base: float = 10.0, scale: float = 400.0,
               initial: float = 1000.0) -> dict[str, float]:
    """Online Elo over whole vote columns, in vote order; returns ``{model: rating}``.

    ``model_a``, ``model_b`` and ``winner`` are equal-length sequences (lists, numpy arrays or
    pandas Series). Same result as feeding the votes one by one to :class:`OnlineElo`, but the
    names and outcomes are validated and turned into integers with numpy first, so the sequential
    loop only touches Python floats (about 1 s per million votes; see benchmarks/bench_extras.py).
    """
    _check_parameters(k, base, scale)
    names_a = np.asarray(model_a, dtype=object)
    names_b = np.asarray(model_b, dtype=object)
    outcomes = np.asarray(winner, dtype=object)
    if not (names_a.ndim == names_b.ndim == outcomes.ndim == 1):
        raise ValueError("model_a, model_b and winner must be one-dimensional sequences")
    if not (len(names_a) == len(names_b) == len(outcomes)):
        raise ValueError(
            f"model_a, model_b and winner must have the same length, got {len(names_a)}, "
            f"{len(names_b)} and {len(outcomes)}")
    known = np.isin(outcomes, np.array(PAIRWISE_OUTCOMES, dtype=object))
    if not known.all():
        first_bad = int(np.flatnonzero(~known)[0])
        try:
            check_outcome(outcomes[first_bad])
        except ValueError as error:
            raise type(error)(f"vote {first_bad}: {error}") from None
    same = names_a == names_b
    if same.any():
        first_bad = int(np.flatnonzero(same)[0])
        raise ValueError(f"vote {first_bad}: a vote needs two different models, got {names_a[first_bad]!r} twice")

    # pandas' hash-based factorize is ~20x faster than np.unique on a million strings.
    codes, models = pd.factorize(np.concatenate([names_a, names_b]))
    if (codes < 0).any():
        first_bad = int(np.flatnonzero(codes < 0)[0]) % max(len(names_a), 1)
        raise ValueError(f"vote {first_bad}: a model name is missing ({names_a[first_bad]!r} vs "
                         f"{names_b[first_bad]!r}); drop or fix that vote")
    n_votes = len(names_a)
    index_a = codes[:n_votes].tolist()
    index_b = codes[n_votes:].tolist()
    score_a = np.select([outcomes == MODEL_A, outcomes == MODEL_B], [1.0, 0.0], 0.5).tolist()

    # A plain Python loop over ints and floats: each update depends on the previous one, so it
    # cannot be vectorised, and Python floats are several times faster than numpy scalars here.
    ratings = [float(initial)] * len(models)
    log_base_over_scale = math.log(base) / scale
    exp = math.exp
    for i, j, s in zip(index_a, index_b, score_a):
        delta = k * (s - 1.0 / (1.0 + exp((ratings[j] - ratings[i]) * log_base_over_scale)))
        ratings[i] += delta
        ratings[j] -= delta
    return dict(zip(list(models), ratings))
