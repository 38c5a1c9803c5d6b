"""Style control: Bradley-Terry ratings with answer-style covariates (length and markdown).

Voters prefer longer, more formatted answers; style control asks which model would win if both
answers had the same style. Following LMArena's style control (Li et al., "Does style matter?",
LMSYS blog 2024-08-28), each vote gets a covariate vector x describing how A's answer differs
from B's, and

    P(A beats B) = sigmoid(theta_a - theta_b + beta . x)

is fitted jointly in theta (ratings, natural-log units) and beta (style effects). Only beta is
penalised (L2, ``alpha_covariates / 2 * |beta|^2``; a weak prior that only matters when a style
column is nearly constant or collinear); theta never is, so with no style effect in the data the
ratings are the plain Bradley-Terry ratings. Ties count half a win each way (LMArena's
convention, as in ``leaderboard.models.bradley_terry``) or are dropped (``ties="drop"``).

The fit is exact: Newton's method on the per-vote logistic log-likelihood (it cannot be reduced
to per-pair counts, because x differs from vote to vote). Each step is a few O(N) vectorised
passes -- the theta block of the information is a weighted graph Laplacian built with one
bincount over pair codes, the theta-beta block one bincount per feature, the beta block a 4 x 4
product -- plus one (M + 4) x (M + 4) solve.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit

from leaderboard.data.counts import PairCounts
from leaderboard.data.events import MODEL_A, MODEL_B, STYLE_COLUMNS, TIE, TIE_BOTHBAD
from leaderboard.models.base import Estimate, RatingModel, StyleRows, VoteData
from leaderboard.models.bradley_terry import constrained_inverse
from leaderboard.models.graph import runaway_limits, scored_edges, with_limits
from leaderboard.models.optim import ConvergenceError, newton_ascent
from leaderboard.models.pairwise import TINY_PRIOR, BradleyTerry
from leaderboard.models.ranks import rank_intervals
from leaderboard.models.result import BOOTSTRAP, BRADLEY_TERRY, FISHER, NO_INTERVALS, SANDWICH, RatingResult
from leaderboard.models.sandwich import centred, normal_bounds, percentile_bounds
from leaderboard.models.scale import ELO_PER_NAT

DEFAULT_ALPHA_COVARIATES = 1.0
_WEIGHT_COLUMN = "__style_control_weight__"


class StyleDataError(ValueError):
    """Style columns missing or unusable; the message names the column and the fix."""


def _style_differences(df: pd.DataFrame) -> np.ndarray:
    """(a - b) / (a + b + 1) per style feature, (N, 4), before standardising."""
    needed = [f"{feature}_{side}" for feature in STYLE_COLUMNS for side in ("a", "b")]
    missing = [column for column in needed if column not in df.columns]
    if missing:
        raise StyleDataError(
            f"style control needs per-answer columns {needed}; missing {missing}. Load votes that "
            "carry style features (our vote log, or LMArena files with conv_metadata).")
    differences = np.empty((len(df), len(STYLE_COLUMNS)))
    for k, feature in enumerate(STYLE_COLUMNS):
        sides = []
        for side in ("a", "b"):
            column = f"{feature}_{side}"
            values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                value = df[column].iloc[first]
                shown = repr(value) if isinstance(value, str) else str(value)
                raise StyleDataError(
                    f"column {column!r}: row {df.index[first]!r} has {shown}; style "
                    "counts must be numbers >= 0 (drop or fill rows without style data)")
            sides.append(values)
        differences[:, k] = (sides[0] - sides[1]) / (sides[0] + sides[1] + 1.0)
    return differences


def _standardise(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z-scored differences, mean, population std). The z-scores are column-major: the fit reads
    them a feature (column) at a time."""
    n_features = differences.shape[1]
    if not len(differences):
        return np.zeros((0, n_features)), np.zeros(n_features), np.zeros(n_features)
    mean = differences.mean(axis=0)
    centred = np.empty(differences.shape, order="F")
    np.subtract(differences, mean, out=centred)
    std = np.sqrt(np.einsum("ij,ij->j", centred, centred) / len(differences))
    # a constant feature carries no information: leave it at 0 (its beta is then 0)
    centred /= np.where(std > 0, std, 1.0)
    return centred, mean, std


def style_covariates(df: pd.DataFrame) -> np.ndarray:
    """Style covariates of each vote, (N, 4) in STYLE_COLUMNS order.

    Exact normalisation, per feature f in (tokens, headers, lists, bold), with f_a, f_b the
    counts for answer A and answer B:

        d = (f_a - f_b) / (f_a + f_b + 1)          # in (-1, 1); antisymmetric in A and B
        x = (d - mean(d)) / std(d)                  # z-score over the rows of ``df`` (population std)

    so each beta is in nats per standard deviation of the relative style difference. A feature
    with std(d) = 0 (constant, e.g. no answer ever uses headers) gives a column of zeros. The mean
    is close to 0 when the display order is random; the z-score follows LMArena's implementation.
    """
    return _standardise(_style_differences(df))[0]


def _pair_scatter(n_models: int, pair_code: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(M, M) per-(a, b) sums of ``values``: one bincount over the votes' pair codes a * M + b."""
    return np.bincount(pair_code, values, n_models * n_models).reshape(n_models, n_models)


def _outer_sum(n_models: int, model_a, model_b, covariates, vote_weight, pair_code=None) -> np.ndarray:
    """sum_n c_n z_n z_n^T with z_n = (e_a - e_b, x_n), shape (M + F, M + F).

    One pass over the votes per block column: the theta block is the Laplacian of the per-pair
    sums of c (off-diagonal -(C + C^T), diagonal the row plus column sums), and each theta-beta
    column is row sums minus column sums of the per-pair sums of c x_k."""
    if pair_code is None:
        pair_code = model_a * n_models + model_b
    n_features = covariates.shape[1]
    matrix = np.zeros((n_models + n_features, n_models + n_features))
    cell = _pair_scatter(n_models, pair_code, vote_weight)
    theta_block = -(cell + cell.T)
    theta_block[np.diag_indices(n_models)] = cell.sum(axis=1) + cell.sum(axis=0)
    matrix[:n_models, :n_models] = theta_block
    weighted = covariates * vote_weight[:, None]
    for k in range(n_features):
        cell = _pair_scatter(n_models, pair_code, weighted[:, k])
        column = cell.sum(axis=1) - cell.sum(axis=0)
        matrix[:n_models, n_models + k] = column
        matrix[n_models + k, :n_models] = column
    matrix[n_models:, n_models:] = covariates.T @ weighted
    return matrix


def fit_theta_beta(n_models, model_a, model_b, covariates, score_a, weights, alpha_covariates, alpha=0.0,
                    start=None):
    """Exact penalised MLE of (theta, beta) by the shared Newton solver (leaderboard.models.optim)."""
    n_features = covariates.shape[1]
    pair_code = model_a * n_models + model_b
    # log sigma(-m) = log sigma(m) - m: one transcendental per vote for the value, and p = exp(log sigma(m))
    loss_weight = weights * (1.0 - score_a)

    def evaluate(params, derivatives):
        theta, beta = params[:n_models], params[n_models:]
        margin = theta[model_a] - theta[model_b] + covariates @ beta
        log_p = log_expit(margin)
        value = float(weights @ log_p - loss_weight @ margin
                      - 0.5 * alpha_covariates * beta @ beta - 0.5 * alpha * theta @ theta)
        if not derivatives:
            return value
        p_a = np.exp(log_p)
        residual = weights * (score_a - p_a)
        gradient = np.empty(n_models + n_features)
        cell = _pair_scatter(n_models, pair_code, residual)
        gradient[:n_models] = cell.sum(axis=1) - cell.sum(axis=0) - alpha * theta
        gradient[n_models:] = covariates.T @ residual - alpha_covariates * beta
        info = _outer_sum(n_models, model_a, model_b, covariates, weights * p_a * (1.0 - p_a), pair_code)
        info[n_models:, n_models:] += alpha_covariates * np.eye(n_features)
        if alpha:
            info[np.arange(n_models), np.arange(n_models)] += alpha
        return value, gradient, info

    # theta's prior (alpha, 0 by default) and beta's are in the objective; the solver keeps theta at mean zero
    initial = np.zeros(n_models + n_features) if start is None else np.asarray(start, dtype=np.float64)
    return newton_ascent(evaluate, initial, n_centred=n_models, what="style-controlled fit")


def style_vote_data(df: pd.DataFrame, *, ties: str = "half", weights=None) -> VoteData:
    """The votes of a frame as style control takes them: per-pair counts and one StyleRows row per vote.

    ``df``: columns model_a, model_b, winner (LMArena strings) and the per-answer style columns
    ``{tokens,headers,lists,bold}_{a,b}``. ``ties``: "half" (a tie is half a win each way) or
    "drop" (ties left out). ``weights``: one non-negative weight per row (e.g. inverse selection
    probability), treated as sampling weights in the sandwich."""
    if ties not in ("half", "drop"):
        raise ValueError(f"ties must be 'half' or 'drop' for style control, got {ties!r}")
    frame = df
    weight_column = None
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(df),):
            raise ValueError(f"weights must have one entry per vote ({len(df)}), got shape {weights.shape}")
        frame = frame.assign(**{_WEIGHT_COLUMN: weights})
        weight_column = _WEIGHT_COLUMN
    if ties == "drop" and "winner" in frame.columns:
        frame = frame[~frame["winner"].isin([TIE, TIE_BOTHBAD])]

    differences = _style_differences(frame)
    # validates names and outcomes, and counts the votes for the plain Bradley-Terry reference fit
    counts = PairCounts.from_frame(frame, weight_column)
    models = counts.models
    model_a = pd.Categorical(frame["model_a"], categories=models).codes.astype(np.int64)
    model_b = pd.Categorical(frame["model_b"], categories=models).codes.astype(np.int64)
    winner = frame["winner"].to_numpy()
    score_a = np.select([winner == MODEL_A, winner == MODEL_B], [1.0, 0.0], 0.5)
    vote_weights = np.ones(len(frame)) if weight_column is None else frame[weight_column].to_numpy(dtype=np.float64)
    return VoteData(pairs=counts, style=StyleRows(list(models), model_a, model_b, differences, score_a, vote_weights))


class StyleControl(RatingModel):
    """Bradley-Terry with style covariates (the module docstring), on ``VoteData.style`` (one row
    per pairwise vote) and ``VoteData.pairs`` (the same votes' counts: the plain Bradley-Terry
    fit it is compared with, and the vote counts). ``alpha``: prior precision on each theta
    (nats^-2; 0 = none); ``alpha_covariates``: L2 penalty on beta only (default 1.0: negligible
    next to thousands of votes); ``ties``: what the votes' ties were ("half" or "drop"; reported).
    A warm start may carry ``beta`` next to ``theta``. Its bootstrap gives each vote its own
    Poisson(1) multiplier (covariates differ from vote to vote) and refits exactly.

    The result (``finish``) carries ``style_coefficients`` and ``style_coefficient_se`` (beta and
    its standard error: feature -> nats per standard deviation of the covariate; positive = voters
    favour the answer with more of it), ``rating_without_style`` (the plain Bradley-Terry ratings of
    the same votes) and ``rank_change`` (model -> rank without style control minus rank with;
    negative = the model drops once style is accounted for; both ranks from unanchored intervals
    of the same kind); its settings carry the normalisation (covariate_mean, covariate_std).
    """

    name = BRADLEY_TERRY
    style_control = True
    interval_methods = (SANDWICH, FISHER, BOOTSTRAP, NO_INTERVALS)
    bootstrap_label = "bootstrap (style control)"

    def __init__(self, *, alpha: float = 0.0, alpha_covariates: float = DEFAULT_ALPHA_COVARIATES,
                 ties: str = "half"):
        alpha_covariates = float(alpha_covariates)
        if not (math.isfinite(alpha_covariates) and alpha_covariates >= 0.0):
            raise ValueError(f"alpha_covariates must be a finite number >= 0, got {alpha_covariates!r}")
        self.alpha, self.alpha_covariates, self.ties = alpha, alpha_covariates, ties

    def reference_model(self) -> RatingModel:
        return BradleyTerry(alpha=self.alpha)

    def reference_ci(self, ci: str) -> str:
        return ci if ci in (SANDWICH, BOOTSTRAP) else NO_INTERVALS

    def estimate(self, data: VoteData, *, warm_start=None) -> Estimate:
        rows, counts = data.style, data.pairs
        # the plain fit's model order (the counts') is the result's; re-index the votes to it
        models = list(counts.models)
        position = {name: k for k, name in enumerate(models)}
        remap = np.array([position.get(name, -1) for name in rows.models], dtype=np.int64)
        model_a, model_b = remap[np.asarray(rows.model_a)], remap[np.asarray(rows.model_b)]
        n_models = len(models)
        covariates, covariate_mean, covariate_std = _standardise(rows.differences)
        start = None
        if warm_start and "theta" in warm_start and "beta" in warm_start:
            start = np.concatenate([[float(warm_start["theta"].get(name, 0.0)) for name in models],
                                    np.asarray(warm_start["beta"], dtype=float)])
        solution = fit_theta_beta(n_models, model_a, model_b, covariates, rows.score_a, rows.weights,
                                  self.alpha_covariates, alpha=self.alpha, start=start)
        extra = {"alpha": self.alpha} if self.alpha else {}
        return Estimate(
            models=models, theta=solution.params[:n_models], params=solution.params, solution=solution,
            votes=counts.model_vote_counts(), n_votes=counts.n_votes,
            details={"ties": self.ties, "alpha_covariates": self.alpha_covariates,
                     "covariate_mean": dict(zip(STYLE_COLUMNS, covariate_mean.tolist())),
                     "covariate_std": dict(zip(STYLE_COLUMNS, covariate_std.tolist())), **extra},
            work={"model_a": model_a, "model_b": model_b, "covariates": covariates, "score_a": rows.score_a,
                  "weights": rows.weights})

    def joint_covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        """(M + F, M + F) covariance of (theta, beta): sandwich or the inverse information."""
        work, n_models = estimate.work, len(estimate.models)
        # the solver's information at the solution (priors included) is the sandwich's bread
        bread = constrained_inverse(estimate.solution.information, n_free=n_models)
        if not robust:
            return bread
        theta, beta = estimate.params[:n_models], estimate.params[n_models:]
        model_a, model_b, covariates = work["model_a"], work["model_b"], work["covariates"]
        p_a = expit(theta[model_a] - theta[model_b] + covariates @ beta)
        meat = _outer_sum(n_models, model_a, model_b, covariates, (work["weights"] * (work["score_a"] - p_a)) ** 2)
        return bread @ meat @ bread

    def covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        joint = self.joint_covariance(estimate, robust=robust)
        estimate.work["joint"] = joint  # finish() reads the coefficients' standard errors from it
        return centred(joint[:len(estimate.models), :len(estimate.models)])

    def resample(self, estimate: Estimate, rng: np.random.Generator, size: int) -> list:
        weights = estimate.work["weights"]
        multipliers = rng.poisson(1.0, size=(size, len(weights)))
        return [weights * multipliers[b] for b in range(size)]

    def refit(self, estimate: Estimate, draw) -> np.ndarray:
        work, n_models = estimate.work, len(estimate.models)
        model_a, model_b, score_a = work["model_a"], work["model_b"], work["score_a"]
        used = draw > 0
        limits = runaway_limits(n_models, *scored_edges(model_a[used], model_b[used], score_a[used] > 0,
                                                        score_a[used] < 1))
        try:
            solution = fit_theta_beta(n_models, model_a, model_b, work["covariates"], score_a, draw,
                                      self.alpha_covariates, alpha=self.alpha if limits is None else TINY_PRIOR,
                                      start=estimate.params)
        except (ConvergenceError, FloatingPointError, np.linalg.LinAlgError):
            return np.full(estimate.params.shape, np.nan)
        out = np.empty(estimate.params.shape)
        out[:n_models] = with_limits(solution.params[:n_models], limits)
        out[n_models:] = solution.params[n_models:]
        return out

    def finish(self, result: RatingResult, estimate: Estimate, *, replicates: np.ndarray | None,
               reference: RatingResult | None) -> RatingResult:
        n_models = len(estimate.models)
        theta, beta = estimate.theta, estimate.params[n_models:]
        if replicates is None:
            beta_se = np.sqrt(np.clip(np.diag(estimate.work["joint"])[n_models:], 0.0, None))
            styled_rank = rank_intervals(*normal_bounds(ELO_PER_NAT * theta, ELO_PER_NAT ** 2 * result.covariance))[0]
            plain_rank = rank_intervals(*normal_bounds(reference.rating, ELO_PER_NAT ** 2 * reference.covariance))[0]
        else:
            finite = np.all(np.isfinite(replicates), axis=1)
            if finite.sum() > 1:
                beta_se = replicates[finite, n_models:].std(axis=0, ddof=1)
            else:
                beta_se = np.sqrt(np.clip(np.diag(self.joint_covariance(estimate, robust=True))[n_models:], 0.0, None))
            with np.errstate(invalid="ignore"):
                styled_rank = rank_intervals(*percentile_bounds(ELO_PER_NAT * replicates[:, :n_models]))[0]
            plain_rank = reference.rank
        return replace(result, style_coefficients=dict(zip(STYLE_COLUMNS, beta.tolist())),
                       style_coefficient_se=dict(zip(STYLE_COLUMNS, np.asarray(beta_se).tolist())),
                       rank_change={name: int(plain_rank[k] - styled_rank[k]) for k, name in enumerate(result.models)},
                       rating_without_style=reference.rating)
