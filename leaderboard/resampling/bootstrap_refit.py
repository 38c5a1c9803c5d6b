"""The bootstrap by exact refits, for any rating model (leaderboard.models.base.RatingModel).

The model draws its resamples (:meth:`~leaderboard.models.base.RatingModel.resample`: Davidson's
per-(pair, outcome) cells and style control's per-vote multipliers are the Poisson bootstrap,
Plackett-Luce's a multinomial over its votes) and refits each one exactly
(:meth:`~leaderboard.models.base.RatingModel.refit`), warm-started at the full-data estimate.
Plain Bradley-Terry has the faster batched bootstrap (leaderboard.resampling.bootstrap).

Replicates come in chunks drawn from the children of ``SeedSequence(seed)``
(leaderboard.resampling.replicates), or, for a model that says ``one_generator``, all from
``default_rng(seed)``. A replicate whose maximum-likelihood estimate does not exist has its
runaway models at +-inf (NaN where undetermined), so their percentile bounds come out unbounded
(``leaderboard.fit.unbounded_notes`` says how often). Costs one exact fit per replicate;
``progress`` shows a tqdm bar on stderr.
"""

from __future__ import annotations

import numpy as np

from leaderboard.models.base import Estimate, RatingModel
from leaderboard.resampling.replicates import progress_bar, replicate_chunks


def refit_replicates(model: RatingModel, estimate: Estimate, *, n_bootstrap: int = 1000, seed: int = 0,
                     progress: bool = False) -> np.ndarray:
    """(n_bootstrap, parameters) replicates of ``estimate.params`` (theta first: nats, mean 0 over
    the finite entries)."""
    out = np.empty((n_bootstrap, estimate.params.shape[0]))
    if model.one_generator:
        chunks = [(0, n_bootstrap, np.random.default_rng(seed))]
    else:
        chunks = replicate_chunks(n_bootstrap, seed)
    with progress_bar(n_bootstrap, progress, model.bootstrap_label) as bar:
        for start, size, rng in chunks:
            for b, draw in enumerate(model.resample(estimate, rng, size)):
                out[start + b] = model.refit(estimate, draw)
                bar.update(1)
    return out
