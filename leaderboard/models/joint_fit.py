"""Pairwise counts and K-wise rankings fitted jointly by Plackett-Luce, at the cost of the counts.

A pairwise vote is a two-item Plackett-Luce ranking, and a pairwise tie (a tied group of two, see
leaderboard.models.plackett_luce) counts half a win each way: so the joint Plackett-Luce log-likelihood
of pairwise and K-wise votes is exactly the half-tie Bradley-Terry log-likelihood of the
per-pair counts plus the Plackett-Luce log-likelihood of the K-wise rankings. This module
maximises that sum (with the N(0, 1/alpha) prior) by the shared Newton solver and forms the
sandwich covariance from both parts: the same answer as ``fit_plackett_luce`` on every vote
written as a ranking (the worker's fit before this module, kept as the reference in
tests/test_worker.py), but each step costs O(pairs + K-wise votes) in numpy rather than first
compiling one ranking per (pair, outcome) in Python -- with 200 models and every pair played,
that compilation alone took ~1.5 s per fit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from leaderboard.models.base import Estimate, RatingModel, VoteData
from leaderboard.models.bradley_terry import bt_gradient, bt_information, bt_log_likelihood, half_tie_scores, laplacian
from leaderboard.models.graph import check_connected
from leaderboard.models.optim import newton_ascent
from leaderboard.models.pairwise import start_from
from leaderboard.models.plackett_luce import covariance_from, ranking_log_likelihood, ranking_vote_weights
from leaderboard.models.plackett_luce_design import RankingDesign, compile_rankings, indexed_group
from leaderboard.models.result import PLACKETT_LUCE, SANDWICH

_HALF_TIE_OUTCOME = np.array([1.0, 0.0, 0.5])


class JointPlackettLuce(RatingModel):
    """Pairwise ``VoteData.pairs`` (their own vote weights) and K-wise ``VoteData.rankings``
    (``ranking_weights``: one sampling weight per ranking, None: 1 each; the sandwich's meat takes
    their squares) in one Plackett-Luce fit, models sorted by name. ``alpha`` > 0: prior precision
    per rating (nats^-2), which also makes every rating finite. ``VoteData.design_cache``: a dict
    the caller keeps between fits of a list that only grows (the worker's tally): the compiled
    rankings are kept there and only the rankings added since are compiled. Intervals: the sandwich."""

    name = PLACKETT_LUCE
    interval_methods = (SANDWICH,)

    def __init__(self, *, alpha: float):
        if not alpha > 0:
            raise ValueError(f"the joint fit needs a prior (alpha > 0), got {alpha!r}")
        self.alpha = alpha

    def estimate(self, data: VoteData, *, warm_start=None) -> Estimate:
        pairs, rankings_by_name, alpha = data.pairs, data.rankings, self.alpha
        cache = {} if data.design_cache is None else data.design_cache
        models = sorted(set(pairs.models) | _ranked_names(rankings_by_name, cache))
        position = {name: k for k, name in enumerate(models)}
        n = len(models)

        arrays = pairs.arrays()
        remap = np.array([position[name] for name in pairs.models], dtype=np.int64)
        pair_i, pair_j = remap[arrays.pair_i], remap[arrays.pair_j]
        wins, totals = half_tie_scores(arrays)
        design = _design(rankings_by_name, models, position, cache)
        n_rankings = len(rankings_by_name)
        ranking_weights = data.ranking_weights
        importance = np.ones(n_rankings) if ranking_weights is None else np.asarray(ranking_weights, dtype=float)
        if importance.shape != (n_rankings,) or not np.all(np.isfinite(importance) & (importance >= 0)):
            raise ValueError(f"ranking_weights must be {n_rankings} finite numbers >= 0")
        weights, meat_weights = ranking_vote_weights(importance, np.ones(n_rankings))

        # connectivity: pair edges, and each K-wise vote's consecutive slots
        kwise_i = [batch.items[:, :-1].ravel() for batch in design.batches] if design else []
        kwise_j = [batch.items[:, 1:].ravel() for batch in design.batches] if design else []
        check_connected(models, np.concatenate([pair_i, *kwise_i]).astype(np.int64),
                        np.concatenate([pair_j, *kwise_j]).astype(np.int64))

        def evaluate(theta, derivatives):
            value = bt_log_likelihood(theta, pair_i, pair_j, wins, totals, alpha)
            if design is not None:
                kwise = ranking_log_likelihood(design, theta, weights, derivatives=derivatives)
                value += kwise[0] if derivatives else kwise
            if not derivatives:
                return value
            gradient = bt_gradient(theta, pair_i, pair_j, wins, totals, alpha)
            information = bt_information(theta, pair_i, pair_j, totals, alpha)
            if design is not None:
                gradient = gradient + kwise[1]
                information = information + kwise[2]
            return value, gradient, information

        start = start_from(models, warm_start)
        start = np.zeros(n) if start is None else start
        solution = newton_ascent(evaluate, start, n_centred=n, what="joint Plackett-Luce fit",
                                 hint="pass a larger alpha")
        votes = np.bincount(remap, weights=pairs.model_vote_counts(), minlength=n) if pairs.n_models else np.zeros(n)
        for batch in (design.batches if design else ()):
            used = batch.items[importance[batch.source] > 0]
            votes += np.bincount(used.ravel(), minlength=n)
        return Estimate(models=models, theta=solution.params, params=solution.params, solution=solution,
                        votes=np.rint(votes).astype(np.int64),
                        n_votes=pairs.n_votes + int(np.count_nonzero(importance)), details={"alpha": alpha},
                        work=(arrays, pair_i, pair_j, totals, design, weights, meat_weights))

    def covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        """The sandwich (the only covariance of this fit)."""
        arrays, pair_i, pair_j, totals, design, weights, meat_weights = estimate.work
        theta, n = estimate.theta, len(estimate.models)
        # sandwich: bread from the information without the prior (covariance_from adds it back)
        p = 1.0 / (1.0 + np.exp(theta[pair_j] - theta[pair_i]))
        information = bt_information(theta, pair_i, pair_j, totals)
        squared_residual = (_HALF_TIE_OUTCOME[None, :] - p[:, None]) ** 2
        meat = laplacian(n, pair_i, pair_j, (arrays.weight_sq * squared_residual).sum(axis=1))
        if design is not None:
            _, _, kwise_information, kwise_meat = ranking_log_likelihood(design, theta, weights,
                                                                         meat_weights=meat_weights)
            information = information + kwise_information
            meat = meat + kwise_meat
        return covariance_from(information, meat, self.alpha)


def _ranked_names(rankings_by_name, cache: dict) -> set[str]:
    """Every name in the rankings; the cache remembers those of the first ``names_seen`` rankings."""
    names = cache.setdefault("names", set())
    for ranking in rankings_by_name[cache.get("names_seen", 0):]:
        for group in ranking:
            names.update(group)
    cache["names_seen"] = len(rankings_by_name)
    return names


def _design(rankings_by_name, models: list[str], position: dict[str, int], cache: dict) -> RankingDesign | None:
    """The compiled rankings; only those added since the cached design are compiled (while the
    model list, hence every index, is unchanged)."""
    if not rankings_by_name:
        return None
    reuse = cache.get("models") == tuple(models) and cache.get("design") is not None
    done = cache["design"].n_rankings if reuse else 0
    fresh = [[indexed_group(group, position) for group in ranking] for ranking in rankings_by_name[done:]]
    design = cache["design"] if reuse else None
    if fresh:
        added = compile_rankings(len(models), fresh)
        design = added if design is None else _merged(design, added)
    cache["models"], cache["design"] = tuple(models), design
    return design


def _merged(design: RankingDesign, added: RankingDesign) -> RankingDesign:
    """``design`` followed by ``added`` (whose rankings come after it): batches of one shape joined."""
    batches = {_shape_key(batch): batch for batch in design.batches}
    for batch in added.batches:
        key = _shape_key(batch)
        shifted = replace(batch, source=batch.source + design.n_rankings)
        old = batches.get(key)
        batches[key] = shifted if old is None else replace(
            old, items=np.concatenate([old.items, shifted.items]), source=np.concatenate([old.source, shifted.source]))
    return RankingDesign(design.n_items, design.n_rankings + added.n_rankings, tuple(batches.values()))


def _shape_key(batch) -> tuple:
    return batch.items.shape[1], batch.linear.tobytes(), batch.set_mask.tobytes(), batch.set_weight.tobytes()
