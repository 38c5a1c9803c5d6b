"""Plackett-Luce rankings compiled for the likelihood: validated, grouped by shape, as dense arrays.

A ranking is a list of groups of item indices, best first (a group of several items is a tie).
Rankings with the same shape (sequence of group sizes) share one template of choice sets (see
``leaderboard.models.plackett_luce`` for the tie reading the template encodes), so the likelihood runs
over one dense (rankings x slots) array per shape instead of ranking by ranking.

A partial ranking ends with an ``Unranked`` entry (leaderboard.data.rankings): models shown but not
ranked. Its size enters the shape as a negative number; those slots sit in every choice set
of the placed groups (each placed group was picked ahead of them) and are never picked
themselves, so the likelihood is that of the placed groups only (Plackett-Luce's top-k
likelihood: the first k stages of the sequential choice).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from leaderboard.data.rankings import RankingError, Unranked
from leaderboard.models.graph import check_connected, check_mle_exists

# 2**group_size - 1 choice sets per tied group: beyond this a tie is too big to expand.
MAX_TIED_GROUP = 12


@dataclass(frozen=True)
class ShapeBatch:
    """All rankings with one shape (sequence of group sizes), as dense arrays.

    items: (n, K) item index per slot, best group first.
    source: (n,) position of each ranking in the caller's input (for weights and errors).
    linear: (K,) coefficient of theta[slot] in a ranking's log-likelihood.
    set_mask: (S, K) 1.0 where a slot is in a choice set (sets of size >= 2 only).
    pair_mask: (S, K*K) 1.0 where both slots of a pair are in the set.
    set_weight: (S,) weight of log-sum-exp over each choice set (subtracted).
    ahead: (K, K) ahead[a, b]: slot a was placed ahead of, or tied with, slot b (a != b).
    """

    items: np.ndarray
    source: np.ndarray
    linear: np.ndarray
    set_mask: np.ndarray
    pair_mask: np.ndarray
    set_weight: np.ndarray
    ahead: np.ndarray


@dataclass(frozen=True)
class RankingDesign:
    """Rankings of ``n_rankings`` votes over ``n_items`` items, one ShapeBatch per shape."""

    n_items: int
    n_rankings: int
    batches: tuple[ShapeBatch, ...]


def shape_template(shape: tuple[int, ...]):
    """Linear coefficients, choice sets and precedence for one ranking shape (the formula is in
    leaderboard.models.plackett_luce's docstring); a negative last size is a partial ranking's unranked
    models (module docstring)."""
    placed = shape[:-1] if shape and shape[-1] < 0 else shape
    n_slots = sum(abs(size) for size in shape)
    linear = np.zeros(n_slots)
    masks, weights = [], []
    ahead = np.zeros((n_slots, n_slots), dtype=bool)
    start = 0
    for size in placed:
        tied = range(start, start + size)
        rest = list(range(start + size, n_slots))
        linear[start:start + size] += 1.0
        ahead[start:start + size, start:] = True
        for subset_size in range(1, size + 1):
            weight = 1.0 / math.comb(size, subset_size)
            for subset in itertools.combinations(tied, subset_size):
                members = list(subset) + rest
                if len(members) == 1:
                    # log(exp(theta_i)) = theta_i: linear, no need for a log-sum-exp
                    linear[members[0]] -= weight
                    continue
                mask = np.zeros(n_slots, dtype=bool)
                mask[members] = True
                masks.append(mask)
                weights.append(weight)
        start += size
    np.fill_diagonal(ahead, False)
    set_mask = np.array(masks, dtype=float).reshape(len(masks), n_slots)
    pair_mask = (set_mask[:, :, None] * set_mask[:, None, :]).reshape(len(masks), n_slots * n_slots)
    return linear, set_mask, pair_mask, np.array(weights, dtype=float), ahead


def compile_rankings(n_items: int, rankings) -> RankingDesign:
    """Validate rankings of item indices and group them by shape."""
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    n_items = int(n_items)
    if isinstance(rankings, np.ndarray) and rankings.ndim == 2:
        # fast path: each row a strict ranking of item indices, best first
        if rankings.shape[1] < 2:
            raise RankingError(f"rankings array has {rankings.shape[1]} column(s): a ranking needs at least two items")
        by_shape = {(1,) * rankings.shape[1]: (list(range(len(rankings))), rankings)}
        n_rankings = len(rankings)
    else:
        grouped: dict[tuple[int, ...], tuple[list[int], list[list]]] = {}
        n_rankings = 0
        for position, ranking in enumerate(rankings):
            n_rankings += 1
            if isinstance(ranking, (str, bytes)) or not hasattr(ranking, "__iter__"):
                raise RankingError(
                    f"ranking {position} is {ranking!r}: a ranking must be a list of groups (lists of "
                    "item indices), best first")
            shape, flat = [], []
            groups = list(ranking)
            for index, group in enumerate(groups):
                if isinstance(group, Unranked):
                    if index != len(groups) - 1 or index == 0 or not group:
                        raise RankingError(
                            f"ranking {position} is {ranking!r}: the unranked models must be a non-empty "
                            "last entry, after at least one placed group")
                    flat.extend(group)
                    shape.append(-len(group))
                    continue
                if isinstance(group, (int, np.integer)):
                    # a bare index is a group of one
                    flat.append(group)
                    shape.append(1)
                    continue
                if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
                    raise RankingError(
                        f"ranking {position} has the group {group!r}: a group must be a list of item "
                        "indices (or a single index)")
                members = list(group)
                if not members:
                    raise RankingError(f"ranking {position} has an empty group; remove it")
                flat.extend(members)
                shape.append(len(members))
            if len(flat) < 2:
                raise RankingError(
                    f"ranking {position} is {ranking!r}: a ranking needs at least two items to "
                    "compare; drop it")
            if max(shape) > MAX_TIED_GROUP:
                raise RankingError(
                    f"ranking {position} ties {max(shape)} items in one group; at most "
                    f"{MAX_TIED_GROUP} can be tied")
            sources, rows = grouped.setdefault(tuple(shape), ([], []))
            sources.append(position)
            rows.append(flat)
        by_shape = grouped
    if n_rankings == 0:
        raise RankingError("no rankings given: a fit needs at least one ranking")

    batches = []
    for shape, (sources, rows) in by_shape.items():
        items = np.asarray(rows)
        source = np.asarray(sources, dtype=np.int64)
        if items.dtype.kind not in "iu":
            bad = next(i for i, row in enumerate(rows)
                       if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in row))
            raise RankingError(
                f"ranking {source[bad]} contains {rows[bad]!r}: items must be integer indices "
                f"0..{n_items - 1}")
        items = items.astype(np.int64, copy=False)
        out_of_range = (items < 0) | (items >= n_items)
        if out_of_range.any():
            row, col = np.argwhere(out_of_range)[0]
            raise RankingError(
                f"ranking {source[row]} contains item {items[row, col]}, outside 0..{n_items - 1} "
                f"(n_items={n_items}); fix the index or raise n_items")
        ordered = np.sort(items, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            raise RankingError(
                f"ranking {source[row]} lists an item more than once ({items[row].tolist()}); "
                "each item may appear once per ranking")
        linear, set_mask, pair_mask, set_weight, ahead = shape_template(shape)
        batches.append(ShapeBatch(items, source, linear, set_mask, pair_mask, set_weight, ahead))
    return RankingDesign(n_items, n_rankings, tuple(batches))


def check_estimable(design: RankingDesign, weights: np.ndarray, names: list[str], alpha: float) -> None:
    """Same conditions as for Bradley-Terry (leaderboard.models.graph): a connected comparison graph,
    and, without a prior, a strongly connected "placed ahead of or tied with" graph (Hunter 2004,
    Assumption 1), else the maximum-likelihood strengths are infinite."""
    n = design.n_items
    edge_seen = np.zeros(n * n, dtype=bool)
    for batch in design.batches:
        used = batch.items[weights[batch.source] > 0]
        first, second = np.nonzero(batch.ahead)
        edge_seen[(used[:, first] * n + used[:, second]).ravel()] = True
    sources, targets = np.divmod(np.flatnonzero(edge_seen), n)
    forward = sources < targets
    pair_i = np.concatenate([sources[forward], targets[~forward]])
    pair_j = np.concatenate([targets[forward], sources[~forward]])
    pair_key = np.unique(pair_i * n + pair_j)
    pair_i, pair_j = np.divmod(pair_key, n)
    check_connected(names, pair_i, pair_j)
    if alpha == 0.0:
        check_mle_exists(names, pair_i, pair_j, edge_seen[pair_i * n + pair_j], edge_seen[pair_j * n + pair_i])


def index_rankings(rankings_by_name) -> tuple[list[str], list[list[list[int]]]]:
    """Names -> indices in sorted-name order; rankings keep their group structure."""
    rankings_by_name = list(rankings_by_name)
    names = set()
    for position, ranking in enumerate(rankings_by_name):
        if isinstance(ranking, (str, bytes)) or not hasattr(ranking, "__iter__"):
            raise RankingError(f"ranking {position} is {ranking!r}: expected a list of groups of model names")
        for group in ranking:
            if isinstance(group, str):
                raise RankingError(
                    f"ranking {position} has the bare name {group!r}: each group must be a list of "
                    f"model names, e.g. [[{group!r}], ...]")
            for name in group:
                if not isinstance(name, str) or not name:
                    raise RankingError(f"ranking {position} contains {name!r}: model names must be non-empty strings")
            names.update(group)
    models = sorted(names)
    index = {name: i for i, name in enumerate(models)}
    return models, [[indexed_group(group, index) for group in ranking] for ranking in rankings_by_name]


def indexed_group(group, index: dict[str, int]):
    """A group of names as indices; a partial ranking's Unranked entry stays one."""
    indices = [index[name] for name in group]
    return Unranked(indices) if isinstance(group, Unranked) else indices
