"""One rating result for every fitter, the one vocabulary of method names, and the renderings.

Bradley-Terry (``leaderboard.fit``, half ties or Davidson), style control, Plackett-Luce and
online Elo all return a :class:`RatingResult`. The worker's Snapshot (:meth:`RatingResult.to_snapshot`)
and the CLI's JSON and CSV document (:meth:`RatingResult.to_document`) are each rendered from it
in one place; the CLI's table is ``leaderboard.cli.format_table``.

Method names: a base model name, ``+style-control`` when style covariates are in the model, and
``+<interval method>`` when the result has fitted 95% intervals, e.g. ``bradley-terry+sandwich``,
``bradley-terry+style-control+fisher``, ``plackett-luce+bootstrap``. Online Elo is ``elo``
everywhere (the live fallback before the first fit and ``fit --method elo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from leaderboard.models.ranks import rank_intervals
from leaderboard.models.sandwich import normal_bounds
from leaderboard.models.scale import ELO_CENTER, ELO_PER_NAT, elo_to_nats
from leaderboard.views.snapshot import Snapshot, SnapshotRow

BRADLEY_TERRY = "bradley-terry"
BRADLEY_TERRY_DAVIDSON = "bradley-terry-davidson"
PLACKETT_LUCE = "plackett-luce"
ELO = "elo"
STYLE_CONTROL = "style-control"

SANDWICH = "sandwich"
BOOTSTRAP = "bootstrap"
FISHER = "fisher"  # model-based: the inverse information
NO_INTERVALS = "none"

ROW_FIELDS = tuple(SnapshotRow.model_fields)  # a row's fields, as the Snapshot defines them


def method_name(model: str, intervals: str = NO_INTERVALS, *, style_control: bool = False) -> str:
    """``model`` [+style-control] [+intervals]: the one spelling of a method (see the module docstring)."""
    parts = [model]
    if style_control:
        parts.append(STYLE_CONTROL)
    if intervals != NO_INTERVALS:
        parts.append(intervals)
    return "+".join(parts)


def fit_settings(*, ci: str, anchor: tuple[str, float] | None, solution, **details) -> dict:
    """The settings every fitted result reports: interval method, anchor, rating scale, the
    fitter's own ``details``, and what the Newton solver did (``solution`` has ``iterations``
    and ``max_abs_gradient``, see leaderboard.models.optim)."""
    return {
        "ci": ci, **details, "anchor": list(anchor) if anchor else None,
        "scale": {"points_per_nat": ELO_PER_NAT, "center": ELO_CENTER if anchor is None else None},
        "newton_iterations": int(solution.iterations),
        "max_abs_gradient": float(solution.max_abs_gradient),
    }


@dataclass(eq=False)
class RatingResult:
    """Ratings of ``models``; every array is in ``models`` order.

    theta: (M,) natural-log strengths, mean 0; covariance: (M, M) covariance of theta (nats).
    These two are what the matchmaker uses. rating, lower, upper: rating points (400/ln 10 per
    nat; mean 1000 unless anchored); a bound may be -inf/+inf (bootstrap resamples in which the
    model never lost, or never won). rank, rank_lower: best and worst plausible rank from the
    intervals (leaderboard.models.ranks); computed here. votes: votes each model took part in; n_votes:
    votes fitted. settings: JSON-ready description of the fit.

    No intervals: leave ``lower`` and ``upper`` out (None). This constructor is the one place that
    turns that into lower = upper = rating, with ``has_intervals`` False (do not pass it yourself;
    it survives ``dataclasses.replace``).

    row_notes: model -> a sentence for its row (``note`` in the JSON rows), e.g. why a bootstrap
    bound is unbounded and what would bound it.

    Style control only: style_coefficients / style_coefficient_se (feature -> nats per standard
    deviation of the covariate), rank_change (model -> rank without style control minus rank
    with; negative = drops once style is accounted for), rating_without_style (plain
    Bradley-Terry ratings of the same votes).
    """

    models: list[str]
    theta: np.ndarray
    covariance: np.ndarray
    rating: np.ndarray
    votes: np.ndarray
    n_votes: int
    method: str
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    settings: dict = field(default_factory=dict)
    note: str = ""
    style_coefficients: dict[str, float] = field(default_factory=dict)
    style_coefficient_se: dict[str, float] = field(default_factory=dict)
    rank_change: dict[str, int] | None = None
    rating_without_style: np.ndarray | None = None
    has_intervals: bool = True
    row_notes: dict[str, str] = field(default_factory=dict)  # model -> why its row reads as it does (e.g. unbounded)
    rank: np.ndarray = field(init=False)
    rank_lower: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if (self.lower is None) != (self.upper is None):
            raise ValueError("give both lower and upper bounds, or neither (no intervals)")
        if self.lower is None:
            self.has_intervals = False
            self.lower, self.upper = self.rating.copy(), self.rating.copy()
        self.rank, self.rank_lower = rank_intervals(self.lower, self.upper)

    @property
    def n_unbounded(self) -> int:
        """Number of models with an infinite interval end."""
        return int(np.sum(~(np.isfinite(self.lower) & np.isfinite(self.upper))))

    def rows(self) -> list[dict]:
        """One dict per model (ROW_FIELDS, plus rank_change under style control), best rating
        first, ties broken by name."""
        order = sorted(range(len(self.models)), key=lambda k: (-self.rating[k], self.models[k]))
        rows = []
        for k in order:
            row = {"model": self.models[k], "rating": float(self.rating[k]), "lower": float(self.lower[k]),
                   "upper": float(self.upper[k]), "rank": int(self.rank[k]), "rank_lower": int(self.rank_lower[k]),
                   "votes": int(self.votes[k])}
            if self.rank_change is not None:
                # positive: the model ranks better once style is controlled for; negative: it drops
                row["rank_change"] = int(self.rank_change[self.models[k]])
            if self.models[k] in self.row_notes:
                row["note"] = self.row_notes[self.models[k]]
            rows.append(row)
        return rows

    def to_document(self) -> dict:
        """The CLI's JSON document (its CSV is the ``models`` list): rows, method, settings, totals.
        Style coefficients go into the settings; an unbounded interval end is written as null."""
        rows = [{key: (None if isinstance(value, float) and not np.isfinite(value) else value)
                 for key, value in row.items()} for row in self.rows()]
        settings = dict(self.settings)
        if self.style_coefficients:
            settings["style_coefficients"] = {name: float(v) for name, v in self.style_coefficients.items()}
            settings["style_coefficient_se"] = {name: float(v) for name, v in self.style_coefficient_se.items()}
        return {"models": rows, "method": self.method, "settings": settings, "n_votes": int(self.n_votes)}

    def to_snapshot(self, *, generated_at: float, note: str) -> Snapshot:
        """The worker's Snapshot of this result, with the worker's ``note`` (which includes the result's own)."""
        return Snapshot(
            generated_at=generated_at, total_votes=int(self.n_votes), method=self.method,
            rows=[SnapshotRow(**{key: row[key] for key in ROW_FIELDS}) for row in self.rows()],
            models=list(self.models), theta=np.asarray(self.theta, dtype=float).tolist(),
            covariance=np.asarray(self.covariance, dtype=float).tolist(),
            note=note,
        )


def elo_result(ratings: dict[str, float], votes_per_model: dict[str, int], n_votes: int, *,
               rough_intervals: bool = False, alpha: float = 0.0, anchor: tuple[str, float] | None = None,
               settings: dict | None = None, note: str = "") -> RatingResult:
    """Online Elo ``ratings`` (model -> rating points) as a RatingResult, models sorted by name.

    Elo has no confidence interval. theta is the rating in nats (default 400/ln 10 scale) and the
    covariance a rough diagonal: a model with n votes against equals has Fisher information n/4
    nats^-2, so variance 1 / (n/4 + max(alpha, 1e-3)). ``rough_intervals``: show +-1.96 of that as
    the bounds (the live leaderboard before its first fit); otherwise there are no intervals.
    ``anchor`` = (model, rating) shifts the ratings so that model has that rating.
    """
    models = sorted(ratings)
    rating = np.array([ratings[name] for name in models], dtype=float)
    votes = np.array([votes_per_model.get(name, 0) for name in models], dtype=np.int64)
    variance = 1.0 / (votes / 4.0 + max(alpha, 1e-3))
    theta = elo_to_nats(rating)
    if anchor is not None:
        if anchor[0] not in ratings:
            raise ValueError(f"anchor model {anchor[0]!r} is not among the rated models")
        rating = rating - ratings[anchor[0]] + anchor[1]
    lower = upper = None
    if rough_intervals:
        lower, upper = normal_bounds(rating, ELO_PER_NAT ** 2 * np.diag(variance))
    return RatingResult(models=models, theta=theta, covariance=np.diag(variance), rating=rating, lower=lower,
                        upper=upper, votes=votes, n_votes=n_votes, method=ELO, settings=dict(settings or {}),
                        note=note)
