"""Leaderboard views: the contract between the worker that publishes them and the page/API that read them.

A *view* is one fit of the votes: a category (``overall``, a language, ``coding``, a category tag ...)
with or without style control. The worker refits every view on its schedule and writes, per view:

- a :class:`~leaderboard.views.snapshot.Snapshot` at :func:`view_snapshot_key` (the overall view without
  style control is also written at ``snapshot_key``, which the matchmaker reads);
- a :class:`ViewStats` at :func:`view_stats_key` (the counts the page's figures draw);
- a :class:`RatingPoint` appended to :func:`rating_history_key` (capped list, oldest first);

and, once per cycle, a :class:`ViewIndex` at :func:`view_index_key` naming every view it published.
The page and the API only read these keys: nothing fits per request.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

OVERALL = "overall"
STYLE_SUFFIX = "+style"


def view_id(category: str = OVERALL, style_control: bool = False) -> str:
    """``overall``, ``overall+style``, ``coding``, ``coding+style`` ..."""
    return category + (STYLE_SUFFIX if style_control else "")


def view_snapshot_key(prefix: str, view: str) -> str:
    return f"{prefix}:leaderboard:view:{view}"


def view_stats_key(prefix: str, view: str) -> str:
    return f"{prefix}:leaderboard:view-stats:{view}"


def rating_history_key(prefix: str, view: str) -> str:
    return f"{prefix}:leaderboard:history:{view}"


def view_index_key(prefix: str) -> str:
    return f"{prefix}:leaderboard:views"


class CategoryInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description=(
        "the category's one name, used by the API, the export and `fit --where`/`--category`"))
    label: str = Field(description="what a person reads, e.g. 'Multi-turn'")
    kind: str = Field(description=(
        "'overall', 'language', 'derived' (coding, long prompt, multi-turn, hard prompts) or 'tag'"))
    votes: int


class ViewIndex(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generated_at: float
    categories: list[CategoryInfo] = Field(description=(
        "overall first; only categories with at least min_category_votes"))
    style_control: bool = Field(description="whether '+style' views were published for these categories")
    min_category_votes: int
    next_refit_at: float | None = Field(default=None, description=(
        "the earliest time of the worker's next cycle (unix time): it refits only once new votes have arrived, "
        "so a time in the past means it is waiting for the next vote"))


class ViewStats(BaseModel):
    """Observed counts for one view, in ``models`` order. K-wise votes count as their rank-broken pairs."""

    model_config = ConfigDict(extra="forbid")

    view: str
    generated_at: float
    models: list[str]
    battles: list[list[int]] = Field(description="battles[i][j]: comparisons between i and j (symmetric)")
    wins: list[list[int]] = Field(description="wins[i][j]: comparisons i won against j")
    ties: list[list[int]] = Field(description="ties[i][j]: ties between i and j (symmetric)")
    days: list[str] = Field(default_factory=list, description="UTC dates 'YYYY-MM-DD', oldest first")
    votes_by_day: list[list[int]] = Field(default_factory=list, description=(
        "votes_by_day[i][d]: votes model i took part in on days[d]"))
    style_coefficients: dict[str, float] = Field(default_factory=dict, description=(
        "style views: feature -> coefficient (nats)"))
    style_means: dict[str, dict[str, float]] = Field(default_factory=dict, description=(
        "style views: model -> feature -> its mean value"))


class RatingPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generated_at: float
    total_votes: int
    ratings: dict[str, float]
