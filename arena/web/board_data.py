"""What the leaderboard tab shows, reshaped from the published views (read by
:class:`leaderboard.views.reader.BoardReader` into a :class:`~leaderboard.views.reader.BoardView`).
Nothing here fits or reads Redis: pure functions turn a BoardView into the table's rows, the
freshness line and the model detail; the figures are drawn by :mod:`arena.web.leaderboard_figures`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from leaderboard.models.result import ELO
from leaderboard.models.scale import ELO_PER_NAT
from leaderboard.views.published import ViewStats
from leaderboard.views.reader import BoardView
from leaderboard.views.snapshot import Snapshot, SnapshotRow

TABLE_COLUMNS = ("Rank", "Model", "Rating", "95% interval", "Rank Δ, style control", "Votes",
                 "Organisation", "Licence", "Status")
TABLE_TYPES = ("number", "str", "number", "str", "str", "number", "str", "str", "str")

PRELIMINARY = "preliminary"
RETIRED = "retired"


@dataclass(frozen=True)
class ModelInfo:
    """What the models file says about a model (empty strings when it does not say)."""

    organisation: str = ""
    license: str = ""


# -- the table ------------------------------------------------------------------------------------

def upper_bound_ranks(rows: Sequence[SnapshotRow]) -> dict[str, int]:
    """Rank (upper bound) among ``rows``: 1 + the number of models whose lower bound is above this
    model's upper bound, the rule the worker uses, recomputed so hidden models do not leave gaps."""
    lowers = np.sort(np.array([row.lower for row in rows]))
    return {row.model: 1 + int(len(lowers) - np.searchsorted(lowers, row.upper, side="right")) for row in rows}


def is_retired(model: str, catalogue: Mapping[str, ModelInfo], retired: Iterable[str] = ()) -> bool:
    """A model the view still rates but the arena no longer serves (not configured, or retired by its owner)."""
    return model not in catalogue or model in set(retired)


def format_interval(row: SnapshotRow) -> str:
    """'+12 / -9' in rating points ('±10' when symmetric after rounding; 'unbounded' for an infinite bound)."""
    if not (math.isfinite(row.upper) and math.isfinite(row.lower)):
        return "unbounded"
    above, below = round(row.upper - row.rating), round(row.rating - row.lower)
    return f"±{above}" if above == below else f"+{above} / −{below}"


def format_rank_change(change: int | None) -> str:
    if change is None:
        return "–"
    if change == 0:
        return "="
    return f"▲ {change}" if change > 0 else f"▼ {-change}"


def shown_rows(snapshot: Snapshot | None, catalogue: Mapping[str, ModelInfo], *, show_retired: bool,
               retired: Iterable[str] = ()) -> list[SnapshotRow]:
    if snapshot is None:
        return []
    retired = set(retired)
    return [row for row in snapshot.rows if show_retired or not is_retired(row.model, catalogue, retired)]


def table_frame(board: BoardView, catalogue: Mapping[str, ModelInfo], *, min_votes: int, show_retired: bool,
                retired: Iterable[str] = ()) -> pd.DataFrame:
    """The leaderboard table for ``board``, best first. The rank change compares this view's rank
    with the rank under style control (or without it, when this view has it): positive is up."""
    retired = set(retired)
    rows = shown_rows(board.snapshot, catalogue, show_retired=show_retired, retired=retired)
    ranks = upper_bound_ranks(rows)
    shown = {row.model for row in rows}
    other_rows = [row for row in (board.counterpart.rows if board.counterpart else []) if row.model in shown]
    other_ranks = upper_bound_ranks(other_rows) if other_rows else {}
    records = []
    direction = -1 if board.style_control else 1  # plain rank minus style rank, whichever this view is
    for row in rows:
        change = direction * (ranks[row.model] - other_ranks[row.model]) if row.model in other_ranks else None
        info = catalogue.get(row.model, ModelInfo())
        status = [RETIRED] if is_retired(row.model, catalogue, retired) else []
        if row.votes < min_votes:
            status.append(PRELIMINARY)
        records.append([ranks[row.model], row.model, round(row.rating), format_interval(row),
                        format_rank_change(change), row.votes, info.organisation, info.license, ", ".join(status)])
    return pd.DataFrame(records, columns=list(TABLE_COLUMNS))


# -- the freshness line ---------------------------------------------------------------------------

def _seconds(value: float) -> str:
    value = max(0, round(value))
    if value < 120:
        return f"{value} s"
    if value < 7200:
        return f"{round(value / 60)} min"
    return f"{round(value / 3600)} h"


@dataclass(frozen=True)
class Freshness:
    """What the freshness line says, small enough to keep per page between polls."""

    total_votes: int
    generated_at: float
    next_refit_at: float | None
    method: str

    @classmethod
    def of(cls, board: BoardView) -> Freshness | None:
        if board.snapshot is None:
            return None
        return cls(board.snapshot.total_votes, board.snapshot.generated_at,
                   board.index.next_refit_at if board.index else None, board.snapshot.method)


def freshness_line(freshness: Freshness | None, now: float, refit_interval: float) -> str:
    """'1,234 votes, refitted 12 s ago, next refit in 3 s if there are new votes' (plain words, no
    method codes). The worker refits only when votes have arrived since its last publish, and no
    sooner than ``next_refit_at`` (leaderboard.live.policy.RefitSchedule): once that time has
    passed with nothing new, the line says the next refit waits for new votes."""
    if freshness is None:
        return "No votes yet: the leaderboard appears a few seconds after the first vote."
    votes = freshness.total_votes
    line = f"{votes:,} vote{'' if votes == 1 else 's'}, refitted {_seconds(now - freshness.generated_at)} ago"
    next_at = freshness.next_refit_at
    if next_at is None and refit_interval:
        next_at = freshness.generated_at + refit_interval
    if next_at is not None:
        line += (f", next refit in {_seconds(next_at - now)} if there are new votes" if next_at > now
                 else ", next refit when new votes arrive")
    if freshness.method == ELO:
        line += " · provisional ratings until there are enough votes for a full fit"
    return line


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def view_note(board: BoardView) -> str:
    """The published view's own note (the API's ``note``: why it fell back to online Elo, which
    votes it left out, ...) as small markdown text, "" when it has none. Escaped: a note can quote
    an error message or a model name."""
    note = board.snapshot.note.strip() if board.snapshot is not None else ""
    if not note:
        return ""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(note, quote=False))
    return f"<small>About this view: {escaped}</small>"


METHOD_WORDS = {
    "bradley-terry": "Bradley-Terry",
    "bradley-terry-davidson": "Bradley-Terry with a tie model (Davidson)",
    "plackett-luce": "Plackett-Luce (pairwise and K-wise votes together)",
    "style-control": "Bradley-Terry with style control",
    "elo": "online Elo (before the first full fit)",
    "sandwich": "robust (sandwich) 95% intervals",
    "bootstrap": "bootstrap 95% intervals",
    "fisher": "model-based 95% intervals",
}


def method_in_words(method: str) -> str:
    """'bradley-terry+sandwich' -> 'Bradley-Terry, robust (sandwich) 95% intervals'."""
    return ", ".join(METHOD_WORDS.get(part, part) for part in method.split("+") if part)


# -- the model detail -----------------------------------------------------------------------------

OPPONENT_COLUMNS = ("Opponent", "Votes", "Won", "Lost", "Tied", "Win rate", "Predicted")


def predicted_win_rates(snapshot: Snapshot, models: Sequence[str]) -> np.ndarray:
    """P(row beats column) from the fit: the logistic of theta_row - theta_col (NaN for a model not fitted)."""
    position = {name: i for i, name in enumerate(snapshot.models)}
    theta = np.array([snapshot.theta[position[m]] if m in position and snapshot.theta else np.nan for m in models])
    rates = expit(theta[:, None] - theta[None, :])
    np.fill_diagonal(rates, np.nan)
    return rates


def observed_win_rates(stats: ViewStats, models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(win rate, battles) of row against column among ``models``; a tie counts half; NaN where unplayed."""
    position = {name: i for i, name in enumerate(stats.models)}
    pick = np.array([position.get(m, -1) for m in models])
    known = pick >= 0
    size = len(models)
    battles = np.zeros((size, size))
    wins = np.zeros((size, size))
    ties = np.zeros((size, size))
    if known.any():
        rows = pick[known]
        grid = np.ix_(np.flatnonzero(known), np.flatnonzero(known))
        battles[grid] = np.asarray(stats.battles, dtype=float)[np.ix_(rows, rows)]
        wins[grid] = np.asarray(stats.wins, dtype=float)[np.ix_(rows, rows)]
        ties[grid] = np.asarray(stats.ties, dtype=float)[np.ix_(rows, rows)]
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(battles > 0, (wins + 0.5 * ties) / battles, np.nan)
    return rates, battles


def opponent_frame(board: BoardView, model: str) -> pd.DataFrame:
    """The model's record against each opponent it met, most-played first."""
    stats, snapshot = board.stats, board.snapshot
    if stats is None or model not in stats.models:
        return pd.DataFrame(columns=list(OPPONENT_COLUMNS))
    i = stats.models.index(model)
    predicted = predicted_win_rates(snapshot, stats.models)[i] if snapshot and snapshot.theta else None
    records = []
    for j, opponent in enumerate(stats.models):
        played = stats.battles[i][j]
        if j == i or played == 0:
            continue
        won, tied = stats.wins[i][j], stats.ties[i][j]
        lost = played - won - tied
        rate = (won + 0.5 * tied) / played
        guess = "" if predicted is None or np.isnan(predicted[j]) else f"{predicted[j]:.0%}"
        records.append([opponent, played, won, lost, tied, f"{rate:.0%}", guess])
    records.sort(key=lambda record: -record[1])
    return pd.DataFrame(records, columns=list(OPPONENT_COLUMNS))


def category_ratings_frame(model: str, snapshots: Mapping[str, Snapshot], labels: Mapping[str, str]) -> pd.DataFrame:
    """The model's rating, interval, rank and votes in each category view that rates it."""
    records = []
    for name, snapshot in snapshots.items():
        rows = {row.model: row for row in snapshot.rows}
        if model in rows:
            row = rows[model]
            records.append([labels.get(name, name), round(row.rating), format_interval(row), row.rank, row.votes])
    return pd.DataFrame(records, columns=["Category", "Rating", "95% interval", "Rank", "Votes"])


STYLE_FEATURE_WORDS = {"tokens": "answer length (tokens)", "length": "answer length", "headers": "markdown headers",
                       "list_items": "list items", "lists": "list items", "bold": "bold text"}


def style_frame(stats: ViewStats | None, model: str) -> pd.DataFrame:
    """Style control's coefficients (rating points per standard deviation of the normalised style
    difference between two answers, as leaderboard.models.style_control fits them) beside the model's
    own mean feature values, from a style-control view's ViewStats."""
    columns = ["Style feature", "Effect on rating (points per s.d. of the style difference)", "This model's average"]
    if stats is None or not stats.style_coefficients:
        return pd.DataFrame(columns=columns)
    means = stats.style_means.get(model, {})
    records = [[STYLE_FEATURE_WORDS.get(feature, feature.replace("_", " ")), round(ELO_PER_NAT * coefficient, 1),
                "" if feature not in means else round(means[feature], 2)]
               for feature, coefficient in stats.style_coefficients.items()]
    return pd.DataFrame(records, columns=columns)


def model_summary(board: BoardView, model: str, catalogue: Mapping[str, ModelInfo], retired: Iterable[str] = ()) -> str:
    """A short markdown paragraph about the model in this view."""
    rows = {row.model: row for row in (board.snapshot.rows if board.snapshot else [])}
    if model not in rows:
        return f"**{model}** has no rating in this view."
    row = rows[model]
    info = catalogue.get(model, ModelInfo())
    made = ", ".join(part for part in (info.organisation and f"by {info.organisation}",
                                       info.license and f"licence {info.license}") if part)
    rank_range = f"{row.rank}" if row.rank == row.rank_lower else f"{row.rank} to {row.rank_lower}"
    text = (f"### {model}\n{made + '. ' if made else ''}Rating **{round(row.rating)}** "
            f"(95% interval {round(row.lower)} to {round(row.upper)}), rank {rank_range}, {row.votes:,} votes.")
    if is_retired(model, catalogue, retired):
        text += " Retired: no longer in rotation."
    return text
