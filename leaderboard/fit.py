"""The one way every rating model is fitted: ``fit(model, data, ci=...) -> RatingResult``.

A model (leaderboard.models.base.RatingModel: Bradley-Terry with half or Davidson ties, style
control, Plackett-Luce, the joint pairwise + K-wise Plackett-Luce) gives the point estimate and
its covariance; :func:`fit` does the rest once for all of them: the 95% intervals (``sandwich``,
``fisher``: normal intervals from the model's robust or model-based covariance; ``bootstrap``:
percentile intervals, from the batched bootstrap for plain Bradley-Terry and from exact refits
for every other model; ``none``), the reporting scale (mean 1000, or one model anchored), the
ranks (in RatingResult) and the settings every result reports. The other functions here are the
familiar entry points, each a model and its votes handed to :func:`fit`.

May import: leaderboard.data, leaderboard.models, leaderboard.resampling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leaderboard.data.counts import PairCounts
from leaderboard.models.base import Estimate, RatingModel, VoteData
from leaderboard.models.blas import blas_threads_for
from leaderboard.models.graph import DisconnectedGraphError, NoMaximumLikelihoodError
from leaderboard.models.joint_fit import JointPlackettLuce
from leaderboard.models.pairwise import BradleyTerry, NoVotesError, pairwise_model
from leaderboard.models.plackett_luce import PlackettLuce
from leaderboard.models.result import (
    BOOTSTRAP,
    NO_INTERVALS,
    SANDWICH,
    RatingResult,
    fit_settings,
    method_name,
)
from leaderboard.models.sandwich import normal_bounds, percentile_bounds
from leaderboard.models.scale import ELO_PER_NAT, rating_transform
from leaderboard.models.style_control import DEFAULT_ALPHA_COVARIATES, StyleControl, style_vote_data
from leaderboard.resampling.bootstrap import bootstrap_thetas
from leaderboard.resampling.bootstrap_refit import refit_replicates

CI_METHODS = (SANDWICH, BOOTSTRAP, NO_INTERVALS)  # Bradley-Terry's, and the CLI's

__all__ = ["fit", "fit_leaderboard", "fit_plackett_luce", "fit_style_control", "fit_joint_plackett_luce",
           "unbounded_notes", "DisconnectedGraphError", "NoMaximumLikelihoodError", "NoVotesError"]


def fit(model: RatingModel, data: VoteData, *, ci: str = SANDWICH, n_bootstrap: int = 1000, seed: int = 0,
        anchor: tuple[str, float] | None = None, warm_start: dict | None = None,
        progress: bool = False) -> RatingResult:
    """Ratings of ``model`` on ``data`` with 95% intervals and rank intervals.

    ci: one of ``model.interval_methods``: "sandwich" (robust normal intervals), "fisher" (normal
    intervals from the inverse information), "bootstrap" (percentile intervals from
    ``n_bootstrap`` replicates, reproducible with ``seed``; the covariance is then theirs) or
    "none" (lower = upper = rating; the covariance is the model-based one). anchor: (model,
    rating) pins that model's rating; otherwise ratings have mean 1000. warm_start: the previous
    fit's ``theta`` by model name (and ``beta`` for style control); it changes the path, not the
    answer. progress: a bar on stderr while bootstrapping.
    """
    if ci not in model.interval_methods:
        raise ValueError(f"ci must be one of {model.interval_methods} for {type(model).__name__}, got {ci!r}")
    if ci == BOOTSTRAP and n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be at least 2 (e.g. 200), got {n_bootstrap}")
    plain = model.reference_model()
    reference = None if plain is None else fit(plain, data, ci=model.reference_ci(ci), n_bootstrap=n_bootstrap,
                                               seed=seed)
    with blas_threads_for(len(data.pairs.models)):
        estimate = model.estimate(data, warm_start=warm_start)
        models = estimate.models
        if anchor is not None and anchor[0] not in models:
            shown = f"{models[:10]}{'...' if len(models) > 10 else ''}"
            raise ValueError(f"anchor must be (model, rating) with a fitted model: {anchor[0]!r} has no votes "
                             f"here; models are {shown}")
        transform, offset = rating_transform(models, anchor)
        rating = offset + transform @ estimate.theta
        bounds, replicates, interval_details, row_notes = None, None, {}, {}
        if ci == BOOTSTRAP:
            replicates = bootstrap_replicates(model, estimate, n_bootstrap=n_bootstrap, seed=seed, progress=progress)
            thetas = replicates[:, :len(models)]
            finite = np.all(np.isfinite(replicates), axis=1)
            covariance = (np.cov(thetas[finite], rowvar=False) if finite.sum() > 1
                          else np.full((len(models),) * 2, np.nan))
            # elementwise, not a matrix product: replicates may hold +-inf (unbounded in that resample)
            reference_theta = thetas[:, [models.index(anchor[0])]] if anchor is not None else 0.0
            with np.errstate(invalid="ignore"):
                bounds = percentile_bounds(offset + ELO_PER_NAT * (thetas - reference_theta))
            interval_details = {"n_bootstrap": n_bootstrap, "seed": seed}
            if model.reports_unbounded:
                interval_details["bootstrap_replicates_with_unbounded_models"] = int((~finite).sum())
            row_notes = unbounded_notes(models, thetas, *bounds, alpha=model.alpha)
        else:
            covariance = model.covariance(estimate, robust=ci == SANDWICH)
            if ci != NO_INTERVALS:
                bounds = normal_bounds(rating, transform @ covariance @ transform.T)
        lower, upper = bounds if bounds is not None else (None, None)
        result = RatingResult(
            models=models, theta=estimate.theta, covariance=covariance, rating=rating, lower=lower, upper=upper,
            votes=estimate.votes, n_votes=estimate.n_votes,
            method=method_name(model.name, ci, style_control=model.style_control),
            settings=fit_settings(ci=ci, anchor=anchor, solution=estimate.solution, **estimate.details,
                                  **interval_details, **estimate.found),
            row_notes=row_notes,
        )
        return model.finish(result, estimate, replicates=replicates, reference=reference)


def bootstrap_replicates(model: RatingModel, estimate: Estimate, *, n_bootstrap: int, seed: int,
                         progress: bool) -> np.ndarray:
    """(B, parameters) bootstrap replicates: batched for plain Bradley-Terry (its fast path, the
    same answers as its exact refits to 1e-6 nats), one exact refit each for every other model."""
    if type(model) is BradleyTerry:
        return bootstrap_thetas(estimate.theta, estimate.work, n_bootstrap=n_bootstrap, seed=seed, alpha=model.alpha,
                                progress=progress)
    return refit_replicates(model, estimate, n_bootstrap=n_bootstrap, seed=seed, progress=progress)


def unbounded_notes(models: list[str], replicates: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                    alpha: float) -> dict[str, str]:
    """model -> why its bootstrap interval is unbounded and what to do, for the models with an
    infinite bound: how many of the (B, M) ``replicates`` had no finite estimate for it."""
    without = (~np.isfinite(replicates)).sum(axis=0)
    notes = {}
    for k, name in enumerate(models):
        ends = [end for end, value in (("lower", lower[k]), ("upper", upper[k])) if not np.isfinite(value)]
        if not ends:
            continue
        prior = (f"a larger --alpha than {alpha:g}" if alpha > 0 else "--alpha > 0 (e.g. --alpha 0.01)")
        notes[name] = (f"{' and '.join(ends)} bound unbounded: {int(without[k])} of {len(replicates)} bootstrap "
                       "replicates had no finite estimate for this model (in them it won every comparison, or "
                       f"lost every one); more votes for it, or {prior}, bound it")
    return notes


# ---- the familiar entry points: one model, its votes, fit() -----------------------------------

def fit_leaderboard(counts: PairCounts, *, ci: str = SANDWICH, n_bootstrap: int = 1000, seed: int = 0,
                    anchor: tuple[str, float] | None = None, init_theta: dict[str, float] | None = None,
                    ties: str = "half", alpha: float = 0.0, progress: bool = False) -> RatingResult:
    """Bradley-Terry ratings of per-pair ``counts``. ties: "half" (a tie is half a win each way,
    LMArena's convention) or "davidson". alpha: prior precision per theta (nats^-2); 0 = exact
    MLE. init_theta: warm start by model name (nats). The rest as in :func:`fit`."""
    return fit(pairwise_model(ties, alpha), VoteData(pairs=counts), ci=ci, n_bootstrap=n_bootstrap, seed=seed,
               anchor=anchor, warm_start={"theta": init_theta} if init_theta else None, progress=progress)


def fit_plackett_luce(rankings_by_name: list[list[list[str]]], *, ci: str = SANDWICH, n_bootstrap: int = 0,
                      seed: int = 0, anchor: tuple[str, float] | None = None, weights=None,
                      alpha: float = 0.0, multiplicity=None, progress: bool = False) -> RatingResult:
    """Plackett-Luce ratings of K-wise votes given by model name (one ranking per vote, a list of
    groups of names, best first). ``ci``: "sandwich" (default), "fisher", "bootstrap" or "none".
    ``weights``: importance weights, ``multiplicity``: how many identical votes each ranking
    stands for (see leaderboard.models.plackett_luce.plackett_luce); the bootstrap resamples votes,
    not distinct rankings. Models sorted by name; ``votes`` and ``n_votes`` count multiplicity."""
    data = VoteData(rankings=list(rankings_by_name), ranking_weights=weights, ranking_multiplicity=multiplicity)
    return fit(PlackettLuce(alpha=alpha), data, ci=ci, n_bootstrap=n_bootstrap, seed=seed, anchor=anchor,
               progress=progress)


def fit_joint_plackett_luce(pairs: PairCounts, rankings_by_name: list[list[list[str]]], *, alpha: float,
                            init_theta: dict[str, float] | None = None, design_cache: dict | None = None,
                            ranking_weights=None) -> RatingResult:
    """Pairwise ``pairs`` and K-wise ``rankings_by_name`` in one Plackett-Luce fit with sandwich
    intervals (leaderboard.models.joint_fit.JointPlackettLuce); ``alpha`` > 0."""
    data = VoteData(pairs=pairs, rankings=rankings_by_name, ranking_weights=ranking_weights,
                    design_cache=design_cache)
    return fit(JointPlackettLuce(alpha=alpha), data, warm_start={"theta": init_theta} if init_theta else None)


def fit_style_control(df: pd.DataFrame, *, ties: str = "half", weights=None,
                      alpha_covariates: float = DEFAULT_ALPHA_COVARIATES, ci: str = SANDWICH,
                      anchor: tuple[str, float] | None = None, alpha: float = 0.0, n_bootstrap: int = 1000,
                      seed: int = 0, progress: bool = False) -> RatingResult:
    """Style-controlled Bradley-Terry ratings from a votes frame (leaderboard.models.style_control:
    ``style_vote_data`` for the frame, ``StyleControl`` for the model and what the result carries).
    ``ci``: "sandwich", "fisher", "bootstrap" (exact refits; rank_change then compares bootstrap
    ranks with the plain fit's, same seed) or "none" (Fisher covariance, no intervals)."""
    model = StyleControl(alpha=alpha, alpha_covariates=alpha_covariates, ties=ties)
    return fit(model, style_vote_data(df, ties=ties, weights=weights), ci=ci, n_bootstrap=n_bootstrap, seed=seed,
               anchor=anchor, progress=progress)
