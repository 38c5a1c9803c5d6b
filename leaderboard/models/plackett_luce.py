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
K = 2, so a pairwise tie means the same here as in ``leaderboard.models.bradley_terry``. It is the
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
sets", so it is concave and Newton's method (with step halving, leaderboard.models.optim, shared by
every fit) converges in a few iterations. Rankings are grouped by their shape (the sizes of their
groups; leaderboard.models.plackett_luce_design); every ranking of one shape has the same choice-set
template, so each Newton step is a few dense numpy operations per shape, plus one bincount to
scatter the gradient and Hessian onto the items.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from leaderboard.models.base import Estimate, RatingModel, VoteData, check_alpha
from leaderboard.models.bradley_terry import constrained_inverse
from leaderboard.models.optim import GRADIENT_TOL, MAX_ITERATIONS, NewtonSolution, newton_ascent
from leaderboard.models.pairwise import start_from
from leaderboard.models.plackett_luce_design import (
    MAX_TIED_GROUP,
    RankingDesign,
    RankingError,
    check_estimable,
    compile_rankings,
    index_rankings,
)
from leaderboard.models.result import (
    BOOTSTRAP,
    FISHER,
    NO_INTERVALS,
    PLACKETT_LUCE,
    SANDWICH,
)
from leaderboard.models.sandwich import centred

__all__ = ["MAX_TIED_GROUP", "PlackettLuce", "RankingError", "plackett_luce", "plackett_luce_covariance"]


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
    whole = multiplicity == np.round(multiplicity)
    if not np.all(np.isfinite(multiplicity)) or (multiplicity < 0).any() or not whole.all():
        raise ValueError("multiplicity must be whole numbers >= 0 (how many times each ranking occurred)")
    if multiplicity.sum() <= 0:
        raise ValueError("multiplicity is all zero: nothing to fit")
    return multiplicity


def ranking_vote_weights(importance: np.ndarray, frequency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weight of each ranking in the likelihood, weight of its score outer product in the meat),
    from checked importance weights and multiplicities.

    A ranking with importance weight w that occurred c times is c separate votes of weight w:
    it adds c * w to the log-likelihood, and c independent scores w * s to the meat, i.e.
    c * w^2 * s s^T -- not (c w s)(c w s)^T, which would treat the c votes as one perfectly
    correlated vote and inflate the variance c-fold.
    """
    return importance * frequency, frequency * importance ** 2


def ranking_log_likelihood(design: RankingDesign, theta: np.ndarray, weights: np.ndarray, *, derivatives: bool = True,
              meat_weights: np.ndarray | None = None):
    """Weighted log-likelihood and, optionally, its gradient, the information (minus the Hessian)
    and (given ``meat_weights``) the meat sum_r meat_weights_r score_r score_r^T of the sandwich,
    all over items (see ranking_vote_weights for what the meat weights are).

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


def _newton(design: RankingDesign, weights: np.ndarray, alpha: float, initial_params, max_iter: int,
            tol: float) -> NewtonSolution:
    """The (penalised) maximum-likelihood strengths by the shared Newton solver (leaderboard.models.optim)."""
    n = design.n_items
    start = np.zeros(n) if initial_params is None else np.array(initial_params, dtype=float)
    if start.shape != (n,) or not np.all(np.isfinite(start)):
        raise ValueError(f"initial_params must be {n} finite numbers, got shape {start.shape}")

    def evaluate(theta, derivatives):
        penalty = 0.5 * alpha * theta @ theta
        if not derivatives:
            return ranking_log_likelihood(design, theta, weights, derivatives=False) - penalty
        loglik, gradient, information = ranking_log_likelihood(design, theta, weights)
        information[np.diag_indices(n)] += alpha
        return loglik - penalty, gradient - alpha * theta, information

    return newton_ascent(evaluate, start, n_centred=n, tol=tol, max_iter=max_iter, what="Plackett-Luce fit",
                         hint="raise max_iter or pass alpha > 0")


def plackett_luce(n_items: int, rankings, *, alpha: float = 0.0, initial_params=None, max_iter: int = MAX_ITERATIONS,
                  tol: float = GRADIENT_TOL, weights=None, multiplicity=None) -> np.ndarray:
    """Maximum-likelihood Plackett-Luce strengths, natural-log units, mean 0.

    ``rankings``: a sequence of rankings; a ranking is a list of groups, best first, each group a
    list of item indices in 0..n_items-1 (a bare index is a group of one; a group of several items
    is a tie, see the module docstring). Rankings may cover any subset of at least two items. A 2-D
    integer array is read as strict rankings, one per row, best first.

    ``alpha``: L2 prior ``alpha / 2 * sum(theta**2)`` (0 = plain MLE, which needs every item to be
    placed both above and below others, see leaderboard.models.graph). ``weights``: one non-negative
    weight per ranking (e.g. inverse selection probability). ``multiplicity``: one whole number per
    ranking, how many identical votes it stands for (frequency weights: the fit equals the fit of
    the list with each ranking repeated that often, without building it). Stops when the largest
    component of the gradient of the weighted log-likelihood (a sum over rankings) is at most
    ``tol`` (or no step changes theta), the rule of every fit (leaderboard.models.optim).
    """
    design = compile_rankings(n_items, rankings)
    weights = _check_weights(weights, design.n_rankings) * _check_multiplicity(multiplicity, design.n_rankings)
    alpha = check_alpha(alpha)
    check_estimable(design, weights, [f"item {i}" for i in range(design.n_items)], alpha)
    return _newton(design, weights, alpha, initial_params, max_iter, tol).params


def covariance_from(information: np.ndarray, meat: np.ndarray | None, alpha: float) -> np.ndarray:
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
    design = compile_rankings(n_items, rankings)
    weights, meat_weights = ranking_vote_weights(_check_weights(weights, design.n_rankings),
                                          _check_multiplicity(multiplicity, design.n_rankings))
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (design.n_items,):
        raise ValueError(f"theta must have {design.n_items} entries, got shape {theta.shape}")
    _, _, information, meat = ranking_log_likelihood(design, theta, weights, meat_weights=meat_weights)
    return covariance_from(information, meat if kind == "sandwich" else None, check_alpha(alpha))


class PlackettLuce(RatingModel):
    """Plackett-Luce on ``VoteData.rankings`` (by name; ``ranking_weights``: importance weights,
    ``ranking_multiplicity``: frequency weights), models sorted by name; ``alpha``: prior
    precision per theta (nats^-2). Its bootstrap resamples votes (ranking r with probability
    multiplicity[r] / votes) from one generator, each replicate refitted with at least a tiny
    prior (a resample can drop every loss of some model)."""

    name = PLACKETT_LUCE
    interval_methods = (SANDWICH, FISHER, BOOTSTRAP, NO_INTERVALS)
    bootstrap_label = "bootstrap (Plackett-Luce)"
    one_generator = True
    reports_unbounded = False

    def __init__(self, *, alpha: float = 0.0):
        self.alpha = check_alpha(alpha)

    def estimate(self, data: VoteData, *, warm_start=None) -> Estimate:
        models, rankings = index_rankings(data.rankings)
        design = compile_rankings(len(models), rankings)
        importance = _check_weights(data.ranking_weights, design.n_rankings)
        frequency = _check_multiplicity(data.ranking_multiplicity, design.n_rankings)
        weights, meat_weights = ranking_vote_weights(importance, frequency)
        check_estimable(design, weights, models, self.alpha)
        start = start_from(models, warm_start)
        solution = _newton(design, weights, self.alpha, start, MAX_ITERATIONS, GRADIENT_TOL)
        return Estimate(models=models, theta=solution.params, params=solution.params, solution=solution,
                        votes=votes_per_model(design, weights, frequency), n_votes=int(frequency.sum()),
                        details={"alpha": self.alpha}, work=(design, importance, frequency, weights, meat_weights))

    def covariance(self, estimate: Estimate, *, robust: bool) -> np.ndarray:
        design, _, _, weights, meat_weights = estimate.work
        _, _, information, meat = ranking_log_likelihood(design, estimate.theta, weights, meat_weights=meat_weights)
        return covariance_from(information, meat if robust else None, self.alpha)

    def resample(self, estimate: Estimate, rng: np.random.Generator, size: int) -> Iterable:
        _, importance, frequency, _, _ = estimate.work
        n_votes = estimate.n_votes
        # drawn lazily: each replicate's draw follows the previous refit, as it always did
        return (importance * rng.multinomial(n_votes, frequency / n_votes) for _ in range(size))

    def refit(self, estimate: Estimate, draw) -> np.ndarray:
        design = estimate.work[0]
        return _newton(design, draw, max(self.alpha, 1e-6), estimate.theta, MAX_ITERATIONS, GRADIENT_TOL).params

def votes_per_model(design: RankingDesign, weights: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Votes each item appears in (counting multiplicity; rankings of weight 0 left out)."""
    votes = np.zeros(design.n_items, dtype=np.int64)
    for batch in design.batches:
        used = weights[batch.source] > 0
        per_slot = np.broadcast_to(frequency[batch.source][used, None], batch.items[used].shape)
        votes += np.rint(np.bincount(batch.items[used].ravel(), per_slot.ravel(),
                                     minlength=design.n_items)).astype(np.int64)
    return votes
