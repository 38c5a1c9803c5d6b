"""Exact Poisson draws for the bootstrap, fast when many cells share a mean.

The Poisson bootstrap draws, for every (pair, outcome) cell and every replicate, a Poisson count
whose mean is the cell's vote count. On LMArena-shaped data (every pair played, most pairs with a
few dozen votes) most cells have a small integer mean, where numpy's sampler is slowest (Knuth's
multiplication method below mean 10, 40-50 ns a draw on the project machine; PTRS above, ~30 ns).
Cells that share one mean are drawn instead by inversion of that mean's cumulative distribution
table: one uniform per draw, mapped to its count through a guide table (the count at the start of
each of 4,096 equal slices of [0, 1), then one comparison; a binary search in the few slices that
hold two or more table entries). That is the same distribution (up to the rounding of the table,
~1e-16 per probability) for ~6 ns a draw, worked in blocks that stay in the CPU cache. Other cells
(means that few cells share, such as the non-integer means of weighted votes) use numpy's sampler.

Draws depend only on (means, n_replicates, the generator's state): the bootstrap gives every chunk
of replicates its own generator, so results do not depend on how chunks are spread over threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GUIDE_SLICES = 4096       # a power of two: floor(u * 4096) is exact; the guide (32 KB) stays in L1/L2
TABLE_MAX_MEAN = 1024.0   # table length grows with the mean (mean + 12 sqrt(mean) + 20 entries)
TABLE_MIN_DRAWS = 8192    # a table costs ~50 us to build; below this many draws numpy's sampler is as fast
BLOCK_DRAWS = 65536       # draws per block: its few arrays (2 MB) fit in L2, and each numpy call is long enough
                          # (~0.1 ms) that worker threads seldom wait for the GIL between calls


@dataclass(frozen=True)
class InversionTable:
    """Poisson(mean) by inversion: cdf[k] = P(X <= k) (last entry 1.0, the tail beyond it < 1e-20);
    guide[s] = the count for u = s / GUIDE_SLICES; several[s]: slice s holds two or more cdf entries."""

    cdf: np.ndarray
    guide: np.ndarray
    several: np.ndarray

    @classmethod
    def for_mean(cls, mean: float) -> InversionTable:
        last = int(np.ceil(mean + 12.0 * np.sqrt(mean) + 20.0))
        ratios = np.full(last + 1, float(mean))
        ratios[1:] /= np.arange(1, last + 1)
        ratios[0] = np.exp(-mean)
        cdf = np.cumsum(np.cumprod(ratios))  # pmf by the recursion p_k = p_{k-1} * mean / k
        cdf[-1] = 1.0  # every u in [0, 1) maps to a count <= last
        edges = np.arange(GUIDE_SLICES + 1) / GUIDE_SLICES
        guide = np.searchsorted(cdf, edges[:-1], side="right")
        several = np.searchsorted(cdf, edges[1:], side="left") - guide >= 2
        return cls(cdf, guide.astype(np.intp), several)

    def counts(self, uniform: np.ndarray, out: np.ndarray, scratch: _Scratch) -> None:
        """out[k] = #{j : cdf[j] <= uniform[k]} (1-D arrays of one length), i.e. the inverse CDF."""
        n = uniform.size
        slice_index, count, bound, flag = (scratch.slice_index[:n], scratch.count[:n], scratch.bound[:n],
                                           scratch.flag[:n])
        np.multiply(uniform, GUIDE_SLICES, out=slice_index, casting="unsafe")  # floor: u >= 0
        np.take(self.guide, slice_index, out=count)
        np.take(self.cdf, count, out=bound)
        np.greater_equal(uniform, bound, out=flag)
        np.add(count, flag, out=count, casting="unsafe")
        np.take(self.several, slice_index, out=flag)
        hard = np.flatnonzero(flag)
        if hard.size:
            count[hard] = np.searchsorted(self.cdf, uniform[hard], side="right")
        out[...] = count


@dataclass
class _Scratch:
    uniform: np.ndarray
    slice_index: np.ndarray
    count: np.ndarray
    bound: np.ndarray
    flag: np.ndarray

    @classmethod
    def of_size(cls, n: int) -> _Scratch:
        return cls(np.empty(n), np.empty(n, np.intp), np.empty(n, np.intp), np.empty(n), np.empty(n, bool))


class PoissonSampler:
    """Independent Poisson(means[c]) counts for a fixed vector of means, drawn many times.

    The grouping of cells by mean and the inversion tables are built once (the bootstrap draws
    the same means for every chunk of replicates); read-only afterwards, so threads may share one
    sampler, each with its own generator. ``expected_draws``: how many replicates will be drawn in
    all, which decides whether a group of cells is worth a table."""

    def __init__(self, means: np.ndarray, expected_draws: int):
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 1 or not np.all(np.isfinite(means)) or np.any(means < 0):
            raise ValueError("means must be a 1-D array of finite non-negative numbers")
        self.means = means
        values, inverse, sizes = np.unique(means, return_inverse=True, return_counts=True)
        tabled = (values > 0) & (values <= TABLE_MAX_MEAN) & (sizes * expected_draws >= TABLE_MIN_DRAWS)
        order = np.argsort(inverse, kind="stable")  # cells grouped by mean, in ascending mean order
        starts = np.concatenate([[0], np.cumsum(sizes)])
        self.groups = [(InversionTable.for_mean(values[group]), order[starts[group]:starts[group + 1]])
                       for group in np.flatnonzero(tabled)]
        self.rest = np.flatnonzero(~tabled[inverse] & (means > 0))
        self.zero = np.flatnonzero(means == 0)

    def draw(self, n_replicates: int, rng: np.random.Generator, out: np.ndarray | None = None) -> np.ndarray:
        """(n_cells, n_replicates) float64 counts, into ``out`` when given (overwritten)."""
        shape = (self.means.size, n_replicates)
        if out is None:
            out = np.zeros(shape)
        elif out.shape != shape or out.dtype != np.float64:
            raise ValueError(f"out must be a float64 array of shape {shape}")
        else:
            out[self.zero] = 0.0  # every other row is written below
        if n_replicates == 0:
            return out
        rows_per_block = max(1, BLOCK_DRAWS // n_replicates)
        scratch = _Scratch.of_size(rows_per_block * n_replicates)
        counts = np.empty((rows_per_block, n_replicates))
        for table, group_rows in self.groups:
            for first in range(0, group_rows.size, rows_per_block):
                rows = group_rows[first:first + rows_per_block]
                uniform = rng.random(out=scratch.uniform[:rows.size * n_replicates])
                block = counts[:rows.size]
                table.counts(uniform, block.reshape(-1), scratch)
                out[rows] = block
        if self.rest.size:
            out[self.rest] = rng.poisson(self.means[self.rest, None], size=(self.rest.size, n_replicates))
        return out


def poisson_draws(means: np.ndarray, n_replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(n_cells, n_replicates) float64 array: row c holds independent Poisson(means[c]) counts."""
    return PoissonSampler(means, n_replicates).draw(n_replicates, rng)
