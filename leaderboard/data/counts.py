"""Per-pair sufficient statistics of pairwise votes.

Every Bradley-Terry computation in this package (the fit, sandwich intervals, the bootstrap)
depends on the votes only through, for each unordered pair of models and each outcome class,
the number of votes, the sum of their weights and the sum of their squared weights. So N votes
are aggregated once, in one vectorised O(N) pass, and all later work costs O(pairs), not O(N).

Pairs are stored canonically as (i, j) with i < j in model-index order; the outcome classes are
``I_WINS`` (the lower-index model won), ``J_WINS`` and ``TIE`` (both ``tie`` and ``tie (bothbad)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leaderboard.data.outcomes import (
    MODEL_A,
    MODEL_B,
    PAIRWISE_OUTCOMES,
    TIE,
    TIE_BOTHBAD,
    UnknownOutcomeError,
    check_outcome,
)

I_WINS, J_WINS, TIE_CLASS = 0, 1, 2
N_CLASSES = 3

# winner string -> outcome class *as seen from model_a* (0: model_a won, 1: model_b won, 2: tie)
_OUTCOME_CLASS = {MODEL_A: I_WINS, MODEL_B: J_WINS, TIE: TIE_CLASS, TIE_BOTHBAD: TIE_CLASS}

REQUIRED_COLUMNS = ("model_a", "model_b", "winner")


class SelfComparisonError(ValueError):
    """A vote whose two sides are the same model: it says nothing about any rating."""


@dataclass(frozen=True)
class PairArrays:
    """Array view of a PairCounts, what the fitters take (copies; safe to keep).

    ``pair_i``, ``pair_j``: (P,) model indices with pair_i < pair_j.
    ``count``, ``weight``, ``weight_sq``: (P, 3) per outcome class (I_WINS, J_WINS, TIE):
    number of votes, sum of vote weights, sum of squared vote weights.
    """

    n_models: int
    pair_i: np.ndarray
    pair_j: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    weight_sq: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.pair_i.shape[0])


class PairCounts:
    """Per-pair sufficient statistics of pairwise votes. Model index order = ``self.models``."""

    def __init__(self) -> None:
        self.models: list[str] = []
        self._model_index: dict[str, int] = {}
        self._pair_row: dict[tuple[int, int], int] = {}
        self._n_pairs = 0
        self._n_votes = 0
        self._pair_i = np.zeros(0, dtype=np.int64)
        self._pair_j = np.zeros(0, dtype=np.int64)
        self._count = np.zeros((0, N_CLASSES), dtype=np.int64)
        self._weight = np.zeros((0, N_CLASSES), dtype=np.float64)
        self._weight_sq = np.zeros((0, N_CLASSES), dtype=np.float64)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls) -> PairCounts:
        return cls()

    @classmethod
    def from_frame(cls, df: pd.DataFrame, weight_column: str | None = None) -> PairCounts:
        """Aggregate a frame with columns model_a, model_b, winner (and optionally a weight column).

        One vectorised pass: factorize the names, map outcomes to classes, bincount per
        (pair, class) cell. Models are indexed in sorted name order, so the result does not
        depend on row order.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if weight_column is not None and weight_column not in df.columns:
            missing.append(weight_column)
        if missing:
            raise KeyError(
                f"vote table is missing column(s) {missing}; it has {list(df.columns)}. "
                "Pairwise votes need model_a, model_b and winner."
            )
        counts = cls()
        if len(df) == 0:
            return counts

        outcome_class = _outcome_classes(df["winner"])
        code_a, code_b, names = _model_codes(df)
        model_a = df["model_a"]
        n_rows = len(df)
        same = code_a == code_b
        if same.any():
            rows = df.index[same]
            raise SelfComparisonError(
                f"{int(same.sum())} vote(s) compare a model with itself, e.g. row {rows[0]!r} "
                f"(model {model_a.iloc[np.flatnonzero(same)[0]]!r}); such votes carry no information "
                "about any rating: drop them before fitting."
            )

        if weight_column is None:
            weights = np.ones(n_rows)
        else:
            weights = pd.to_numeric(df[weight_column], errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(weights) | (weights < 0)
            if bad.any():
                first = np.flatnonzero(bad)[0]
                raise ValueError(
                    f"column {weight_column!r}: row {df.index[first]!r} has weight "
                    f"{df[weight_column].iloc[first]!r}; weights must be finite and >= 0"
                )

        # canonical orientation: lower model index first; a swap exchanges the two win classes
        swap = code_a > code_b
        pair_i = np.where(swap, code_b, code_a)
        pair_j = np.where(swap, code_a, code_b)
        outcome_class = np.where(swap & (outcome_class != TIE_CLASS), 1 - outcome_class, outcome_class)

        n_models = len(names)
        pair_code = pair_i * n_models + pair_j
        pair_row, unique_codes = pd.factorize(pair_code, sort=True)  # hash-based, O(N)
        n_pairs = len(unique_codes)
        cell = pair_row.astype(np.int64) * N_CLASSES + outcome_class
        size = n_pairs * N_CLASSES

        counts.models = [str(name) for name in names]
        counts._model_index = {name: k for k, name in enumerate(counts.models)}
        counts._pair_i = (unique_codes // n_models).astype(np.int64)
        counts._pair_j = (unique_codes % n_models).astype(np.int64)
        counts._count = np.bincount(cell, minlength=size).reshape(n_pairs, N_CLASSES).astype(np.int64)
        counts._weight = np.bincount(cell, weights=weights, minlength=size).reshape(n_pairs, N_CLASSES)
        counts._weight_sq = np.bincount(cell, weights=weights * weights, minlength=size).reshape(n_pairs, N_CLASSES)
        counts._pair_row = {(int(i), int(j)): row for row, (i, j) in enumerate(zip(counts._pair_i, counts._pair_j))}
        counts._n_pairs = n_pairs
        counts._n_votes = n_rows
        return counts

    def add(self, model_a: str, model_b: str, winner: str, weight: float = 1.0) -> None:
        """Count one vote; O(1) amortised. Grows the model list for a new name."""
        check_outcome(winner)
        if model_a == model_b:
            raise SelfComparisonError(f"a vote compares model {model_a!r} with itself; it carries no information")
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(f"vote weight must be finite and >= 0, got {weight!r}")
        a, b = self._model_id(model_a), self._model_id(model_b)
        outcome_class = _OUTCOME_CLASS[winner]
        if a > b:
            a, b = b, a
            if outcome_class != TIE_CLASS:
                outcome_class = 1 - outcome_class
        row = self._pair_row.get((a, b))
        if row is None:
            row = self._new_pair(a, b)
        self._count[row, outcome_class] += 1
        self._weight[row, outcome_class] += weight
        self._weight_sq[row, outcome_class] += weight * weight
        self._n_votes += 1

    def remove(self, model_a: str, model_b: str, winner: str, weight: float = 1.0, times: int = 1) -> None:
        """Take back ``times`` votes counted by ``add`` with this ``weight`` (e.g. a flagged voter's).
        Raises ValueError if the pair does not hold that many such votes."""
        check_outcome(winner)
        a, b = self._model_index.get(model_a), self._model_index.get(model_b)
        outcome_class = _OUTCOME_CLASS[winner]
        if a is not None and b is not None and a > b:
            a, b = b, a
            if outcome_class != TIE_CLASS:
                outcome_class = 1 - outcome_class
        row = self._pair_row.get((a, b)) if a is not None and b is not None else None
        if row is None or self._count[row, outcome_class] < times:
            raise ValueError(f"cannot remove {times} {winner!r} vote(s) of {model_a!r} vs {model_b!r}: not counted")
        self._count[row, outcome_class] -= times
        self._weight[row, outcome_class] = max(0.0, self._weight[row, outcome_class] - weight * times)
        self._weight_sq[row, outcome_class] = max(0.0, self._weight_sq[row, outcome_class] - weight * weight * times)
        self._n_votes -= times

    def _model_id(self, name: str) -> int:
        index = self._model_index.get(name)
        if index is None:
            index = len(self.models)
            self.models.append(name)
            self._model_index[name] = index
        return index

    def _new_pair(self, i: int, j: int) -> int:
        row = self._n_pairs
        if row == self._pair_i.shape[0]:  # grow geometrically: amortised O(1) per new pair
            capacity = max(16, 2 * row)
            self._pair_i = _grown(self._pair_i, capacity)
            self._pair_j = _grown(self._pair_j, capacity)
            self._count = _grown(self._count, capacity)
            self._weight = _grown(self._weight, capacity)
            self._weight_sq = _grown(self._weight_sq, capacity)
        self._pair_i[row], self._pair_j[row] = i, j
        self._pair_row[(i, j)] = row
        self._n_pairs += 1
        return row

    # ---- reading ------------------------------------------------------------------------
    @property
    def n_votes(self) -> int:
        """Number of votes counted (unweighted)."""
        return self._n_votes

    @property
    def n_models(self) -> int:
        return len(self.models)

    def votes_per_model(self) -> dict[str, int]:
        return dict(zip(self.models, self.model_vote_counts().tolist()))

    def model_vote_counts(self) -> np.ndarray:
        """(M,) number of votes each model took part in, in ``self.models`` order."""
        arrays = self.arrays()
        per_pair = arrays.count.sum(axis=1)
        return (
            np.bincount(arrays.pair_i, weights=per_pair, minlength=self.n_models)
            + np.bincount(arrays.pair_j, weights=per_pair, minlength=self.n_models)
        ).astype(np.int64)

    def arrays(self) -> PairArrays:
        """Copies of the per-pair statistics, trimmed to the pairs seen so far."""
        n = self._n_pairs
        return PairArrays(
            n_models=len(self.models),
            pair_i=self._pair_i[:n].copy(),
            pair_j=self._pair_j[:n].copy(),
            count=self._count[:n].copy(),
            weight=self._weight[:n].copy(),
            weight_sq=self._weight_sq[:n].copy(),
        )

    def copy(self) -> PairCounts:
        other = PairCounts()
        other.models = list(self.models)
        other._model_index = dict(self._model_index)
        other._pair_row = dict(self._pair_row)
        other._n_pairs, other._n_votes = self._n_pairs, self._n_votes
        for name in ("_pair_i", "_pair_j", "_count", "_weight", "_weight_sq"):
            setattr(other, name, getattr(self, name).copy())
        return other

    def __repr__(self) -> str:
        return f"PairCounts({self.n_models} models, {self._n_pairs} pairs, {self._n_votes} votes)"


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity,) + array.shape[1:], dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _model_codes(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Integer codes for model_a and model_b into one sorted list of names.

    Each column is factorized on its own (pandas' fast path for its string dtype), then the few
    unique names are merged: far cheaper than factorizing the concatenated 2N objects.
    """
    codes, uniques = [], []
    for column in ("model_a", "model_b"):
        values = df[column]
        column_codes, column_uniques = pd.factorize(values)
        if (column_codes < 0).any():
            first = np.flatnonzero(column_codes < 0)[0]
            raise ValueError(f"column {column!r}: row {df.index[first]!r} has no model name")
        codes.append(column_codes)
        uniques.append([str(name) for name in column_uniques])
    names = sorted(set(uniques[0]) | set(uniques[1]))
    position = {name: k for k, name in enumerate(names)}
    code_a = np.array([position[n] for n in uniques[0]], dtype=np.int64)[codes[0]]
    code_b = np.array([position[n] for n in uniques[1]], dtype=np.int64)[codes[1]]
    return code_a, code_b, names


def _outcome_classes(winner: pd.Series) -> np.ndarray:
    """Winner strings -> outcome class codes, vectorised; an unknown string is an error naming the row."""
    codes, uniques = pd.factorize(winner)
    known = np.array([_OUTCOME_CLASS.get(value, -1) if isinstance(value, str) else -1 for value in uniques] + [-1])
    classes = known[codes]  # code -1 (a missing value) picks the trailing -1
    unknown = classes < 0
    if unknown.any():
        first = np.flatnonzero(unknown)[0]
        allowed = ", ".join(repr(o) for o in PAIRWISE_OUTCOMES)
        raise UnknownOutcomeError(
            f"row {winner.index[first]!r}: unknown outcome {winner.iloc[first]!r} in column 'winner' "
            f"({int(unknown.sum())} such row(s)); expected one of {allowed}. "
            "Fix or drop these rows; an unknown outcome is never read as a tie."
        )
    return classes.astype(np.int64)
