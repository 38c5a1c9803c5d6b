"""Per-vote weights: inverse-propensity weighting and per-voter caps.

An uneven matchmaker shows some pairs more often than others. That alone does not bias a correctly
specified Bradley-Terry fit, but when the choice of pair depends on things that also move the
outcome (the prompt, the voter, a model's current form), the votes over-represent those
situations. Weighting each vote by 1 / (the probability its battle was chosen) restores the
population the ratings are meant to describe (Horvitz-Thompson). A per-voter cap stops one very
active voter from dominating. Weights are rescaled to mean 1 so they read like vote counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class WeightError(ValueError):
    """A weighting option that the votes cannot support (e.g. no selection probabilities)."""


def vote_weights(df: pd.DataFrame, *, inverse_propensity: bool = True, voter_cap: float | None = None,
                 propensity_column: str = "selection_probability", voter_column: str | None = None) -> np.ndarray:
    """(N,) weights for the rows of ``df``, mean 1.

    inverse_propensity: weight 1 / selection_probability where the column exists (a file without
    it, e.g. public LMArena data, gets weight 1 everywhere). voter_cap: a voter's votes together
    weigh at most this many votes (each of their votes is scaled by cap / their count); needs a
    voter column (``voter_id``, or LMArena's ``judge``).
    """
    weights = np.ones(len(df))
    if len(df) == 0:
        return weights
    if inverse_propensity and propensity_column in df.columns:
        probability = pd.to_numeric(df[propensity_column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(probability) & (probability > 0) & (probability <= 1))
        if bad.any():
            first = np.flatnonzero(bad)[0]
            raise WeightError(
                f"column {propensity_column!r}: row {df.index[first]!r} has {df[propensity_column].iloc[first]!r}; "
                "a selection probability must be in (0, 1]. Fix those rows or fit without inverse-propensity weights."
            )
        weights = weights / probability
    if voter_cap is not None:
        if not voter_cap > 0:
            raise WeightError(f"voter cap must be > 0, got {voter_cap!r}")
        column = voter_column or next((c for c in ("voter_id", "judge") if c in df.columns), None)
        if column is None or column not in df.columns:
            raise WeightError("a per-voter cap needs a voter column ('voter_id' or 'judge'); these votes have none")
        codes, _ = pd.factorize(df[column])
        per_voter = np.bincount(codes[codes >= 0], minlength=codes.max() + 1).astype(np.float64)
        votes_of_voter = np.where(codes >= 0, per_voter[np.maximum(codes, 0)], 1.0)  # unknown voter: no cap
        weights = weights * np.minimum(1.0, voter_cap / votes_of_voter)
    return weights / weights.mean()
