"""The live board's views: their votes, fits and stats, which the worker publishes and ``fit --live`` repeats.

Both go through :class:`LiveVotes` (the overall :class:`~leaderboard.live.tally.VoteTally` and
the :class:`~leaderboard.live.view_tally.ViewTally` of the categories) and :func:`fit_view`, which
fits every view -- overall included, as the worker's snapshot does -- by the one live fit,
:func:`leaderboard.live.policy.fit_live`, so they cannot drift. The live settings:

- rated votes: anonymous and K-wise (``named`` votes are archived, not rated: the voter saw the
  names); every vote weighs 1 (no inverse-propensity weights, no voter cap); ties count half a
  win each way; a N(0, 1/alpha) prior on each rating with ``alpha = DEFAULT_PRIOR_PRECISION``
  (0.01 nats^-2);
- a view without style control: Bradley-Terry with sandwich intervals, or, once the view has
  K-wise votes, every vote of the view fitted jointly by Plackett-Luce (leaderboard.live.policy);
  online Elo below MIN_VOTES_TO_FIT votes or when no fit exists (the note says why);
- a view with style control (``+style``): the style-controlled Bradley-Terry fit
  (leaderboard.models.style_control) of the view's *pairwise* votes, with the same prior. Style control is
  pairwise only: its covariate is the style difference between two answers, which has no
  Plackett-Luce counterpart, so a view's K-wise votes are left out of its style fit (its note
  says how many);
- categories: leaderboard.views.categories.vote_categories.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from leaderboard.data.archive_reader import archive_events
from leaderboard.data.counts import I_WINS, J_WINS, TIE_CLASS
from leaderboard.data.events import STYLE_COLUMNS, StyleFeatures, VoteEvent
from leaderboard.data.loading import file_format, is_archive, load_all
from leaderboard.live.policy import DEFAULT_PRIOR_PRECISION, ViewFit, fit_live
from leaderboard.live.tally import VoteTally
from leaderboard.live.view_tally import ViewTally
from leaderboard.models.base import StyleRows
from leaderboard.views.published import OVERALL, ViewStats, view_id

__all__ = ["LiveVotes", "UnknownCategoryError", "ViewFit", "events_from_file", "fit_view", "reproduce_view",
           "view_stats"]


class UnknownCategoryError(ValueError):
    """A category no vote belongs to; the message names the known ones."""


@dataclass
class LiveVotes:
    """Every rated vote, kept as the live worker keeps it."""

    overall: VoteTally = field(default_factory=VoteTally)
    views: ViewTally = field(default_factory=ViewTally)

    @classmethod
    def empty(cls, *, rate_deanonymised: bool = False) -> LiveVotes:
        """No votes yet; ``rate_deanonymised``: rate votes with ``identity_flags`` too (the worker's
        ``--rate-deanonymised``; by default they are archived, not rated)."""
        return cls(VoteTally(rate_deanonymised=rate_deanonymised), ViewTally(rate_deanonymised=rate_deanonymised))

    @classmethod
    def from_events(cls, events: Iterable[VoteEvent], *, rate_deanonymised: bool = False) -> LiveVotes:
        live = cls.empty(rate_deanonymised=rate_deanonymised)
        for event in events:
            live.add(event)
        return live

    def add(self, event: VoteEvent) -> None:
        self.overall.add(event)
        self.views.add(event)

    def category_votes(self) -> dict[str, int]:
        """category -> rated votes, ``overall`` included."""
        votes = dict(self.views.votes)
        votes[OVERALL] = self.overall.rated
        return votes

    def tally(self, category: str) -> VoteTally:
        if category == OVERALL:
            return self.overall
        if category not in self.views.by_category:
            known = ", ".join(sorted(self.category_votes()))
            raise UnknownCategoryError(f"unknown category {category!r}: the votes have {known}")
        return self.views.by_category[category]


def fit_view(live: LiveVotes, category: str = OVERALL, style_control: bool = False, *,
             alpha: float = DEFAULT_PRIOR_PRECISION, warm_start: dict | None = None,
             flagged_voters: Collection[str] = (), flagged_voter_weight: float = 0.0) -> ViewFit:
    """The live fit of one view (leaderboard.live.policy.fit_live on the view's votes). ``warm_start``:
    the previous fit's ``theta`` (by model name) and, for style views, ``beta``; it changes the path
    of Newton's method, not the answer. ``flagged_voters``: each of their votes weighs
    ``flagged_voter_weight`` (0: left out), in every view as in the overall board."""
    style_rows = style_view_rows(live, category, flagged_voters, flagged_voter_weight) if style_control else None
    return fit_live(live.tally(category), alpha=alpha, warm_start=warm_start, flagged_voters=flagged_voters,
                    flagged_voter_weight=flagged_voter_weight, overall=category == OVERALL, style_rows=style_rows)


def style_view_rows(live: LiveVotes, category: str, flagged_voters: Collection[str],
                    flagged_voter_weight: float) -> StyleRows:
    """The view's pairwise votes one row each, as style control takes them, weighted as the view's
    tally is (a vote of weight 0 is left out)."""
    views = live.views
    rows = views.pairwise_rows(category)
    weights = views.row_weights(rows, flagged_voters, flagged_voter_weight)
    kept = weights > 0
    return StyleRows(views.models, views.code_a.values[rows][kept], views.code_b.values[rows][kept],
                     views.differences.values[rows][kept], views.score_a.values[rows][kept], weights[kept])


def view_stats(live: LiveVotes, category: str, style_control: bool, models: list[str], generated_at: float,
               style_coefficients: dict[str, float] | None = None) -> ViewStats:
    """The observed counts of one view, in ``models`` order (the view's snapshot's; see
    leaderboard.views.published.ViewStats); style views also carry ``style_coefficients`` and per-model style
    means. O(pairs + models x days): read from running counts, not from the votes."""
    views = live.views
    models = list(models)
    n = len(models)
    battles = np.zeros((n, n), dtype=np.int64)
    wins = np.zeros((n, n), dtype=np.int64)
    ties = np.zeros((n, n), dtype=np.int64)
    counts = views.counts.get(category)
    for pairs in (live.tally(category).pairs,) + ((counts.kwise_pairs,) if counts is not None else ()):
        _add_pair_counts(pairs, models, battles, wins, ties)
    # built from our own arrays: no validation pass over its 3 x M^2 numbers
    stats = ViewStats.model_construct(view=view_id(category, style_control), generated_at=generated_at, models=models,
                                      battles=battles.tolist(), wins=wins.tolist(), ties=ties.tolist(), days=[],
                                      votes_by_day=[], style_coefficients={}, style_means={})
    if counts is None:
        return stats
    global_to_row = {views.model_index[name]: k for k, name in enumerate(models) if name in views.model_index}
    used_days = sorted({day for _, day in counts.votes_by_day}, key=lambda day: views.days[day])
    column = {day: k for k, day in enumerate(used_days)}
    by_day = np.zeros((n, len(used_days)), dtype=np.int64)
    for (model, day), votes in counts.votes_by_day.items():
        if model in global_to_row:
            by_day[global_to_row[model], column[day]] += votes
    stats.days = [views.days[day] for day in used_days]
    stats.votes_by_day = by_day.tolist()
    if style_control:
        stats.style_coefficients = {name: float(value) for name, value in (style_coefficients or {}).items()}
        stats.style_means = {
            views.models[model]: {feature: total[k] / counts.answers[model] for k, feature in enumerate(STYLE_COLUMNS)}
            for model, total in counts.style_sums.items() if model in global_to_row and counts.answers[model]}
    return stats


def _add_pair_counts(pairs, models: list[str], battles: np.ndarray, wins: np.ndarray, ties: np.ndarray) -> None:
    """Add per-pair counts (a PairCounts, by name) into the (n, n) matrices in ``models`` order."""
    if not pairs.n_votes:
        return
    position = {name: k for k, name in enumerate(models)}
    remap = np.array([position.get(name, -1) for name in pairs.models], dtype=np.int64)
    arrays = pairs.arrays()
    i, j = remap[arrays.pair_i], remap[arrays.pair_j]
    keep = (i >= 0) & (j >= 0)
    i, j, count = i[keep], j[keep], arrays.count[keep]
    n = len(models)
    forward, backward = i * n + j, j * n + i

    def cells(code, values):
        return np.bincount(code, values, n * n).reshape(n, n).astype(np.int64)

    total = count.sum(axis=1)
    battles += cells(forward, total) + cells(backward, total)
    wins += cells(forward, count[:, I_WINS]) + cells(backward, count[:, J_WINS])
    ties += cells(forward, count[:, TIE_CLASS]) + cells(backward, count[:, TIE_CLASS])


# ---- fit --live: the same fit from a downloaded file ------------------------------------------

def events_from_file(path: Path) -> Iterator[VoteEvent]:
    """The votes of a file as vote events: our archive read as it is; any other file that
    leaderboard.data.loading reads (the /api/votes export, LMArena files) row by row, pairwise rows
    from its LMArena columns and K-wise rows from a ``ranking`` column when there is one."""
    path = Path(path)
    if file_format(path) == "jsonl" and is_archive(path):
        yield from archive_events(path)
        return
    pairwise, kwise = load_all(path)  # K-wise rows too: the live board fits them jointly
    frame = pd.concat([frame for frame in (pairwise, kwise) if len(frame)], ignore_index=True)
    yield from _frame_events(frame)


def _frame_events(frame) -> Iterator[VoteEvent]:
    columns = set(frame.columns)
    style_columns = [f"{feature}_{side}" for side in ("a", "b") for feature in STYLE_COLUMNS]
    has_style = all(column in columns for column in style_columns)
    for index, row in enumerate(frame.to_dict("records")):
        ranking = _listish(row.get("ranking"))
        mode = row.get("mode")
        if not isinstance(mode, str) or not mode:
            mode = "kwise" if ranking else ("named" if row.get("anony") is False else "anonymous")
        unranked = [str(name) for name in _listish(row.get("unranked"))] if ranking else []
        if ranking:
            models = [name for group in ranking for name in group] + unranked
        else:
            models = [row["model_a"], row["model_b"]]
        if has_style and not ranking:
            style = [StyleFeatures.model_construct(
                tokens=_number(row[f"tokens_{side}"]), headers=_number(row[f"headers_{side}"]),
                list_items=_number(row[f"lists_{side}"]), bold=_number(row[f"bold_{side}"])) for side in ("a", "b")]
        else:
            style = [StyleFeatures.model_construct(tokens=0, headers=0, list_items=0, bold=0) for _ in models]
        tags = row.get("categories") if "categories" in columns else row.get("category_tag")
        turns = row.get("turns", row.get("turn", 1))
        voted_at = row.get("voted_at", row.get("tstamp", 0.0))
        language = row.get("language")
        flags = [str(flag) for flag in _listish(row.get("identity_flags"))]  # the live board leaves these out
        yield VoteEvent.model_construct(
            vote_id=str(row.get("vote_id", index)), battle_id=str(row.get("battle_id", index)), mode=mode,
            models=models, outcome=None if ranking else row["winner"], ranking=ranking or None, unranked=unranked,
            voter_id=str(row.get("voter_id", row.get("judge", ""))), served_at=_number(voted_at),
            voted_at=_number(voted_at), selection_probability=1.0, style=style,
            categories=[str(tag) for tag in _listish(tags)],
            turns=int(_number(turns) or 1), language=language if isinstance(language, str) and language else None,
            identity_flags=flags)


def _listish(value) -> list:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else [value]
        except ValueError:
            return [value]
    if isinstance(value, dict):
        return [key for key, flag in value.items() if flag]
    result = []
    for item in list(value):
        result.append([str(name) for name in item] if isinstance(item, (list, tuple, np.ndarray)) else item)
    return result


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def reproduce_view(path: Path, category: str = OVERALL, style_control: bool = False) -> ViewFit:
    """``fit FILE --live [--category NAME] [--style-control]``: the live board's fit of that view."""
    live = LiveVotes.from_events(events_from_file(path))
    if category != OVERALL:
        live.tally(category)  # UnknownCategoryError names the known ones
    if style_control and not _has_style(live):
        raise ValueError(f"{path}: its votes carry no style features; style control needs them")
    return fit_view(live, category, style_control)


def _has_style(live: LiveVotes) -> bool:
    overall = live.views.counts.get(OVERALL)
    return overall is None or any(any(total) for total in overall.style_sums.values())

