"""Batched bootstrap of the Bradley-Terry fit: all replicates fitted together in array code.

Resampling. Resampling N votes with replacement is a multinomial over the (pair, outcome) cells.
We use the Poisson bootstrap instead (each vote appears Poisson(1) times, independently; Hanley &
MacGibbon 2006): the cells become independent Poisson(n_cell) counts, so all replicates of all
cells are drawn in one vectorised call, and the total vote count varies by O(sqrt(N)), which does
not change the Bradley-Terry estimate's distribution to first order. Weighted votes (IPW, caps):
a cell's replicate weight sum_v m_v w_v is drawn as c * Poisson(lambda) with lambda = (sum w)^2 /
sum w^2 and c = sum w^2 / sum w, which matches its mean and variance and is exact when the
weights within a cell are equal (unweighted data in particular).

Fitting. Every replicate starts at the full-data MLE and takes quasi-Newton steps
delta = S K S g_b, where g_b is the replicate's gradient (O(B * pairs) array work), K the
(pseudo-)inverse information at the full-data MLE and S = sqrt(diag(info_full) / diag(info_b)) a
per-replicate diagonal rescaling that absorbs most of the change in curvature (a model whose
resampled vote count moved by 20% has its curvature moved by about the same). This avoids B
separate M x M factorisations per iteration (measured: a batched (1000, 200, 200) solve costs
~0.4 s, one quasi-Newton sweep ~10 ms). Replicates that have not converged after
``max_sweeps`` are finished one by one with the exact Newton solver; a replicate whose MLE does
not exist (a model that never lost in the resample) gets a vanishing prior (alpha = 1e-8), so its
strengths are very large but finite and the interval comes out very wide instead of failing.
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.sparse
from scipy.special import expit

from leaderboard.bradley_terry import bradley_terry, bt_information, constrained_inverse, half_tie_scores
from leaderboard.counts import I_WINS, TIE_CLASS, PairArrays

CHUNK_REPLICATES = 100   # fixed, so results depend only on (seed, n_bootstrap), not on memory or threads
DEFAULT_TOL = 1e-6       # nats per step; 1e-6 nats = 2e-4 rating points, far below the percentiles' Monte Carlo error
DEGENERATE_ALPHA = 1e-8


def poisson_cell_weights(arrays: PairArrays, n_replicates: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replicate (wins, totals) per pair, each (B, P), half-tie convention."""
    weight, weight_sq = arrays.weight, arrays.weight_sq
    present = weight > 0
    lam = np.zeros_like(weight)
    scale = np.zeros_like(weight)
    lam[present] = weight[present] ** 2 / weight_sq[present]
    scale[present] = weight_sq[present] / weight[present]
    cells = np.flatnonzero(present.ravel())
    draws = rng.poisson(lam.ravel()[cells], size=(n_replicates, cells.size)) * scale.ravel()[cells]
    replicate = np.zeros((n_replicates, weight.size))
    replicate[:, cells] = draws
    replicate = replicate.reshape(n_replicates, *weight.shape)
    wins = replicate[:, :, I_WINS] + 0.5 * replicate[:, :, TIE_CLASS]
    totals = replicate.sum(axis=2)
    return wins, totals


def _incidence(arrays: PairArrays) -> scipy.sparse.csr_matrix:
    """(P, M) signed incidence: +1 at pair_i, -1 at pair_j."""
    n_pairs = arrays.n_pairs
    rows = np.concatenate([np.arange(n_pairs), np.arange(n_pairs)])
    cols = np.concatenate([arrays.pair_i, arrays.pair_j])
    values = np.concatenate([np.ones(n_pairs), -np.ones(n_pairs)])
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(n_pairs, arrays.n_models))


def fit_replicates(theta_hat: np.ndarray, arrays: PairArrays, wins: np.ndarray, totals: np.ndarray, *,
                   alpha: float = 0.0, tol: float = DEFAULT_TOL, max_sweeps: int = 40) -> np.ndarray:
    """Bradley-Terry MLE of every replicate (rows of wins/totals, (B, P)); returns (B, M) theta."""
    n_models = arrays.n_models
    pair_i, pair_j = arrays.pair_i, arrays.pair_j
    incidence = _incidence(arrays)
    incidence_t = incidence.T.tocsr()
    abs_incidence_t = abs(incidence_t)
    _, full_totals = half_tie_scores(arrays)
    info_full = bt_information(theta_hat, pair_i, pair_j, full_totals, alpha)
    inverse_full = constrained_inverse(info_full, alpha=alpha)
    diag_full = np.diag(info_full)

    theta = np.tile(theta_hat, (wins.shape[0], 1))
    active = np.arange(wins.shape[0])
    p_hat = expit(theta_hat[pair_i] - theta_hat[pair_j])
    for sweep in range(max_sweeps):
        if active.size == 0:
            break
        t = theta[active]
        w, n = wins[active], totals[active]
        if sweep == 0:  # every replicate starts at theta_hat: one probability vector for all
            p = np.broadcast_to(p_hat, w.shape)
        else:
            p = t[:, pair_i]
            p -= t[:, pair_j]
            expit(p, out=p)
        residual = w - n * p
        curvature = p * (1.0 - p)
        curvature *= n
        gradient = (incidence_t @ residual.T).T
        diag_b = (abs_incidence_t @ curvature.T).T
        if alpha:
            gradient -= alpha * t
            diag_b += alpha
        scale = np.sqrt(diag_full / np.maximum(diag_b, 1e-12 * diag_full))
        step = scale * ((scale * gradient) @ inverse_full)
        if alpha == 0:
            step -= step.mean(axis=1, keepdims=True)
        theta[active] = t + step
        done = np.max(np.abs(step), axis=1) < tol
        active = active[~done]
    fit_replicates.last_sweeps = sweep  # DEBUG
    for b in active:  # slow or non-existent MLEs: exact damped Newton, one replicate at a time
        try:
            theta[b] = bradley_terry(n_models, pair_i, pair_j, wins[b], totals[b], alpha=alpha,
                                     initial_params=theta_hat).theta
        except RuntimeError:
            theta[b] = bradley_terry(n_models, pair_i, pair_j, wins[b], totals[b], alpha=max(alpha, DEGENERATE_ALPHA),
                                     initial_params=theta_hat, max_iter=500).theta
    if alpha == 0:
        theta -= theta.mean(axis=1, keepdims=True)
    return theta


def bootstrap_thetas(theta_hat: np.ndarray, arrays: PairArrays, *, n_bootstrap: int = 1000, seed: int = 0,
                     alpha: float = 0.0, tol: float = DEFAULT_TOL, progress: bool = False) -> np.ndarray:
    """(n_bootstrap, M) bootstrap replicates of theta (nats, mean 0), seeded and reproducible."""
    n_chunks = -(-n_bootstrap // CHUNK_REPLICATES)
    streams = np.random.SeedSequence(seed).spawn(n_chunks)
    out = np.empty((n_bootstrap, arrays.n_models))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_bootstrap, desc="bootstrap", unit="replicate", file=sys.stderr)
    for chunk, stream in enumerate(streams):
        start = chunk * CHUNK_REPLICATES
        size = min(CHUNK_REPLICATES, n_bootstrap - start)
        wins, totals = poisson_cell_weights(arrays, size, np.random.default_rng(stream))
        out[start:start + size] = fit_replicates(theta_hat, arrays, wins, totals, alpha=alpha, tol=tol)
        if bar is not None:
            bar.update(size)
    if bar is not None:
        bar.close()
    return out
