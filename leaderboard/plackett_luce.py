"""Plackett-Luce: ratings from K-wise rankings (best first, ties allowed), by exact maximum likelihood.

The model (Luce 1959; Plackett 1975). Item i has strength theta_i (natural-log units, the same
scale as Bradley-Terry). A strict ranking i_1 > i_2 > ... > i_K is built by picking the best of
the remaining items, then the best of the rest, and so on, each pick with probability
``exp(theta_pick) / sum(exp(theta_remaining))``. For K = 2 this *is* Bradley-Terry.

Ties. A ranking is a list of groups, best first; a group of several items is a tie. We read a
tie as "the voter did not say in which order these came" and give every order of the tied items
equal weight in the *log*-likelihood: the log-likelihood of a ranking with ties is the average
of the Plackett-Luce log-likelihoods of the strict rankings obtained by ordering each tied group
in every possible way. This is the K-wise form of LMArena's pairwise convention -- a tie counts
half a win each way, ``0.5 log P(a > b) + 0.5 log P(b > a)`` -- which it reproduces exactly for
K = 2, so a pairwise tie means the same here as in ``leaderboard.bradley_terry``. It is the
"fractional observation" treatment of ties: each complete ranking compatible with the tie counts
with weight 1/|orderings|. The same averaging over the orders of tied events underlies Efron's
(1977, JASA 72:557) method for tied times in the Cox partial likelihood (which is the
Plackett-Luce likelihood); Efron approximates it by averaging the sums inside the logarithm,
here it is computed exactly: for a tied group T picked from the remaining set R = T + rest,
averaging over the |T|! orders gives

    sum_{i in T} theta_i  -  sum_{U subset of T, U nonempty} log(sum exp(theta over rest + U)) / C(|T|, |U|)

(at the l-th pick inside the group the still-unpicked tied items are a uniformly random subset
of size |T| - l). The alternative, Davidson-Luce (Firth, Kosmidis & Turner 2019,
arXiv:1909.07123), adds tie-prevalence parameters and reduces to Davidson's pairwise tie model,
not to the half-win convention used everywhere else in this package, so it is not used here.
Because a weighted average of log-likelihoods is a composite likelihood, intervals default to
the sandwich covariance, which stays valid when the tie reading is not the true model.

Partial rankings (any subset of the items, at least two) are allowed: a ranking only says how
the items in it compare with each other.

The log-likelihood is linear in theta minus a weighted sum of log-sum-exp terms over "choice
sets", so it is concave and Newton's method (with step halving) converges in a few iterations.
Rankings are grouped by their shape (the sizes of their groups); every ranking of one shape has
the same choice-set template, so each Newton step is a few dense numpy operations per shape, plus
one bincount to scatter the gradient and Hessian onto the items.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from leaderboard.bradley_terry import ConvergenceError, constrained_inverse
from leaderboard.graph import check_connected, check_mle_exists
from leaderboard.intervals import centred, normal_bounds, percentile_bounds
from leaderboard.rankings import RankingError
from leaderboard.scale import rating_transform

# 2**group_size - 1 choice sets per tied group: beyond this a tie is too big to expand.
MAX_TIED_GROUP = 12


@dataclass(frozen=True)
class _ShapeBatch:
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
class _Design:
    n_items: int
    n_rankings: int
    batches: tuple[_ShapeBatch, ...]


def _shape_template(shape: tuple[int, ...]):
    """Linear coefficients, choice sets and precedence for one ranking shape (see module doc)."""
    n_slots = sum(shape)
    linear = np.zeros(n_slots)
    masks, weights = [], []
    ahead = np.zeros((n_slots, n_slots), dtype=bool)
    start = 0
    for size in shape:
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


def _compile(n_items: int, rankings) -> _Design:
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
            for group in ranking:
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
        linear, set_mask, pair_mask, set_weight, ahead = _shape_template(shape)
        batches.append(_ShapeBatch(items, source, linear, set_mask, pair_mask, set_weight, ahead))
    return _Design(n_items, n_rankings, tuple(batches))


def _check_weights(weights, n_rankings: int) -> np.ndarray:
    if weights is None:
        return np.ones(n_rankings)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n_rankings,):
        raise ValueError(f"weights must have one entry per ranking ({n_rankings}), got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise ValueError("weights must be finite and >= 0")
    if weights.sum() <= 0:
        raise ValueError("weights are all zero: nothing to fit")
    return weights


def _check_multiplicity(multiplicity, n_rankings: int) -> np.ndarray:
    """Frequency weights: ranking r stands for multiplicity[r] identical votes (0 = absent)."""
    if multiplicity is None:
        return np.ones(n_rankings)
    multiplicity = np.asarray(multiplicity, dtype=float)
    if multiplicity.shape != (n_rankings,):
        raise ValueError(
            f"multiplicity must have one entry per ranking ({n_rankings}), got shape {multiplicity.shape}")
    if not np.all(np.isfinite(multiplicity)) or (multiplicity < 0).any() or (multiplicity != np.round(multiplicity)).any():
        raise ValueError("multiplicity must be whole numbers >= 0 (how many times each ranking occurred)")
    if multiplicity.sum() <= 0:
        raise ValueError("multiplicity is all zero: nothing to fit")
    return multiplicity


def _vote_weights(importance: np.ndarray, frequency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weight of each ranking in the likelihood, weight of its score outer product in the meat),
    from checked importance weights and multiplicities.

    A ranking with importance weight w that occurred c times is c separate votes of weight w:
    it adds c * w to the log-likelihood, and c independent scores w * s to the meat, i.e.
    c * w^2 * s s^T -- not (c w s)(c w s)^T, which would treat the c votes as one perfectly
    correlated vote and inflate the variance c-fold.
    """
    return importance * frequency, frequency * importance ** 2


def _check_estimable(design: _Design, weights: np.ndarray, names: list[str], alpha: float) -> None:
    """Same conditions as for Bradley-Terry (leaderboard.graph): a connected comparison graph,
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


def _evaluate(design: _Design, theta: np.ndarray, weights: np.ndarray, *, derivatives: bool = True,
              meat_weights: np.ndarray | None = None):
    """Weighted log-likelihood and, optionally, its gradient, the information (minus the Hessian)
    and (given ``meat_weights``) the meat sum_r meat_weights_r score_r score_r^T of the sandwich,
    all over items (see _vote_weights for what the meat weights are).

    Per ranking, with e_k = exp(theta_slot_k - max over the ranking's slots) and S_s the sum of e
    over choice set s: log-sum-exp_s = log S_s + max; the expected count of slot k is
    e_k * sum_s w_s [k in s] / S_s; and sum_s w_s p_s p_s^T has entries
    e_a e_b * sum_s w_s [a, b in s] / S_s^2. Each sum over s is one small matrix product with the
    shape's template, so a Newton step costs a few passes over an (r, K) array per shape.
    """
    n = design.n_items
    loglik = 0.0
    gradient = np.zeros(n)
    information = np.zeros(n * n) if derivatives else None
    meat = meat_weights is not None
    meat_sum = np.zeros(n * n) if meat else None
    for batch in design.batches:
        w = weights[batch.source]
        slot_theta = theta[batch.items]                                         # (r, K)
        per_ranking = slot_theta @ batch.linear
        k = batch.items.shape[1]
        if batch.set_weight.size:
            peak = slot_theta.max(axis=1, keepdims=True)
            expo = np.exp(slot_theta - peak)                                    # (r, K), max 1
            set_sum = expo @ batch.set_mask.T                                   # (r, S)
            if not np.all(set_sum > 0):
                raise FloatingPointError(
                    "Plackett-Luce strengths differ by more than ~700 nats within a ranking; "
                    "the fit is degenerate: pass alpha > 0")
            per_ranking = per_ranking - (np.log(set_sum) + peak) @ batch.set_weight
        loglik += float(w @ per_ranking)
        if not derivatives:
            continue
        if batch.set_weight.size:
            inverse_sum = batch.set_weight / set_sum                            # (r, S)
            expected = expo * (inverse_sum @ batch.set_mask)                    # (r, K)
            # 1 / set_sum^2 overflows only at a wild trial step of the line search (strengths ~350
            # nats apart within one ranking, seen in the simulator's early K=4 refits); such a step
            # has a far lower log-likelihood, the line search rejects it and recomputes the
            # derivatives at the point it accepts, so the warnings would only be noise.
            with np.errstate(over="ignore", invalid="ignore"):
                pair_share = (inverse_sum / set_sum) @ batch.pair_mask          # (r, K*K)
                curvature = -(expo[:, :, None] * expo[:, None, :]) * pair_share.reshape(-1, k, k)
            curvature[:, np.arange(k), np.arange(k)] += expected
        else:
            expected = np.zeros_like(slot_theta)
        score = batch.linear[None, :] - expected                                # (r, K)
        gradient += np.bincount(batch.items.ravel(), (w[:, None] * score).ravel(), minlength=n)
        pair_index = (batch.items[:, :, None] * n + batch.items[:, None, :]).ravel()
        if batch.set_weight.size:
            information += np.bincount(pair_index, (w[:, None, None] * curvature).ravel(), minlength=n * n)
        if meat:
            meat_sum += np.bincount(
                pair_index, (meat_weights[batch.source][:, None, None] * score[:, :, None] * score[:, None, :]).ravel(),
                minlength=n * n)
    if not derivatives:
        return loglik
    information = information.reshape(n, n)
    if meat:
        return loglik, gradient, information, meat_sum.reshape(n, n)
    return loglik, gradient, information


def _newton(design: _Design, weights: np.ndarray, alpha: float, initial_params, max_iter: int,
            tol: float) -> np.ndarray:
    """Damped Newton ascent on the concave (penalised) log-likelihood; theta kept at mean 0."""
    n = design.n_items
    theta = np.zeros(n) if initial_params is None else np.array(initial_params, dtype=float)
    if theta.shape != (n,) or not np.all(np.isfinite(theta)):
        raise ValueError(f"initial_params must be {n} finite numbers, got shape {theta.shape}")
    theta -= theta.mean()
    total_weight = weights.sum()
    # the likelihood is flat along the all-ones direction; adding u u^T (u = 1/sqrt(n)) makes the
    # Newton system solvable and leaves the step orthogonal to it (the gradient always is)
    system_shift = np.full((n, n), 1.0 / n) + alpha * np.eye(n)

    def penalised(values, evaluation):
        loglik, gradient, information = evaluation
        return loglik - 0.5 * alpha * values @ values, gradient - alpha * values, information

    loglik, gradient, information = penalised(theta, _evaluate(design, theta, weights))
    for _ in range(max_iter):
        if np.max(np.abs(gradient)) / total_weight < tol:
            return theta
        step = np.linalg.solve(information + system_shift, gradient)
        # The full step is evaluated with derivatives (it is almost always accepted, and they are
        # needed next); shorter steps only need the log-likelihood.
        step_size, evaluation = 1.0, None
        while True:
            candidate = theta + step_size * step
            candidate -= candidate.mean()
            if step_size == 1.0:
                evaluation = penalised(candidate, _evaluate(design, candidate, weights))
                candidate_loglik = evaluation[0]
            else:
                candidate_loglik = (_evaluate(design, candidate, weights, derivatives=False)
                                    - 0.5 * alpha * candidate @ candidate)
            # accept any non-decrease up to float noise (which is all that is left at the optimum)
            if candidate_loglik >= loglik - 1e-13 * max(1.0, abs(loglik)) or step_size < 1e-10:
                break
            step_size *= 0.5
        if np.max(np.abs(candidate - theta)) < 1e-15 * max(1.0, np.max(np.abs(theta))):
            return candidate  # no representable progress left: at the optimum up to rounding
        theta = candidate
        if step_size != 1.0:
            evaluation = penalised(theta, _evaluate(design, theta, weights))
        loglik, gradient, information = evaluation
    if np.max(np.abs(gradient)) / total_weight < tol:
        return theta
    raise ConvergenceError(
        f"Plackett-Luce fit did not converge in {max_iter} Newton iterations (mean gradient "
        f"{np.max(np.abs(gradient)) / total_weight:.3g} > tol={tol}); raise max_iter or pass alpha > 0")


def plackett_luce(n_items: int, rankings, *, alpha: float = 0.0, initial_params=None, max_iter: int = 200,
                  tol: float = 1e-10, weights=None, multiplicity=None) -> np.ndarray:
    """Maximum-likelihood Plackett-Luce strengths, natural-log units, mean 0.

    ``rankings``: a sequence of rankings; a ranking is a list of groups, best first, each group a
    list of item indices in 0..n_items-1 (a bare index is a group of one; a group of several items
    is a tie, see the module docstring). Rankings may cover any subset of at least two items. A 2-D
    integer array is read as strict rankings, one per row, best first.

    ``alpha``: L2 prior ``alpha / 2 * sum(theta**2)`` (0 = plain MLE, which needs every item to be
    placed both above and below others, see leaderboard.graph). ``weights``: one non-negative
    weight per ranking (e.g. inverse selection probability). ``multiplicity``: one whole number per
    ranking, how many identical votes it stands for (frequency weights: the fit equals the fit of
    the list with each ranking repeated that often, without building it). Stops when the largest
    component of the gradient of the weighted *mean* log-likelihood is below ``tol`` (or no step
    changes theta).
    """
    design = _compile(n_items, rankings)
    weights = _check_weights(weights, design.n_rankings) * _check_multiplicity(multiplicity, design.n_rankings)
    alpha = _check_alpha(alpha)
    _check_estimable(design, weights, [f"item {i}" for i in range(design.n_items)], alpha)
    return _newton(design, weights, alpha, initial_params, max_iter, tol)


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha >= 0.0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return alpha


def _covariance_from(information: np.ndarray, meat: np.ndarray | None, alpha: float) -> np.ndarray:
    """Covariance of the mean-zero strengths: H^+ B H^+ (sandwich) or H^+ (Fisher), H including the prior."""
    bread = constrained_inverse(information + alpha * np.eye(information.shape[0]), alpha=alpha)
    return centred(bread if meat is None else bread @ meat @ bread)


def plackett_luce_covariance(n_items: int, rankings, theta, *, weights=None, kind: str = "sandwich",
                             alpha: float = 0.0, multiplicity=None) -> np.ndarray:
    """Covariance (n_items x n_items, natural-log units) of the mean-zero strengths at ``theta``.

    ``kind="sandwich"`` (default): H^-1 B H^-1 with B the sum over votes of (weight * score)
    outer products -- robust to the tie reading and to weights being inverse probabilities.
    ``kind="fisher"``: H^-1, the model-based covariance (exact only if the model is right and the
    weights are 1). ``alpha`` must match the fit's (its prior curvature enters H).
    ``multiplicity``: as in :func:`plackett_luce` (each of the c votes a ranking stands for adds its
    own score outer product to B).
    """
    if kind not in ("sandwich", "fisher"):
        raise ValueError(f"kind must be 'sandwich' or 'fisher', got {kind!r}")
    design = _compile(n_items, rankings)
    weights, meat_weights = _vote_weights(_check_weights(weights, design.n_rankings),
                                          _check_multiplicity(multiplicity, design.n_rankings))
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (design.n_items,):
        raise ValueError(f"theta must have {design.n_items} entries, got shape {theta.shape}")
    _, _, information, meat = _evaluate(design, theta, weights, meat_weights=meat_weights)
    return _covariance_from(information, meat if kind == "sandwich" else None, _check_alpha(alpha))


def fit_plackett_luce(rankings_by_name: list[list[list[str]]], *, ci: str = "sandwich", n_bootstrap: int = 0,
                      seed: int = 0, anchor: tuple[str, float] | None = None, weights=None,
                      alpha: float = 0.0, multiplicity=None) -> dict:
    """Fit K-wise votes given by model name; ratings with 95% intervals on the rating scale.

    ``rankings_by_name``: one ranking per vote, a list of groups of model names, best first (the
    K-wise vote contract). ``ci``: "sandwich" (default), "fisher", or "bootstrap" (percentile
    intervals from ``n_bootstrap`` refits on rankings resampled with replacement, seeded by
    ``seed``). ``anchor``: (model, rating) pins that model's rating, as in
    ``leaderboard.fit.fit_leaderboard``; the others' ratings and intervals are then relative to it
    (its own interval has zero width). Without an anchor the mean rating is 1000. ``alpha``,
    ``weights`` and ``multiplicity`` (how many identical votes each ranking stands for): see
    :func:`plackett_luce`; the bootstrap resamples votes, not distinct rankings.

    Returns a dict: "models" (sorted names), "theta" (nats, mean 0), "covariance" (nats, of theta;
    the bootstrap sample covariance when ci="bootstrap"), "rating", "lower", "upper" (rating
    points), "votes" (number of votes each model appears in, counting multiplicity).
    """
    if ci not in ("sandwich", "fisher", "bootstrap"):
        raise ValueError(f"ci must be 'sandwich', 'fisher' or 'bootstrap', got {ci!r}")
    if ci == "bootstrap" and n_bootstrap < 2:
        raise ValueError("ci='bootstrap' needs n_bootstrap >= 2 (e.g. 200)")
    models, rankings = _index_rankings(rankings_by_name)
    if anchor is not None and (isinstance(anchor, str) or len(anchor) != 2 or anchor[0] not in models):
        raise ValueError(f"anchor must be (model, rating) with a ranked model, got {anchor!r}")
    design = _compile(len(models), rankings)
    importance = _check_weights(weights, design.n_rankings)
    frequency = _check_multiplicity(multiplicity, design.n_rankings)
    weights, meat_weights = _vote_weights(importance, frequency)
    alpha = _check_alpha(alpha)
    _check_estimable(design, weights, models, alpha)
    theta = _newton(design, weights, alpha, None, 200, 1e-10)
    _, _, information, meat = _evaluate(design, theta, weights, meat_weights=meat_weights)

    if ci == "bootstrap":
        rng = np.random.default_rng(seed)
        replicates = np.empty((n_bootstrap, len(models)))
        # resample the votes: ranking r is drawn with probability frequency[r] / n_votes
        n_votes = int(frequency.sum())
        for b in range(n_bootstrap):
            resampled = importance * rng.multinomial(n_votes, frequency / n_votes)
            # a resample can drop every loss of some model; a tiny prior keeps that replicate finite
            replicates[b] = _newton(design, resampled, max(alpha, 1e-6), theta, 200, 1e-10)
        covariance = np.cov(replicates, rowvar=False)
    else:
        covariance = _covariance_from(information, meat if ci == "sandwich" else None, alpha)

    votes = np.zeros(len(models), dtype=np.int64)
    for batch in design.batches:
        used = weights[batch.source] > 0
        per_slot = np.broadcast_to(frequency[batch.source][used, None], batch.items[used].shape)
        votes += np.rint(np.bincount(batch.items[used].ravel(), per_slot.ravel(),
                                     minlength=len(models))).astype(np.int64)

    transform, offset = rating_transform(models, anchor)
    rating = offset + transform @ theta
    if ci == "bootstrap":
        lower, upper = percentile_bounds(offset + replicates @ transform.T)
    else:
        lower, upper = normal_bounds(rating, transform @ covariance @ transform.T)
    return {
        "models": models,
        "theta": theta,
        "covariance": covariance,
        "rating": rating,
        "lower": lower,
        "upper": upper,
        "votes": votes,
    }


def _index_rankings(rankings_by_name) -> tuple[list[str], list[list[list[int]]]]:
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
    return models, [[[index[name] for name in group] for group in ranking] for ranking in rankings_by_name]
