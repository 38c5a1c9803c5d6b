"""Bootstrap by exact refits, for the fits the batched bootstrap (leaderboard.resampling.bootstrap) does not
cover: Bradley-Terry with Davidson ties, and style control.

Resampling is the same Poisson bootstrap (each vote appears Poisson(1) times): for Davidson the
per-(pair, outcome) cells are drawn as in ``poisson_cell_weights`` (weighted cells as a scaled
Poisson matching mean and variance), for style control each vote gets its own Poisson(1)
multiplier on its weight, because its covariates differ from vote to vote. Every replicate is
then refitted exactly by the shared Newton solver, warm-started at the full-data estimate.

A replicate whose maximum-likelihood estimate does not exist (alpha = 0, and in the resample a
group of models never lost, or never won, against the rest) gets the limit, as in the batched
bootstrap: the models that can only run off upwards are +inf, downwards -inf, undetermined ones
NaN, so their percentile bounds come out unbounded (and ``leaderboard.fit.unbounded_notes``
says how often). Costs one exact fit per replicate; ``progress`` shows a tqdm bar on stderr.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from leaderboard.data.counts import I_WINS, J_WINS, TIE_CLASS, PairArrays, PairCounts
from leaderboard.data.events import MODEL_A, MODEL_B
from leaderboard.models.bradley_terry import davidson
from leaderboard.models.graph import components
from leaderboard.models.optim import ConvergenceError
from leaderboard.models.ranks import rank_intervals
from leaderboard.models.result import BOOTSTRAP, BRADLEY_TERRY, RatingResult, method_name
from leaderboard.models.sandwich import percentile_bounds
from leaderboard.models.scale import ELO_PER_NAT, rating_transform
from leaderboard.resampling.replicates import progress_bar, replicate_chunks

_TINY_PRIOR = 1e-6      # keeps a replicate without an MLE finite while its runaway models are marked


def runaway_limits(n_models: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """None when the beat graph (edge i -> j: i scored against j) is strongly connected; else a
    (M,) array that is 0 on its largest strongly connected group, +inf on models that reach the
    group but are not reached from it (never lost to it), -inf on the reverse, NaN on the rest."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order

    n_components, labels = components(n_models, sources, targets, strong_edges=(sources, targets))
    if n_components == 1:
        return None
    group = labels == np.argmax(np.bincount(labels, minlength=n_components))
    graph = coo_matrix((np.ones(sources.size), (sources, targets)), shape=(n_models, n_models)).tocsr()
    start = int(np.flatnonzero(group)[0])
    below = np.zeros(n_models, dtype=bool)
    below[breadth_first_order(graph, start, directed=True, return_predecessors=False)] = True
    above = np.zeros(n_models, dtype=bool)
    above[breadth_first_order(graph.T.tocsr(), start, directed=True, return_predecessors=False)] = True
    limits = np.full(n_models, np.nan)
    limits[group] = 0.0
    limits[below & ~group] = -np.inf
    limits[above & ~group] = np.inf
    return limits


def _scored_edges(pair_i, pair_j, i_scored, j_scored):
    return (np.concatenate([pair_i[i_scored], pair_j[j_scored]]), np.concatenate([pair_j[i_scored], pair_i[j_scored]]))


# ---- Davidson --------------------------------------------------------------------------------

def davidson_replicates(theta_hat: np.ndarray, arrays: PairArrays, *, n_bootstrap: int = 1000, seed: int = 0,
                        alpha: float = 0.0, progress: bool = False) -> np.ndarray:
    """(n_bootstrap, M) Davidson-model replicates of theta (nats, mean 0 over the finite entries)."""
    n_models = arrays.n_models
    out = np.empty((n_bootstrap, n_models))
    with progress_bar(n_bootstrap, progress, "bootstrap (Davidson)") as bar:
        for start, size, rng in replicate_chunks(n_bootstrap, seed):
            classes = []
            for outcome_class in (I_WINS, J_WINS, TIE_CLASS):
                weight, weight_sq = arrays.weight[:, outcome_class], arrays.weight_sq[:, outcome_class]
                lam = np.divide(weight**2, weight_sq, out=np.zeros_like(weight), where=weight_sq > 0)
                scale = np.divide(weight_sq, weight, out=np.zeros_like(weight), where=weight > 0)
                classes.append(rng.poisson(lam[:, None], size=(arrays.n_pairs, size)) * scale[:, None])
            for b in range(size):
                out[start + b] = _davidson_replicate(theta_hat, arrays, classes[0][:, b], classes[1][:, b],
                                                     classes[2][:, b], alpha)
            bar.update(size)
    return out


def _davidson_replicate(theta_hat, arrays: PairArrays, wins_i, wins_j, ties, alpha: float) -> np.ndarray:
    n_models = arrays.n_models
    if ties.sum() == 0 or (wins_i + wins_j).sum() == 0:  # the tie parameter has no estimate in this resample
        return np.full(n_models, np.nan)
    limits = None
    if alpha == 0:
        limits = runaway_limits(n_models, *_scored_edges(arrays.pair_i, arrays.pair_j, wins_i + ties > 0,
                                                         wins_j + ties > 0))
    try:
        theta = davidson(n_models, arrays.pair_i, arrays.pair_j, wins_i, wins_j, ties,
                         alpha=alpha if limits is None else max(alpha, _TINY_PRIOR), initial_params=theta_hat).theta
    except (ConvergenceError, FloatingPointError, np.linalg.LinAlgError):
        return np.full(n_models, np.nan)
    return _with_limits(theta, limits)


def _with_limits(theta: np.ndarray, limits: np.ndarray | None) -> np.ndarray:
    if limits is None:
        return theta
    out = np.where(limits == 0, theta, limits)
    finite = limits == 0
    out[finite] -= out[finite].mean()
    return out


# ---- style control ---------------------------------------------------------------------------

def style_control_replicates(params_hat: np.ndarray, n_models: int, model_a: np.ndarray, model_b: np.ndarray,
                             covariates: np.ndarray, score_a: np.ndarray, weights: np.ndarray, *,
                             alpha_covariates: float, n_bootstrap: int = 1000, seed: int = 0,
                             progress: bool = False) -> np.ndarray:
    """(n_bootstrap, M + F) replicates of (theta, beta) of the style-controlled fit (see
    leaderboard.models.style_control: the covariates stay standardised as in the full data)."""
    from leaderboard.models.style_control import _fit_theta_beta  # one fitter for the fit and its replicates

    n_features = covariates.shape[1]
    out = np.empty((n_bootstrap, n_models + n_features))
    with progress_bar(n_bootstrap, progress, "bootstrap (style control)") as bar:
        for start, size, rng in replicate_chunks(n_bootstrap, seed):
            multipliers = rng.poisson(1.0, size=(size, len(weights)))
            for b in range(size):
                resampled = weights * multipliers[b]
                used = resampled > 0
                limits = runaway_limits(n_models, *_scored_edges(model_a[used], model_b[used], score_a[used] > 0,
                                                                 score_a[used] < 1))
                try:
                    solution = _fit_theta_beta(n_models, model_a, model_b, covariates, score_a, resampled,
                                               alpha_covariates, alpha=0.0 if limits is None else _TINY_PRIOR,
                                               start=params_hat)
                except (ConvergenceError, FloatingPointError, np.linalg.LinAlgError):
                    out[start + b] = np.nan
                    continue
                out[start + b, :n_models] = _with_limits(solution.params[:n_models], limits)
                out[start + b, n_models:] = solution.params[n_models:]
            bar.update(size)
    return out


def style_control_bootstrap(df: pd.DataFrame, fitted: RatingResult, *, weights=None, n_bootstrap: int = 1000,
                            seed: int = 0, anchor: tuple[str, float] | None = None,
                            progress: bool = False) -> RatingResult:
    """``fitted`` (``fit_style_control(df, weights=weights, anchor=anchor)``, half ties) with
    bootstrap percentile intervals instead: bounds, covariance, the style coefficients' standard
    errors, and rank_change (bootstrap ranks with style control against the plain fit's
    bootstrap ranks, same seed)."""
    from leaderboard.fit import fit_leaderboard, unbounded_notes
    from leaderboard.models.style_control import DEFAULT_ALPHA_COVARIATES, STYLE_COLUMNS, style_covariates

    models = list(fitted.models)
    n_models = len(models)
    model_a = pd.Categorical(df["model_a"], categories=models).codes.astype(np.int64)
    model_b = pd.Categorical(df["model_b"], categories=models).codes.astype(np.int64)
    winner = df["winner"].to_numpy()
    score_a = np.select([winner == MODEL_A, winner == MODEL_B], [1.0, 0.0], 0.5)
    vote_weights = np.ones(len(df)) if weights is None else np.asarray(weights, dtype=np.float64)
    alpha_covariates = fitted.settings.get("alpha_covariates", DEFAULT_ALPHA_COVARIATES)
    params_hat = np.concatenate([fitted.theta, [fitted.style_coefficients[name] for name in STYLE_COLUMNS]])
    replicates = style_control_replicates(params_hat, n_models, model_a, model_b, style_covariates(df), score_a,
                                          vote_weights, alpha_covariates=alpha_covariates, n_bootstrap=n_bootstrap,
                                          seed=seed, progress=progress)
    thetas = replicates[:, :n_models]
    finite = np.all(np.isfinite(replicates), axis=1)
    covariance, errors = fitted.covariance, dict(fitted.style_coefficient_se)
    if finite.sum() > 1:
        covariance = np.cov(thetas[finite], rowvar=False)
        errors = dict(zip(STYLE_COLUMNS, replicates[finite, n_models:].std(axis=0, ddof=1).tolist()))
    _, offset = rating_transform(models, anchor)
    reference = thetas[:, [models.index(anchor[0])]] if anchor is not None else 0.0
    with np.errstate(invalid="ignore"):
        lower, upper = percentile_bounds(offset + ELO_PER_NAT * (thetas - reference))
        styled_rank = rank_intervals(*percentile_bounds(ELO_PER_NAT * thetas))[0]
    frame = df.assign(__weight__=vote_weights)
    plain = fit_leaderboard(PairCounts.from_frame(frame, "__weight__"), ci=BOOTSTRAP, n_bootstrap=n_bootstrap, seed=seed)
    plain_rank = [int(plain.rank[plain.models.index(name)]) for name in models]
    settings = {**fitted.settings, "ci": BOOTSTRAP, "n_bootstrap": n_bootstrap, "seed": seed,
                "bootstrap_replicates_with_unbounded_models": int((~finite).sum())}
    return replace(fitted, covariance=covariance, lower=lower, upper=upper, style_coefficient_se=errors,
                   method=method_name(BRADLEY_TERRY, BOOTSTRAP, style_control=True), settings=settings,
                   rank_change={name: int(plain_rank[k] - styled_rank[k]) for k, name in enumerate(models)},
                   row_notes=unbounded_notes(models, thetas, lower, upper, alpha=0.0))
