"""What the worker keeps for the category and style-control views, beside the overall VoteTally.

Per category: a :class:`~leaderboard.live.tally.VoteTally` of its votes (so a category view is
fitted exactly as the overall one: Bradley-Terry, or joint Plackett-Luce once it has K-wise
votes), and the running counts the page's figures read (:class:`ViewCounts`: the K-wise votes'
rank-broken pairs, votes per model and day, style sums per model). For every rated pairwise vote,
once: its two models, score and style differences in growable arrays, and per category the
indices of its votes -- what the style-control fits read, vectorised, at publish time.
No Redis and no files here; built from vote events like the overall tally.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from leaderboard.data.counts import PairCounts
from leaderboard.data.events import MODEL_A, MODEL_B, VoteEvent
from leaderboard.data.rankings import all_pairs
from leaderboard.live.tally import VoteTally
from leaderboard.models.style_control import STYLE_COLUMNS
from leaderboard.views.categories import vote_categories
from leaderboard.views.published import OVERALL

_SCORE = {MODEL_A: 1.0, MODEL_B: 0.0}  # anything else (a tie) scores 0.5


class GrowableArray:
    """A numpy array that grows by appending (amortised O(1)); ``values`` is a view of the filled part."""

    def __init__(self, dtype, width: int | None = None):
        self._shape_tail = () if width is None else (width,)
        self._data = np.zeros((16,) + self._shape_tail, dtype=dtype)
        self.size = 0

    def append(self, value) -> None:
        if self.size == self._data.shape[0]:
            grown = np.zeros((2 * self.size,) + self._shape_tail, dtype=self._data.dtype)
            grown[: self.size] = self._data
            self._data = grown
        self._data[self.size] = value
        self.size += 1

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]


def style_difference(a, b) -> list[float]:
    """(a - b) / (a + b + 1) per style feature, in STYLE_COLUMNS order (as style_control computes it)."""
    pairs = ((a.tokens, b.tokens), (a.headers, b.headers), (a.list_items, b.list_items), (a.bold, b.bold))
    return [(float(x) - float(y)) / (float(x) + float(y) + 1.0) for x, y in pairs]


def utc_day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


@dataclass
class ViewCounts:
    """What one view's figures need beyond its pair counts, kept up to date vote by vote (by model id)."""

    kwise_pairs: PairCounts = field(default_factory=PairCounts.empty)  # K-wise votes' rank-broken pairs, by name
    votes_by_day: Counter = field(default_factory=Counter)  # (model id, day id) -> votes
    answers: Counter = field(default_factory=Counter)  # model id -> pairwise answers counted in style_sums
    style_sums: dict[int, list[float]] = field(default_factory=dict)  # model id -> summed style counts


class ViewTally:
    """Running statistics of the rated votes for every view but the overall one's fit."""

    def __init__(self, *, rate_deanonymised: bool = False) -> None:
        self.rate_deanonymised = rate_deanonymised  # as VoteTally: rate votes with identity_flags too
        self.models: list[str] = []
        self.model_index: dict[str, int] = {}
        self.days: list[str] = []
        self._day_index: dict[str, int] = {}
        self.by_category: dict[str, VoteTally] = {}
        self.votes: Counter = Counter()  # category (and OVERALL) -> rated votes
        # every rated pairwise vote, in arrival order
        self.code_a = GrowableArray(np.int32)
        self.code_b = GrowableArray(np.int32)
        self.score_a = GrowableArray(np.float64)
        self.differences = GrowableArray(np.float64, len(STYLE_COLUMNS))
        self.voter_code = GrowableArray(np.int32)  # who cast it (an index into voters): flagged voters' rows
        self.voters: dict[str, int] = {}
        self.members: dict[str, GrowableArray] = {}  # category -> indices of its pairwise votes
        self.counts: dict[str, ViewCounts] = {}  # category (and OVERALL) -> its figures' counts

    def add(self, event: VoteEvent) -> None:
        if event.mode == "named" or (event.identity_flags and not self.rate_deanonymised):
            return  # not rated (the voter saw the names, or a model may have revealed itself): as VoteTally
        categories = vote_categories(event.categories, event.turns, event.language)
        self.votes[OVERALL] += 1
        for category in categories:
            self.votes[category] += 1
            tally = self.by_category.get(category)
            if tally is None:
                tally = self.by_category[category] = VoteTally(rate_deanonymised=self.rate_deanonymised)
            tally.add(event)
        day = self._day_id(utc_day(event.voted_at))
        ids = [self._model_id(name) for name in event.models]
        kwise = event.mode == "kwise"
        broken = all_pairs(event.full_ranking()) if kwise else ()
        styles = None if kwise else [_raw_style(features) for features in event.style]
        for category in (OVERALL,) + categories:
            counts = self.counts.get(category)
            if counts is None:
                counts = self.counts[category] = ViewCounts()
            for model in ids:
                counts.votes_by_day[model, day] += 1
            for ahead, behind, outcome in broken:
                counts.kwise_pairs.add(ahead, behind, outcome)
            if styles is not None:
                for model, style in zip(ids, styles):
                    counts.answers[model] += 1
                    total = counts.style_sums.get(model)
                    if total is None:
                        counts.style_sums[model] = list(style)
                    else:
                        for k, value in enumerate(style):
                            total[k] += value
        if kwise:
            return
        row = self.code_a.size
        self.code_a.append(ids[0])
        self.code_b.append(ids[1])
        self.score_a.append(_SCORE.get(event.outcome, 0.5))
        self.differences.append(style_difference(*event.style))
        self.voter_code.append(self.voters.setdefault(event.voter_id, len(self.voters)))
        for category in categories:
            members = self.members.get(category)
            if members is None:
                members = self.members[category] = GrowableArray(np.int64)
            members.append(row)

    def pairwise_rows(self, category: str) -> np.ndarray | slice:
        """Indices of the category's pairwise votes in the arrays (a slice for overall)."""
        if category == OVERALL:
            return slice(0, self.code_a.size)
        members = self.members.get(category)
        return members.values if members is not None else np.zeros(0, dtype=np.int64)

    def row_weights(self, rows, voters, weight: float) -> np.ndarray:
        """One weight per pairwise vote of ``rows``: ``weight`` for a vote of one of ``voters``, else 1."""
        codes = [self.voters[voter] for voter in voters if voter in self.voters]
        voter_of_row = self.voter_code.values[rows]
        weights = np.ones(len(voter_of_row))
        if codes:  # nobody flagged (the usual case): no pass over the votes
            weights[np.isin(voter_of_row, codes)] = weight
        return weights

    def _model_id(self, name: str) -> int:
        index = self.model_index.get(name)
        if index is None:
            index = self.model_index[name] = len(self.models)
            self.models.append(name)
        return index

    def _day_id(self, day: str) -> int:
        index = self._day_index.get(day)
        if index is None:
            index = self._day_index[day] = len(self.days)
            self.days.append(day)
        return index


def _raw_style(features) -> list[float]:
    return [float(features.tokens), float(features.headers), float(features.list_items), float(features.bold)]

