"""Exact Bradley-Terry maximum likelihood on per-pair counts (natural-log units).

Model: P(i beats j) = 1 / (1 + exp(theta_j - theta_i)). Data per unordered pair (i, j), i < j:
``wins`` = weighted score of i against j (wins + half of the ties, LMArena's convention) and
``totals`` = weighted number of votes. The log-likelihood is concave, so Newton's method with a
backtracking line search (leaderboard.models.optim, shared by every fit) converges from any start,
quadratically near the solution; each step costs O(pairs) to build the gradient and information
matrix plus one M x M Cholesky solve, so a fit never touches individual votes. The Davidson tie
model is the option ``davidson``.

``alpha`` adds an independent Gaussian prior N(0, 1/alpha) on every theta (a ridge penalty
alpha/2 * |theta|^2): it keeps ratings finite when the MLE does not exist (a model that never
lost) and leaves alpha = 0 as the exact MLE. Without a prior theta is identified only up to a
constant; we fix mean(theta) = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.special import expit, log_expit

from leaderboard.data.counts import I_WINS, TIE_CLASS, PairArrays
from leaderboard.models.optim import GRADIENT_TOL, MAX_ITERATIONS, ConvergenceError, newton_ascent


@dataclass(frozen=True)
class BTSolution:
    """theta: (M,) natural-log strengths; log_nu: Davidson tie parameter (None for half-ties);
    gradient: (M,) log-likelihood gradient at theta; iterations: Newton steps taken;
    max_abs_gradient: over every fitted parameter (theta and, for Davidson, log_nu)."""

    theta: np.ndarray
    gradient: np.ndarray
    iterations: int
    max_abs_gradient: float
    log_nu: float | None = None


def half_tie_scores(arrays: PairArrays) -> tuple[np.ndarray, np.ndarray]:
    """(wins, totals) per pair with a tie counted as half a win each way (weighted)."""
    wins = arrays.weight[:, I_WINS] + 0.5 * arrays.weight[:, TIE_CLASS]
    totals = arrays.weight.sum(axis=1)
    return wins, totals


def laplacian(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray, edge_weight: np.ndarray) -> np.ndarray:
    """Dense weighted graph Laplacian sum_p w_p (e_i - e_j)(e_i - e_j)^T, shape (M, M); pair_i != pair_j.

    Edges may repeat (e.g. one per vote). One bincount over pair codes i * M + j: much faster
    than np.add.at for many edges, and it sums in the same order.
    """
    per_cell = np.bincount(pair_i * n_models + pair_j, edge_weight, n_models * n_models).reshape(n_models, n_models)
    matrix = -(per_cell + per_cell.T)
    degree = np.bincount(pair_i, edge_weight, n_models) + np.bincount(pair_j, edge_weight, n_models)
    matrix[np.diag_indices(n_models)] = degree
    return matrix


def scatter_pairs(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray, values: np.ndarray) -> np.ndarray:
    """sum_p values_p (e_i - e_j): per-pair contributions to a per-model vector."""
    return np.bincount(pair_i, values, n_models) - np.bincount(pair_j, values, n_models)


def bt_log_likelihood(theta, pair_i, pair_j, wins, totals, alpha: float = 0.0) -> float:
    diff = theta[pair_i] - theta[pair_j]
    return float(wins @ log_expit(diff) + (totals - wins) @ log_expit(-diff) - 0.5 * alpha * theta @ theta)


def bt_gradient(theta, pair_i, pair_j, wins, totals, alpha: float = 0.0) -> np.ndarray:
    """Gradient of the (penalised) log-likelihood, (M,)."""
    p = expit(theta[pair_i] - theta[pair_j])
    return scatter_pairs(theta.shape[0], pair_i, pair_j, wins - totals * p) - alpha * theta


def bt_information(theta, pair_i, pair_j, totals, alpha: float = 0.0) -> np.ndarray:
    """Observed information (minus the Hessian) of the (penalised) log-likelihood, (M, M)."""
    p = expit(theta[pair_i] - theta[pair_j])
    info = laplacian(theta.shape[0], pair_i, pair_j, totals * p * (1.0 - p))
    info[np.diag_indices_from(info)] += alpha
    return info


def constrained_inverse(info: np.ndarray, n_free: int | None = None, alpha: float = 0.0) -> np.ndarray:
    """Inverse of the information on the mean-zero subspace of the first ``n_free`` coordinates.

    With alpha = 0 the information has the null vector (1, .., 1, 0..): adding u u^T (u = 1/sqrt(M)
    on the theta block) makes it invertible, and inv(info + u u^T) - u u^T is its pseudo-inverse.
    """
    n_theta = info.shape[0] if n_free is None else n_free
    if alpha > 0:
        return _spd_inverse(info)
    shift = np.zeros_like(info)
    shift[:n_theta, :n_theta] = 1.0 / n_theta
    return _spd_inverse(info + shift) - shift


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    try:
        factor = scipy.linalg.cho_factor(matrix, check_finite=False)
        return scipy.linalg.cho_solve(factor, np.eye(matrix.shape[0]), check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrix, hermitian=True)


def bradley_terry(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray, wins: np.ndarray, totals: np.ndarray,
                  *, alpha: float = 0.0, initial_params: np.ndarray | None = None,
                  tol: float = GRADIENT_TOL, max_iter: int = MAX_ITERATIONS) -> BTSolution:
    """Exact (penalised) Bradley-Terry MLE from per-pair scores.

    ``wins[p]``: weighted score of pair_i[p] against pair_j[p]; ``totals[p]``: weighted votes.
    Returns theta in natural-log units with mean 0 and the gradient at the solution
    (max |gradient| <= tol unless float resolution stops it first; see leaderboard.models.optim).
    The caller checks that the MLE exists (leaderboard.models.graph) when alpha = 0.
    """
    start = np.zeros(n_models) if initial_params is None else np.asarray(initial_params, dtype=np.float64)

    def evaluate(theta, derivatives):
        value = bt_log_likelihood(theta, pair_i, pair_j, wins, totals, alpha)
        if not derivatives:
            return value
        return (value, bt_gradient(theta, pair_i, pair_j, wins, totals, alpha),
                bt_information(theta, pair_i, pair_j, totals, alpha))

    solution = newton_ascent(evaluate, start, n_centred=n_models, tol=tol, max_iter=max_iter,
                             what="Bradley-Terry fit")
    return BTSolution(theta=solution.params, gradient=solution.gradient, iterations=solution.iterations,
                      max_abs_gradient=solution.max_abs_gradient)


# ---- Davidson (1970) ties: P(i) : P(j) : P(tie) = pi_i : pi_j : nu * sqrt(pi_i * pi_j) ----------------

def davidson_probabilities(diff: np.ndarray, log_nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(i wins), P(j wins), P(tie)) for theta_i - theta_j = diff, computed stably."""
    half = 0.5 * diff
    top = np.maximum(np.maximum(half, -half), log_nu)
    a, b, t = np.exp(half - top), np.exp(-half - top), np.exp(log_nu - top)
    total = a + b + t
    return a / total, b / total, t / total


def _davidson_parts(params, pair_i, pair_j, wins_i, wins_j, ties, alpha):
    """(gradient, information) of the Davidson log-likelihood in (theta, log_nu)."""
    n_models = params.shape[0] - 1
    theta, log_nu = params[:n_models], params[n_models]
    p_i, p_j, p_t = davidson_probabilities(theta[pair_i] - theta[pair_j], log_nu)
    totals = wins_i + wins_j + ties
    # pair log-likelihood = (w_i - w_j) d/2 + t * log_nu - n * log D, D = e^{d/2} + e^{-d/2} + nu
    score_d = 0.5 * (wins_i - wins_j) - 0.5 * totals * (p_i - p_j)
    score_nu = ties - totals * p_t
    gradient = np.empty(n_models + 1)
    gradient[:n_models] = scatter_pairs(n_models, pair_i, pair_j, score_d) - alpha * theta
    gradient[n_models] = score_nu.sum()
    info = np.zeros((n_models + 1, n_models + 1))
    curvature_d = totals * (0.25 * (p_i + p_j) - 0.25 * (p_i - p_j) ** 2)
    info[:n_models, :n_models] = laplacian(n_models, pair_i, pair_j, curvature_d)
    info[np.arange(n_models), np.arange(n_models)] += alpha
    cross = -0.5 * totals * p_t * (p_i - p_j)
    column = scatter_pairs(n_models, pair_i, pair_j, cross)
    info[:n_models, n_models] = column
    info[n_models, :n_models] = column
    info[n_models, n_models] = float((totals * p_t * (1.0 - p_t)).sum())
    return gradient, info


def davidson_log_likelihood(params, pair_i, pair_j, wins_i, wins_j, ties, alpha: float = 0.0) -> float:
    n_models = params.shape[0] - 1
    theta, log_nu = params[:n_models], params[n_models]
    p_i, p_j, p_t = davidson_probabilities(theta[pair_i] - theta[pair_j], log_nu)
    with np.errstate(divide="ignore"):
        terms = wins_i * np.log(p_i) + wins_j * np.log(p_j) + ties * np.log(p_t)
    return float(np.where(np.isnan(terms), 0.0, terms).sum() - 0.5 * alpha * theta @ theta)


def davidson(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray, wins_i: np.ndarray, wins_j: np.ndarray,
             ties: np.ndarray, *, alpha: float = 0.0, initial_params: np.ndarray | None = None,
             tol: float = GRADIENT_TOL, max_iter: int = MAX_ITERATIONS) -> BTSolution:
    """Davidson tie-model MLE. Per pair: weighted wins of i, wins of j, ties. Needs at least one tie
    and one decisive vote (else nu has no finite MLE); returns theta (mean 0) and log_nu."""
    start = np.zeros(n_models + 1)
    if initial_params is not None:
        start[:n_models] = np.asarray(initial_params, dtype=np.float64)
    tie_share = ties.sum() / max((wins_i + wins_j + ties).sum(), 1e-300)
    # at equal strengths P(tie) = nu / (2 + nu): start from the observed tie share
    start[n_models] = np.log(2.0 * tie_share / (1.0 - tie_share))

    def evaluate(params, derivatives):
        value = davidson_log_likelihood(params, pair_i, pair_j, wins_i, wins_j, ties, alpha)
        if not derivatives:
            return value
        return (value, *_davidson_parts(params, pair_i, pair_j, wins_i, wins_j, ties, alpha))

    solution = newton_ascent(evaluate, start, n_centred=n_models, tol=tol, max_iter=max_iter,
                             what="Davidson tie-model fit")
    return BTSolution(theta=solution.params[:n_models], gradient=solution.gradient[:n_models],
                      iterations=solution.iterations, max_abs_gradient=solution.max_abs_gradient,
                      log_nu=float(solution.params[n_models]))


def davidson_information(theta, log_nu, pair_i, pair_j, wins_i, wins_j, ties, alpha: float = 0.0) -> np.ndarray:
    params = np.append(theta, log_nu)
    return _davidson_parts(params, pair_i, pair_j, wins_i, wins_j, ties, alpha)[1]


def davidson_class_scores(theta, log_nu, pair_i, pair_j) -> tuple[np.ndarray, np.ndarray]:
    """Per-vote score of one vote of each outcome class, in the pair's (d, log_nu) coordinates.

    Returns (score_d, score_nu), each (P, 3) for classes (I_WINS, J_WINS, TIE)."""
    p_i, p_j, p_t = davidson_probabilities(theta[pair_i] - theta[pair_j], log_nu)
    base_d = -0.5 * (p_i - p_j)
    score_d = np.stack([0.5 + base_d, -0.5 + base_d, base_d], axis=1)
    score_nu = np.stack([-p_t, -p_t, 1.0 - p_t], axis=1)
    return score_d, score_nu


__all__ = [
    "BTSolution", "ConvergenceError", "bradley_terry", "davidson", "half_tie_scores", "bt_gradient",
    "bt_information", "bt_log_likelihood", "laplacian", "scatter_pairs", "constrained_inverse",
    "davidson_probabilities", "davidson_information", "davidson_class_scores",
]
