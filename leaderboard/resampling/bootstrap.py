"""Batched bootstrap of the Bradley-Terry fit: all replicates fitted together in array code.

Resampling. Resampling N votes with replacement is a multinomial over the (pair, outcome) cells.
We use the Poisson bootstrap instead (each vote appears Poisson(1) times, independently; Hanley &
MacGibbon 2006): the cells become independent Poisson(n_cell) counts, drawn in vectorised blocks
(leaderboard/resampling/poisson_sampling.py: exact inversion tables for the many cells that share a small
count), and the total vote count varies by O(sqrt(N)), which does
not change the Bradley-Terry estimate's distribution to first order. Weighted votes (IPW, caps):
a cell's replicate weight sum_v m_v w_v is drawn as c * Poisson(lambda) with lambda = (sum w)^2 /
sum w^2 and c = sum w^2 / sum w, which matches its mean and variance and is exact when the
weights within a cell are equal (unweighted data in particular).

Fitting. Every replicate starts at the full-data MLE and takes quasi-Newton sweeps
delta = S K S g_b, where g_b is the replicate's gradient (O(B * pairs) array work), K the
(pseudo-)inverse information at the full-data MLE and S = sqrt(diag(info_full) / diag(info_b)) a
per-replicate diagonal rescaling (clipped to [1/2, 2]) that absorbs most of the change in
curvature: a model whose resampled vote count moved by 20% has its curvature moved by about the
same. This avoids B separate M x M factorisations per iteration. Measured with M = 200, 3,601
pairs, 100 replicates (one BLAS thread): one sweep ~5 ms, and six or seven sweeps (~40 ms) finish
every replicate to 1e-6 nats, against ~180 ms for one iteration of batched exact Newton and
~510 ms for its full run. A replicate whose steps stop shrinking
(a model whose resampled votes all but vanished) leaves the sweeps and is finished by exact
damped Newton, batched over such replicates; a replicate whose MLE does not exist gets its exact
limit instead (see _replicate_without_mle): the runaway models at +-inf, so their percentile
bounds come out unbounded rather than at an arbitrary large number. The tests check replicates
against the one-at-a-time solver.

Threads. Replicates come in chunks of CHUNK_REPLICATES (leaderboard.resampling.replicates), each
drawn from its own child of SeedSequence(seed) and fitted on its own; chunks run on worker threads (numpy's samplers and
ufuncs, BLAS and scipy's sparse products release the GIL), so the result for a seed is the same on
any number of threads. On LMArena-shaped data (1M votes, 200 models, all 19,900 pairs played) the
1,000 replicates cost ~1.3 s of CPU, against ~3.9 s with numpy's own Poisson sampler over whole
(P, B) arrays (benchmarks/bench_fit.py --dense).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import scipy.sparse
from scipy.special import expit, log_expit

from leaderboard.data.counts import I_WINS, J_WINS, N_CLASSES, TIE_CLASS, PairArrays
from leaderboard.models.blas import blas_threads_for
from leaderboard.models.bradley_terry import bradley_terry, bt_information, constrained_inverse, half_tie_scores
from leaderboard.models.graph import components, reachable
from leaderboard.resampling.poisson_sampling import PoissonSampler
from leaderboard.resampling.replicates import progress_bar, replicate_chunks

PAIR_BLOCK = 1024         # pairs per block of the sweeps' per-pair work (fits the CPU cache at B = 100)
DEFAULT_TOL = 1e-6       # nats per step; 1e-6 nats = 2e-4 rating points, far below the percentiles' Monte Carlo error


class PoissonResampler:
    """Replicate (wins, totals) per pair under the Poisson bootstrap, half-tie convention.

    Built once per bootstrap (cell means, scales and the sampler's tables do not change between
    chunks of replicates); ``draw`` may run on several threads at once, each with its own
    generator and workspace."""

    def __init__(self, arrays: PairArrays, expected_replicates: int):
        weight, weight_sq = arrays.weight, arrays.weight_sq
        played = weight > 0
        means = np.zeros_like(weight)
        scale = np.ones_like(weight)
        means[played] = weight[played] ** 2 / weight_sq[played]
        scale[played] = weight_sq[played] / weight[played]
        self.n_pairs = arrays.n_pairs
        # class-major cells (class, pair): each class's draws are one contiguous (P, B) block
        self.sampler = PoissonSampler(means.T.ravel(), expected_replicates)
        self.scale = scale.T[:, :, None].copy() if np.any(scale != 1.0) else None  # unweighted: exactly 1

    def draw(self, n_replicates: int, rng: np.random.Generator,
             workspace: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(wins, totals), each (P, B). With a workspace (a dict kept by the caller, one per
        thread) the arrays are reused from the previous call of that size: no fresh 50 MB
        allocations per chunk, whose page faults cost as much as a third of the draws on two threads."""
        shape = (self.n_pairs, n_replicates)
        space = workspace if workspace is not None else {}
        if space.get("shape") != shape:
            space.update(shape=shape, draws=np.empty((N_CLASSES * self.n_pairs, n_replicates)),
                         wins=np.empty(shape), totals=np.empty(shape))
        draws = self.sampler.draw(n_replicates, rng, out=space["draws"]).reshape(N_CLASSES, self.n_pairs, n_replicates)
        if self.scale is not None:
            draws *= self.scale
        wins, totals = space["wins"], space["totals"]
        np.add(draws[I_WINS], draws[J_WINS], out=totals)
        totals += draws[TIE_CLASS]
        np.multiply(draws[TIE_CLASS], 0.5, out=wins)
        wins += draws[I_WINS]
        return wins, totals


def poisson_cell_weights(arrays: PairArrays, n_replicates: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replicate (wins, totals) per pair under the Poisson bootstrap, half-tie convention.

    Returns two (B, P) arrays; they are transposed views of (P, B) arrays, the layout the batched
    solver works in (one contiguous row per pair)."""
    wins, totals = PoissonResampler(arrays, n_replicates).draw(n_replicates, rng)
    return wins.T, totals.T


def _incidence_t(arrays: PairArrays) -> scipy.sparse.csr_matrix:
    """(M, P) signed incidence: column p has +1 at pair_i[p] and -1 at pair_j[p]."""
    n_pairs = arrays.n_pairs
    rows = np.concatenate([arrays.pair_i, arrays.pair_j])
    cols = np.concatenate([np.arange(n_pairs), np.arange(n_pairs)])
    values = np.concatenate([np.ones(n_pairs), -np.ones(n_pairs)])
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(arrays.n_models, n_pairs))


class _FullDataCurvature:
    """What every sweep reuses: incidence matrices and the full-data information at the MLE."""

    def __init__(self, theta_hat: np.ndarray, arrays: PairArrays, alpha: float):
        _, totals = half_tie_scores(arrays)
        info = bt_information(theta_hat, arrays.pair_i, arrays.pair_j, totals, alpha)
        self.inverse = constrained_inverse(info, alpha=alpha)
        self.diagonal = np.diag(info).copy()
        self.incidence_t = _incidence_t(arrays)
        self.abs_incidence_t = abs(self.incidence_t)
        self.p_hat = expit(theta_hat[arrays.pair_i] - theta_hat[arrays.pair_j])
        self.blocks = [slice(start, min(start + PAIR_BLOCK, arrays.n_pairs))
                       for start in range(0, arrays.n_pairs, PAIR_BLOCK)]
        self.block_incidence_t = [self.incidence_t[:, block].tocsr() for block in self.blocks]
        self.block_abs_incidence_t = [abs(part) for part in self.block_incidence_t]


def _gradient_and_curvature(theta: np.ndarray | None, arrays: PairArrays, wins_pb: np.ndarray,
                            totals_pb: np.ndarray, full: _FullDataCurvature) -> tuple[np.ndarray, np.ndarray]:
    """Every replicate's log-likelihood gradient and information diagonal at theta ((M, B) each;
    theta None: the full-data MLE). Worked in blocks of PAIR_BLOCK pairs, so the per-pair arrays of
    a block stay in the CPU cache between the few passes over them (twice as fast at 20,000 pairs
    as whole (P, B) arrays, which are memory-bound)."""
    n_replicates = wins_pb.shape[1]
    gradient = np.zeros((arrays.n_models, n_replicates))
    diagonal = np.zeros((arrays.n_models, n_replicates))
    rows = min(PAIR_BLOCK, arrays.n_pairs)
    probability, scaled, information = (np.empty((rows, n_replicates)) for _ in range(3))
    for block, incidence, abs_incidence in zip(full.blocks, full.block_incidence_t, full.block_abs_incidence_t):
        n = block.stop - block.start
        p, expected, info = probability[:n], scaled[:n], information[:n]
        if theta is None:
            p[...] = full.p_hat[block, None]
        else:
            np.take(theta, arrays.pair_i[block], axis=0, out=p)
            np.take(theta, arrays.pair_j[block], axis=0, out=info)
            np.subtract(p, info, out=p)
            # logistic as 1/2 + tanh(d/2)/2: a third faster than scipy's expit; absolute error ~1e-17
            p *= 0.5
            np.tanh(p, out=p)
            p *= 0.5
            p += 0.5
        np.multiply(totals_pb[block], p, out=expected)
        np.multiply(expected, p, out=info)
        np.subtract(expected, info, out=info)                # totals p (1 - p)
        np.subtract(wins_pb[block], expected, out=expected)  # residual: wins - totals p
        gradient += incidence @ expected
        diagonal += abs_incidence @ info
    return gradient, diagonal


def fit_replicates(theta_hat: np.ndarray, arrays: PairArrays, wins: np.ndarray, totals: np.ndarray, *,
                   alpha: float = 0.0, tol: float = DEFAULT_TOL, max_sweeps: int = 40,
                   curvature: _FullDataCurvature | None = None) -> np.ndarray:
    """Bradley-Terry MLE of every replicate (rows of wins/totals, (B, P)); returns (B, M) theta."""
    full = curvature or _FullDataCurvature(theta_hat, arrays, alpha)
    wins_pb = np.ascontiguousarray(wins.T)      # (P, B): a pair's replicates side by side
    totals_pb = np.ascontiguousarray(totals.T)
    n_replicates = wins_pb.shape[1]
    theta = np.repeat(theta_hat[:, None], n_replicates, axis=1)  # (M, B)
    converged = np.zeros(n_replicates, dtype=bool)
    hard = np.zeros(n_replicates, dtype=bool)   # not contracting: left to exact Newton
    previous = np.full(n_replicates, np.inf)
    for sweep in range(max_sweeps):
        # sweep 0: every replicate starts at theta_hat, so one probability vector serves all
        gradient, diagonal = _gradient_and_curvature(None if sweep == 0 else theta, arrays, wins_pb, totals_pb, full)
        if alpha:
            gradient -= alpha * theta
            diagonal += alpha
        # the rescaling corrects modest curvature changes; a model whose resampled votes all but
        # vanished is beyond it (clipped, and the replicate goes to exact Newton if it stalls)
        rescale = np.sqrt(full.diagonal[:, None] / np.maximum(diagonal, 1e-12 * full.diagonal[:, None]))
        np.clip(rescale, 0.5, 2.0, out=rescale)
        step = rescale * (full.inverse @ (rescale * gradient))
        if alpha == 0:
            step -= step.mean(axis=0)
        size = np.max(np.abs(step), axis=0)
        hard |= ~np.isfinite(size) | ((sweep >= 2) & (size > 0.7 * previous) & ~converged)
        step[:, hard] = 0.0
        theta += step
        previous = size
        converged = ~hard & (size < tol)
        if np.all(converged | hard):
            break
    theta = theta.T.copy()  # (B, M)
    if alpha == 0:
        theta -= theta.mean(axis=1, keepdims=True)
    pending = np.flatnonzero(~converged)
    if pending.size:
        theta[pending] = _exact_replicates(theta_hat, arrays, wins_pb[:, pending], totals_pb[:, pending], alpha, full)
    return theta


def _exact_replicates(theta_hat, arrays: PairArrays, wins_pb, totals_pb, alpha: float,
                      full: _FullDataCurvature) -> np.ndarray:
    """Exact damped Newton for replicates the quasi-Newton sweeps could not finish, (B', M).

    Batched: one (B', M, M) solve per iteration, in slices that keep the Hessians near 160 MB.
    A replicate without a finite MLE (alpha = 0, and in the resample some models never lost, or
    never won, against the rest) is solved by ``_replicate_without_mle``: its runaway models get
    +inf or -inf, which the percentile intervals report as unbounded.
    """
    n_models = arrays.n_models
    n_batch = wins_pb.shape[1]
    out = np.empty((n_batch, n_models))
    regular = np.ones(n_batch, dtype=bool)
    if alpha == 0:
        for b in range(n_batch):
            structure = _beat_structure(arrays, wins_pb[:, b], totals_pb[:, b])
            if structure is not None:
                out[b] = _replicate_without_mle(theta_hat, arrays, wins_pb[:, b], totals_pb[:, b], *structure)
                regular[b] = False
    columns = np.flatnonzero(regular)
    per_slice = max(1, int(2e7 // (n_models * n_models)))
    alphas = np.full(n_batch, float(alpha))
    for start in range(0, columns.size, per_slice):
        part = columns[start:start + per_slice]
        out[part] = _batched_newton(theta_hat, arrays, wins_pb[:, part], totals_pb[:, part], alphas[part], full).T
        if alpha == 0:
            out[part] -= out[part].mean(axis=1, keepdims=True)
    return out


def _beat_structure(arrays: PairArrays, wins, totals):
    """None when the resample has a finite MLE; else (labels, n_components, sources, targets) of
    its strongly connected components in the beat graph (edge i -> j: i scored against j)."""
    i_scored, j_scored = wins > 0, totals - wins > 0
    sources = np.concatenate([arrays.pair_i[i_scored], arrays.pair_j[j_scored]])
    targets = np.concatenate([arrays.pair_j[i_scored], arrays.pair_i[j_scored]])
    n_components, labels = components(arrays.n_models, arrays.pair_i, arrays.pair_j, strong_edges=(sources, targets))
    if n_components == 1:
        return None
    return labels, n_components, sources, targets


def _replicate_without_mle(theta_hat, arrays: PairArrays, wins, totals, labels, n_components, sources, targets):
    """The limit of the likelihood maximisation for a resample whose MLE is infinite.

    The largest strongly connected group G of the beat graph has a finite MLE of its own; as the
    others run off to +-infinity their comparisons with G become certain and drop out of the
    likelihood, so G's strengths are exactly the MLE on G's internal votes (located so that G keeps
    its full-data mean). Models G can reach but that cannot reach G lost to it without answer: -inf;
    models that reach G but are not reached: +inf; models related to G neither way: NaN
    (undetermined; the intervals treat them as unbounded on both sides).
    """
    n_models = arrays.n_models
    main = np.argmax(np.bincount(labels, minlength=n_components))
    group = labels == main
    inside = group[arrays.pair_i] & group[arrays.pair_j] & (totals > 0)
    members = np.flatnonzero(group)
    local = np.full(n_models, -1)
    local[members] = np.arange(members.size)
    out = np.full(n_models, np.nan)
    if members.size > 1:
        sub = bradley_terry(members.size, local[arrays.pair_i[inside]], local[arrays.pair_j[inside]],
                            wins[inside], totals[inside]).theta
        out[members] = sub - sub.mean() + theta_hat[members].mean()
    else:
        out[members] = theta_hat[members]
    below, above = reachable(n_models, sources, targets, members[0])
    out[below & ~group] = -np.inf
    out[above & ~group] = np.inf
    return out


def _replicate_objective(theta, pair_i, pair_j, wins_pb, totals_pb, alphas) -> np.ndarray:
    d = theta[pair_i] - theta[pair_j]
    value = (wins_pb * log_expit(d) + (totals_pb - wins_pb) * log_expit(-d)).sum(axis=0)
    return value - 0.5 * alphas * (theta * theta).sum(axis=0)


def _batched_newton(theta_hat, arrays: PairArrays, wins_pb, totals_pb, alphas, full: _FullDataCurvature,
                    max_iter: int = 200, tol: float = 1e-10) -> np.ndarray:
    """Damped Newton on several replicates at once; returns (M, B') theta."""
    pair_i, pair_j = arrays.pair_i, arrays.pair_j
    n_models, n_batch = arrays.n_models, wins_pb.shape[1]
    unconstrained = alphas == 0  # mean(theta) = 0 fixed by the shift 1/M on the Hessian
    theta = np.repeat(theta_hat[:, None], n_batch, axis=1)
    value = _replicate_objective(theta, pair_i, pair_j, wins_pb, totals_pb, alphas)
    active = np.ones(n_batch, dtype=bool)
    diagonal = np.arange(n_models)
    for _ in range(max_iter):
        columns = np.flatnonzero(active)
        if columns.size == 0:
            break
        t = theta[:, columns]
        p = expit(t[pair_i] - t[pair_j])
        gradient = full.incidence_t @ (wins_pb[:, columns] - totals_pb[:, columns] * p) - alphas[columns] * t
        weight = totals_pb[:, columns] * p * (1.0 - p)
        hessian = np.zeros((columns.size, n_models, n_models))
        hessian[:, pair_i, pair_j] = -weight.T
        hessian[:, pair_j, pair_i] = -weight.T
        hessian[:, diagonal, diagonal] = (full.abs_incidence_t @ weight).T + alphas[columns, None]
        hessian[unconstrained[columns]] += 1.0 / n_models
        direction = np.linalg.solve(hessian, gradient.T[:, :, None])[:, :, 0].T
        step = np.ones(columns.size)
        accepted = np.zeros(columns.size, dtype=bool)
        candidate = t.copy()
        new_value = value[columns].copy()
        for _ in range(40):  # backtracking, per replicate
            trial = t + step * direction
            trial[:, unconstrained[columns]] -= trial[:, unconstrained[columns]].mean(axis=0)
            trial_value = _replicate_objective(trial, pair_i, pair_j, wins_pb[:, columns], totals_pb[:, columns],
                                               alphas[columns])
            ok = ~accepted & (trial_value >= value[columns] - 1e-12 * np.maximum(1.0, np.abs(value[columns])))
            candidate[:, ok] = trial[:, ok]
            new_value[ok] = trial_value[ok]
            accepted |= ok
            if accepted.all():
                break
            step = np.where(accepted, step, 0.5 * step)
        moved = np.max(np.abs(candidate - t), axis=0)
        theta[:, columns] = candidate
        value[columns] = new_value
        active[columns] = accepted & (moved > tol)
    return theta


def bootstrap_threads() -> int:
    """Default worker threads: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def bootstrap_thetas(theta_hat: np.ndarray, arrays: PairArrays, *, n_bootstrap: int = 1000, seed: int = 0,
                     alpha: float = 0.0, tol: float = DEFAULT_TOL, progress: bool = False,
                     threads: int | None = None) -> np.ndarray:
    """(n_bootstrap, M) bootstrap replicates of theta (nats, mean 0), seeded and reproducible.

    Replicates come in chunks of CHUNK_REPLICATES, each drawn from its own generator (a child of
    SeedSequence(seed)) and fitted on its own, so chunks run on ``threads`` worker threads (default:
    the usable CPUs) and the result is the same whatever the number of threads. numpy's samplers,
    ufuncs and BLAS and scipy's sparse products release the GIL, so the threads share the cores."""
    chunks = replicate_chunks(n_bootstrap, seed)
    out = np.empty((n_bootstrap, arrays.n_models))
    threads = bootstrap_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    with progress_bar(n_bootstrap, progress, "bootstrap") as bar, blas_threads_for(arrays.n_models):
        curvature = _FullDataCurvature(theta_hat, arrays, alpha)
        resampler = PoissonResampler(arrays, n_bootstrap)
        workspaces = threading.local()  # one set of replicate arrays per worker thread, reused

        def run_chunk(chunk: tuple[int, int, np.random.Generator]) -> int:
            start, size, rng = chunk
            if not hasattr(workspaces, "space"):
                workspaces.space = {}
            wins, totals = resampler.draw(size, rng, workspaces.space)
            out[start:start + size] = fit_replicates(theta_hat, arrays, wins.T, totals.T, alpha=alpha, tol=tol,
                                                     curvature=curvature)
            return size

        if threads == 1 or len(chunks) == 1:
            for size in map(run_chunk, chunks):
                bar.update(size)
        else:
            with ThreadPoolExecutor(max_workers=min(threads, len(chunks))) as pool:
                for done in as_completed([pool.submit(run_chunk, chunk) for chunk in chunks]):
                    bar.update(done.result())
    return out
