"""The one interface every rating model implements, and the one input type they all take.

:class:`VoteData` holds the votes at the model boundary: per-pair counts (pairwise votes, by
outcome class, with their weights), K-wise rankings by name (with importance weights and
multiplicities) and, for style control, one row per pairwise vote with its style covariates.
A model reads the parts it understands.

:class:`RatingModel` (after arena-rank's ``RatingSystem``): a model fits the votes to a point
estimate (:meth:`~RatingModel.estimate`, with what its covariance and refits need), gives the
sandwich or model-based covariance of theta (:meth:`~RatingModel.covariance`), and, for the
bootstrap by exact refits, draws resampled votes (:meth:`~RatingModel.resample`) and refits one
replicate (:meth:`~RatingModel.refit`). Intervals, ranks and the reporting scale are not the
model's job: ``leaderboard.fit.fit(model, data, ci=...)`` does them once for every model.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leaderboard.data.counts import PairCounts
from leaderboard.models.result import BOOTSTRAP, NO_INTERVALS, SANDWICH, RatingResult


def check_alpha(alpha: float) -> float:
    """``alpha`` (a prior precision per theta, nats^-2) as a float; ValueError unless finite and >= 0."""
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha >= 0.0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return alpha


@dataclass(frozen=True)
class StyleRows:
    """One row per pairwise vote, for style control. ``model_a``, ``model_b``: (N,) indices into
    ``models``; ``differences``: (N, F) raw relative style differences (a - b) / (a + b + 1) in
    STYLE_COLUMNS order (standardised by the model); ``score_a``: 1, 0 or 0.5 (tie); ``weights``: (N,)."""

    models: list[str]
    model_a: np.ndarray
    model_b: np.ndarray
    differences: np.ndarray
    score_a: np.ndarray
    weights: np.ndarray


@dataclass
class VoteData:
    """Votes as every model takes them.

    pairs: per-pair counts of the pairwise votes (their weights and squared weights included).
    rankings: K-wise votes, each a list of groups of model names, best first; ranking_weights:
    one importance weight per ranking (None: 1 each); ranking_multiplicity: how many identical
    votes each ranking stands for (None: 1 each). style: the pairwise votes one row each, with
    their style covariates (style control only; ``pairs`` holds the same votes' counts).
    design_cache: a dict kept by a caller whose rankings only grow between fits (the worker's
    tally), where the compiled rankings are kept (leaderboard.models.joint_fit).
    """

    pairs: PairCounts = field(default_factory=PairCounts.empty)
    rankings: list = field(default_factory=list)
    ranking_weights: np.ndarray | None = None
    ranking_multiplicity: np.ndarray | None = None
    style: StyleRows | None = None
    design_cache: dict | None = None


@dataclass
class Estimate:
    """A model's point estimate on some votes.

    models: names, in the order of every array; theta: (M,) strengths, nats, mean 0; params: every
    fitted parameter (theta first; e.g. + the style coefficients), the start of each refit;
    solution: what the Newton solver did (``iterations``, ``max_abs_gradient``); votes: (M,) votes
    each model took part in; n_votes: votes fitted; details: the model's settings for the report;
    found: what the fit found beyond theta (e.g. Davidson's nu), reported after the interval
    settings; work: the model's own prepared arrays, for its covariance and refits.
    """

    models: list[str]
    theta: np.ndarray
    params: np.ndarray
    solution: Any
    votes: np.ndarray
    n_votes: int
    details: dict = field(default_factory=dict)
    found: dict = field(default_factory=dict)
    work: Any = None


class RatingModel(ABC):
    """A rating model: ``estimate`` on VoteData, its ``covariance``, and its bootstrap refits.

    Class attributes: ``name`` (the method's base name, leaderboard.models.result), ``style_control``,
    ``interval_methods`` (the ``ci`` values it supports), ``bootstrap_label`` (the progress bar's),
    ``one_generator`` (the refit bootstrap draws every replicate from one ``default_rng(seed)``
    rather than per-chunk generators: Plackett-Luce's, kept so a seed gives the numbers it always
    gave) and ``reports_unbounded`` (its replicates may run off to +-inf; the settings count them).
    """

    name: str = ""
    style_control: bool = False
    interval_methods: tuple[str, ...] = (SANDWICH, BOOTSTRAP, NO_INTERVALS)
    bootstrap_label: str = "bootstrap"
    one_generator: bool = False
    reports_unbounded: bool = True
    alpha: float = 0.0

    @abstractmethod
    def estimate(self, data: VoteData, *, warm_start: dict | None = None) -> Estimate:
        """The point estimate. ``warm_start``: the previous fit's ``theta`` (model name -> nats) and,
        for style control, ``beta``; it changes the path of Newton's method, not the answer."""

    @abstractmethod
    def covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        """(M, M) covariance of mean-zero theta, nats: the sandwich when ``robust``, else the
        inverse information (a model that has only one of them says so in its docstring)."""

    def resample(self, estimate: Estimate, rng: np.random.Generator, size: int) -> Iterable:
        """``size`` resampled versions of the votes, in whatever form :meth:`refit` takes (the
        bootstrap refits each before taking the next, so they may be drawn lazily)."""
        raise NotImplementedError(f"{type(self).__name__} has no bootstrap")

    def refit(self, estimate: Estimate, draw) -> np.ndarray:
        """The parameters (theta first, like ``estimate.params``) refitted on one resample;
        +-inf for a model that runs off in it, NaN where undetermined."""
        raise NotImplementedError(f"{type(self).__name__} has no bootstrap")

    def reference_ci(self, ci: str) -> str | None:
        """The interval method of the plain fit this model's report compares with (None: no comparison)."""
        return None

    def reference_model(self) -> RatingModel | None:
        """The plain model this one's report compares with (style control: Bradley-Terry)."""
        return None

    def finish(self, result: RatingResult, estimate: Estimate, *, replicates: np.ndarray | None,
               reference: RatingResult | None) -> RatingResult:
        """What the model adds to the common result (style control: its coefficients and rank
        changes). ``replicates``: the bootstrap's (B, params), None without a bootstrap;
        ``reference``: the fit of ``reference_model()`` on the same votes, if it has one."""
        return result
