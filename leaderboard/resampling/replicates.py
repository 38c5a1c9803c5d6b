"""How bootstrap replicates are drawn in chunks and shown, for both bootstraps.

The batched bootstrap (leaderboard.resampling.bootstrap) and the exact-refit one
(leaderboard.resampling.bootstrap_refit) draw their replicates in chunks of ``CHUNK_REPLICATES``,
chunk k from the k-th child of ``SeedSequence(seed)``, so the replicates depend only on
(seed, n_bootstrap): not on memory, on the number of threads, nor on the order in which chunks
finish. (A model may draw every replicate from one generator instead: see
leaderboard.models.base.RatingModel.one_generator.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

CHUNK_REPLICATES = 100  # fixed, so results depend only on (seed, n_bootstrap), not on memory or threads


def replicate_chunks(n_bootstrap: int, seed: int) -> list[tuple[int, int, np.random.Generator]]:
    """(first replicate, number of replicates, generator) of each chunk, in order; each chunk has
    its own generator, so chunks may run on different threads."""
    n_chunks = -(-n_bootstrap // CHUNK_REPLICATES)
    chunks = []
    for chunk, stream in enumerate(np.random.SeedSequence(seed).spawn(n_chunks)):
        start = chunk * CHUNK_REPLICATES
        chunks.append((start, min(CHUNK_REPLICATES, n_bootstrap - start), np.random.default_rng(stream)))
    return chunks


class _Hidden:
    def update(self, replicates: int) -> None:
        pass


@contextmanager
def progress_bar(total: int, shown: bool, description: str) -> Iterator:
    """A tqdm bar on stderr counting ``total`` replicates when ``shown``, else one that shows
    nothing; either way ``bar.update(replicates)`` as chunks finish."""
    if not shown:
        yield _Hidden()
        return
    from tqdm import tqdm  # only when a bar is wanted

    with tqdm(total=total, desc=description, unit="replicate", file=sys.stderr) as bar:
        yield bar
