"""Pairwise and K-wise votes of one file in one fit, so ``fit`` never drops a vote silently.

A pairwise vote is a two-model ranking (a tie one group of two), and Plackett-Luce on two-model
rankings is exactly Bradley-Terry with half ties, so a file holding both kinds is fitted jointly
by Plackett-Luce, as the live worker does (leaderboard.live.policy). Unweighted pairwise votes
go in once per (pair, outcome) with their count as a frequency weight (the worker's way, and
O(pairs) instead of O(votes)); weighted ones (inverse propensity, voter caps) one by one with
their weights. Online Elo, which has no K-wise form, reads a K-wise vote as its pairwise
comparisons (full rank-breaking, as the worker's Elo does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leaderboard.data.layouts import frame_rankings
from leaderboard.data.rankings import all_pairs, outcome_to_ranking
from leaderboard.models.base import VoteData
from leaderboard.models.graph import check_connected

_ORDER_COLUMNS = ("voted_at", "tstamp")


def pairwise_rankings(pairwise: pd.DataFrame, weights: np.ndarray | None) -> tuple[list, np.ndarray, np.ndarray]:
    """(rankings, importance weights, multiplicities) of pairwise votes; unweighted votes grouped
    per (model_a, model_b, winner)."""
    if len(pairwise) == 0:
        return [], np.zeros(0), np.zeros(0)
    if weights is None:
        grouped = pairwise.groupby(["model_a", "model_b", "winner"], sort=True).size()
        rankings = [outcome_to_ranking((a, b), winner) for a, b, winner in grouped.index]
        return rankings, np.ones(len(rankings)), grouped.to_numpy(dtype=float)
    rankings = [outcome_to_ranking((a, b), winner) for a, b, winner in
                zip(pairwise["model_a"], pairwise["model_b"], pairwise["winner"])]
    return rankings, np.asarray(weights, dtype=float), np.ones(len(rankings))


def joint_vote_data(pairwise: pd.DataFrame, kwise: pd.DataFrame, *, weights: np.ndarray | None = None) -> VoteData:
    """Every vote as a ranking, for one Plackett-Luce fit (leaderboard.models.plackett_luce.PlackettLuce);
    ``weights`` (optional): one per vote, pairwise rows first then K-wise rows."""
    n_pairwise = len(pairwise)
    pair_weights = None if weights is None else weights[:n_pairwise]
    rankings, importance, frequency = pairwise_rankings(pairwise, pair_weights)
    kwise_rankings = frame_rankings(kwise)
    rankings = rankings + kwise_rankings
    kwise_weights = np.ones(len(kwise_rankings)) if weights is None else weights[n_pairwise:]
    importance = np.concatenate([importance, kwise_weights])
    frequency = np.concatenate([frequency, np.ones(len(kwise_rankings))])
    return VoteData(rankings=rankings, ranking_weights=importance, ranking_multiplicity=frequency)


def joint_note(n_pairwise: int, n_kwise: int) -> str:
    return (f"{n_kwise} K-wise vote(s) fitted jointly with {n_pairwise} pairwise vote(s) by Plackett-Luce "
            "(a pairwise vote is a two-model ranking: the same model as Bradley-Terry)")


def elo_comparisons(pairwise: pd.DataFrame, kwise: pd.DataFrame) -> pd.DataFrame:
    """Every vote as pairwise comparisons (model_a, model_b, winner) in vote order (by time when
    the file has it, else pairwise rows first): a K-wise vote as all its pairs, best first."""
    parts = []
    if len(pairwise):
        parts.append(pd.DataFrame({"model_a": pairwise["model_a"].to_numpy(), "model_b": pairwise["model_b"].to_numpy(),
                                   "winner": pairwise["winner"].to_numpy(), "__time__": _times(pairwise),
                                   "__vote__": np.arange(len(pairwise))}))
    if len(kwise):
        rows = [(ahead, behind, outcome, time, len(pairwise) + k)
                for k, (ranking, time) in enumerate(zip(frame_rankings(kwise), _times(kwise)))
                for ahead, behind, outcome in all_pairs(ranking)]
        parts.append(pd.DataFrame(rows, columns=["model_a", "model_b", "winner", "__time__", "__vote__"]))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values(["__time__", "__vote__"], kind="mergesort")
    return frame.drop(columns=["__time__", "__vote__"]).reset_index(drop=True)


def _times(frame: pd.DataFrame) -> np.ndarray:
    for column in _ORDER_COLUMNS:
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            if np.isfinite(values).all():
                return values
    return np.zeros(len(frame))


def check_comparisons_connected(comparisons: pd.DataFrame) -> None:
    """DisconnectedGraphError (as Bradley-Terry raises it) unless the comparisons link every model."""
    codes, names = pd.factorize(np.concatenate([comparisons["model_a"].to_numpy(dtype=object),
                                                comparisons["model_b"].to_numpy(dtype=object)]), sort=True)
    n = len(comparisons)
    check_connected([str(name) for name in names], codes[:n], codes[n:])
