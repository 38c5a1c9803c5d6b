"""Plackett-Luce against independent computations: a logistic (Bradley-Terry) fit for K = 2, a
brute-force average over tie orderings, and simulations with known strengths."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from leaderboard.data.counts import PairCounts
from leaderboard.data.rankings import Unranked
from leaderboard.fit import fit_leaderboard, fit_plackett_luce
from leaderboard.models.graph import NoMaximumLikelihoodError
from leaderboard.models.plackett_luce import (
    RankingError,
    plackett_luce,
    plackett_luce_covariance,
    ranking_log_likelihood,
)
from leaderboard.models.plackett_luce_design import compile_rankings
from leaderboard.models.scale import ELO_PER_NAT


def simulate_rankings(rng, strengths, n_rankings, k):
    """Strict rankings of k random items each: sort strength + Gumbel noise (exactly Plackett-Luce)."""
    n_items = len(strengths)
    items = np.argsort(rng.random((n_rankings, n_items)), axis=1)[:, :k]
    utility = strengths[items] + rng.gumbel(size=items.shape)
    return np.take_along_axis(items, np.argsort(-utility, axis=1), axis=1)


def brute_force_loglik(theta, ranking):
    """Average of the strict Plackett-Luce log-likelihoods over every order of each tied group."""
    total, count = 0.0, 0
    for orders in itertools.product(*(itertools.permutations(group) for group in ranking)):
        strict = [item for group in orders for item in group]
        loglik = 0.0
        for position in range(len(strict) - 1):
            remaining = theta[strict[position:]]
            loglik += theta[strict[position]] - np.log(np.exp(remaining).sum())
        total += loglik
        count += 1
    return total / count


def logistic_bt_fit(n_items, first, second, first_score):
    """Independent Bradley-Terry fit: scipy minimisation of the (fractional-outcome) logistic loss."""
    def loss_and_gradient(theta):
        margin = theta[first] - theta[second]
        p_first = 1.0 / (1.0 + np.exp(-margin))
        loss = -np.sum(first_score * np.log(p_first) + (1.0 - first_score) * np.log1p(-p_first))
        residual = first_score - p_first
        gradient = -(np.bincount(first, residual, n_items) - np.bincount(second, residual, n_items))
        return loss, gradient

    result = minimize(loss_and_gradient, np.zeros(n_items), jac=True, method="BFGS", options={"gtol": 1e-11})
    return result.x - result.x.mean(), loss_and_gradient


def test_pairwise_rankings_equal_bradley_terry():
    rng = np.random.default_rng(0)
    strengths = rng.normal(0.0, 1.0, 6)
    ranked = simulate_rankings(rng, strengths, 3000, 2)
    theta = plackett_luce(6, [[[a], [b]] for a, b in ranked])
    bt_theta, bt_loss = logistic_bt_fit(6, ranked[:, 0], ranked[:, 1], np.ones(len(ranked)))
    np.testing.assert_allclose(theta, bt_theta, atol=1e-6)
    # sharper: the Bradley-Terry gradient (an independent formula) vanishes at the PL solution
    assert np.abs(bt_loss(theta)[1]).max() / len(ranked) < 1e-10
    assert theta.mean() == pytest.approx(0.0, abs=1e-12)


def test_pairwise_ties_are_half_a_win_each_way():
    rng = np.random.default_rng(1)
    n = 1500
    first = rng.integers(0, 5, n)
    second = (first + rng.integers(1, 5, n)) % 5
    outcome = rng.choice(3, n, p=[0.45, 0.35, 0.2])  # first wins, second wins, tie
    rankings = [[[a], [b]] if o == 0 else [[b], [a]] if o == 1 else [[a, b]]
                for a, b, o in zip(first, second, outcome)]
    theta = plackett_luce(5, rankings)
    score = np.select([outcome == 0, outcome == 1], [1.0, 0.0], 0.5)
    bt_theta, bt_loss = logistic_bt_fit(5, first, second, score)
    np.testing.assert_allclose(theta, bt_theta, atol=1e-6)
    assert np.abs(bt_loss(theta)[1]).max() / n < 1e-10
    # and the package's own Bradley-Terry fit on the same votes (names "0".."4" sort like indices)
    winner = np.select([outcome == 0, outcome == 1], ["model_a", "model_b"], "tie")
    votes = pd.DataFrame({"model_a": first.astype(str), "model_b": second.astype(str), "winner": winner})
    np.testing.assert_allclose(theta, fit_leaderboard(PairCounts.from_frame(votes)).theta, atol=1e-8)


def test_tied_groups_average_the_log_likelihood_over_orderings():
    # At the fitted theta, the brute-force likelihood's gradient (finite differences) is zero,
    # which pins down the tie reading completely.
    rankings = [
        [[0, 1], [2], [3]], [[2], [0, 3, 1]], [[3], [1, 2]], [[1], [0], [2, 3]],
        [[0], [2, 1]], [[3, 2], [0]], [[2, 0, 1, 3]], [[1], [3]], [[3], [0, 1], [2]],
        [[0], [3]], [[2], [1]],
    ]
    theta = plackett_luce(4, rankings)

    def total(values):
        return sum(brute_force_loglik(values, r) for r in rankings)

    step = 1e-6
    gradient = [(total(theta + step * e) - total(theta - step * e)) / (2 * step) for e in np.eye(4)]
    np.testing.assert_allclose(gradient, 0.0, atol=1e-7)
    # and the optimum is a maximum of the brute-force likelihood, not just a stationary point
    rng = np.random.default_rng(2)
    for _ in range(5):
        assert total(theta) > total(theta + 0.05 * rng.normal(size=4))


def test_recovers_known_strengths_from_four_way_rankings_with_covering_intervals():
    rng = np.random.default_rng(3)
    n_items = 20
    strengths = rng.normal(0.0, 1.0, n_items)
    strengths -= strengths.mean()
    ranked = simulate_rankings(rng, strengths, 4000, 4)
    theta = plackett_luce(n_items, ranked)
    assert np.corrcoef(theta, strengths)[0, 1] > 0.98
    sandwich = plackett_luce_covariance(n_items, ranked, theta)
    fisher = plackett_luce_covariance(n_items, ranked, theta, kind="fisher")
    se = np.sqrt(np.diag(sandwich))
    covered = np.abs(theta - strengths) <= 1.96 * se
    assert covered.sum() >= 16  # expected 19 of 20; P(<16) is about 1.6%
    # the model is true, so the robust and model-based errors agree
    np.testing.assert_allclose(se, np.sqrt(np.diag(fisher)), rtol=0.15)
    # errors are centred: mean-zero strengths have covariance rows summing to zero
    np.testing.assert_allclose(sandwich.sum(axis=1), 0.0, atol=1e-10)


def test_invariant_to_the_order_of_rankings_items_and_tied_members():
    rng = np.random.default_rng(4)
    strengths = rng.normal(0.0, 1.0, 7)
    ranked = simulate_rankings(rng, strengths, 600, 3)
    rankings = [[[a, b], [c]] if i % 5 == 0 else [[a], [b], [c]] for i, (a, b, c) in enumerate(ranked)]
    theta = plackett_luce(7, rankings)
    shuffled = [rankings[i] for i in rng.permutation(len(rankings))]
    np.testing.assert_allclose(plackett_luce(7, shuffled), theta, atol=1e-10)
    swapped_ties = [[group[::-1] for group in r] for r in rankings]
    np.testing.assert_allclose(plackett_luce(7, swapped_ties), theta, atol=1e-10)
    relabel = rng.permutation(7)
    relabelled = [[[int(relabel[i]) for i in group] for group in r] for r in rankings]
    np.testing.assert_allclose(plackett_luce(7, relabelled)[relabel], theta, atol=1e-10)


def test_partial_rankings_of_mixed_length():
    rng = np.random.default_rng(5)
    n_items = 8
    strengths = rng.normal(0.0, 1.0, n_items)
    strengths -= strengths.mean()
    rankings = []
    for k, count in ((2, 1500), (3, 1000), (5, 600)):
        rankings += [[[int(i)] for i in row] for row in simulate_rankings(rng, strengths, count, k)]
    theta = plackett_luce(n_items, rankings)
    assert np.abs(theta - strengths).max() < 0.2
    # the 2-D array fast path and the list form agree
    fives = np.array([[g[0] for g in r] for r in rankings[-600:]])
    np.testing.assert_allclose(plackett_luce(n_items, fives), plackett_luce(n_items, rankings[-600:]), atol=1e-10)


def test_integer_weights_equal_repeated_rankings():
    rankings = [[[0], [1], [2]], [[1], [2, 0]], [[2], [0]], [[1], [0]], [[0], [2], [1]], [[2], [1]]]
    weights = np.array([3, 1, 2, 1, 1, 2])
    repeated = [r for r, w in zip(rankings, weights) for _ in range(w)]
    np.testing.assert_allclose(plackett_luce(3, rankings, weights=weights), plackett_luce(3, repeated), atol=1e-10)


def test_multiplicity_equals_the_expanded_list_of_votes_including_the_sandwich():
    # known answer: a ranking with multiplicity c is c identical votes, so theta and both
    # covariances must equal those of the list with each ranking written out c times
    rankings = [[[0], [1], [2]], [[1], [2, 0]], [[2], [0]], [[1], [0]], [[0], [2], [1]], [[2], [1]], [[0, 1]],
                [[3], [0]], [[1], [3], [2]], [[2], [3]]]
    multiplicity = np.array([5, 1, 3, 2, 1, 4, 2, 3, 1, 2])
    importance = np.array([1.0, 2.0, 0.5, 1.5, 1.0, 3.0, 1.0, 0.7, 2.5, 1.0])
    repeated = [r for r, c in zip(rankings, multiplicity) for _ in range(c)]
    repeated_importance = np.repeat(importance, multiplicity)
    for weights, expanded_weights in ((None, None), (importance, repeated_importance)):
        for alpha in (0.0, 0.1):
            theta = plackett_luce(4, rankings, multiplicity=multiplicity, weights=weights, alpha=alpha)
            expected = plackett_luce(4, repeated, weights=expanded_weights, alpha=alpha)
            np.testing.assert_allclose(theta, expected, atol=1e-10)
            for kind in ("sandwich", "fisher"):
                np.testing.assert_allclose(
                    plackett_luce_covariance(4, rankings, theta, multiplicity=multiplicity, weights=weights,
                                             alpha=alpha, kind=kind),
                    plackett_luce_covariance(4, repeated, expected, weights=expanded_weights, alpha=alpha, kind=kind),
                    rtol=1e-10, atol=1e-12)

    names = ["a", "b", "c", "d"]
    by_name = [[[names[i] for i in group] for group in ranking] for ranking in rankings]
    fit = fit_plackett_luce(by_name, multiplicity=multiplicity, alpha=0.01)
    expanded = fit_plackett_luce([r for r, c in zip(by_name, multiplicity) for _ in range(c)], alpha=0.01)
    for key in ("theta", "covariance", "rating", "lower", "upper"):
        np.testing.assert_allclose(getattr(fit, key), getattr(expanded, key), rtol=1e-10, atol=1e-10, err_msg=key)
    np.testing.assert_array_equal(fit.votes, expanded.votes)


def test_multiplicity_is_not_an_importance_weight_in_the_sandwich():
    # Integer importance weights give the same theta as repeats but a different meat (sum w^2 s s^T:
    # one vote counted w times, not w independent votes), so the sandwich must differ; only
    # multiplicity reproduces the repeated list's sandwich.
    rankings = [[[0], [1], [2]], [[1], [2, 0]], [[2], [0]], [[1], [0]], [[0], [2], [1]], [[2], [1]]]
    counts = np.array([3, 1, 2, 1, 1, 2])
    repeated = [r for r, c in zip(rankings, counts) for _ in range(c)]
    theta = plackett_luce(3, repeated)
    np.testing.assert_allclose(plackett_luce(3, rankings, weights=counts), theta, atol=1e-10)
    np.testing.assert_allclose(plackett_luce(3, rankings, multiplicity=counts), theta, atol=1e-10)
    expanded = plackett_luce_covariance(3, repeated, theta)
    as_frequency = plackett_luce_covariance(3, rankings, theta, multiplicity=counts)
    as_importance = plackett_luce_covariance(3, rankings, theta, weights=counts)
    np.testing.assert_allclose(as_frequency, expanded, rtol=1e-10, atol=1e-12)
    assert np.all(np.diag(as_importance) > np.diag(expanded) * 1.2)


def test_bootstrap_with_multiplicity_resamples_votes():
    rng = np.random.default_rng(9)
    names = ["alpha", "beta", "gamma", "delta"]
    strengths = np.array([0.6, 0.2, -0.1, -0.7])
    ranked = simulate_rankings(rng, strengths, 3000, 2)
    distinct, counts = np.unique(ranked, axis=0, return_counts=True)  # 12 classes, ~250 votes each
    rankings = [[[names[i]] for i in row] for row in distinct]
    sandwich = fit_plackett_luce(rankings, multiplicity=counts)
    boot = fit_plackett_luce(rankings, multiplicity=counts, ci="bootstrap", n_bootstrap=60, seed=2)
    np.testing.assert_allclose(boot.theta, sandwich.theta)
    width_ratio = (boot.upper - boot.lower) / (sandwich.upper - sandwich.lower)
    # resampling the 12 classes instead of the 3000 votes would give intervals ~16x wider
    assert np.all((width_ratio > 0.6) & (width_ratio < 1.5))
    assert sandwich.votes.sum() == 2 * 3000


def test_prior_shrinks_and_makes_an_undefeated_item_finite():
    rankings = [[[0], [1], [2]], [[0], [2]], [[1], [2]], [[2], [1]]]  # item 0 never loses
    with pytest.raises(NoMaximumLikelihoodError, match="never lost"):
        plackett_luce(3, rankings)
    theta = plackett_luce(3, rankings, alpha=0.5)
    assert np.all(np.isfinite(theta)) and theta.argmax() == 0
    fair = [[[0], [1]], [[1], [0]], [[1], [2]], [[2], [0]]]
    assert np.abs(plackett_luce(3, fair, alpha=1.0)).max() < np.abs(plackett_luce(3, fair)).max()


@pytest.mark.parametrize(
    ("rankings", "message"),
    [
        ([[[0], [5]]], r"ranking 0 contains item 5, outside 0..3"),
        ([[[0], [1]], []], r"ranking 1 is \[\]: a ranking needs at least two items"),
        ([[[0], [1]], [[2], [2]]], r"ranking 1 lists an item more than once"),
        ([[[0], [], [1]]], r"ranking 0 has an empty group"),
        ([[[0], [1.5]]], r"ranking 0 contains .*integer indices"),
        ([[[3]]], r"at least two items"),
        ([], r"no rankings given"),
        (np.array([[0], [1]]), r"needs at least two items"),
        (["ab"], r"ranking 0 is 'ab'"),
    ],
)
def test_bad_rankings_give_clear_errors(rankings, message):
    with pytest.raises(RankingError, match=message):
        plackett_luce(4, rankings)


def test_other_bad_input():
    with pytest.raises(ValueError, match="n_items must be a positive integer"):
        plackett_luce(0, [[[0], [1]]])
    with pytest.raises(ValueError, match="weights must have one entry per ranking"):
        plackett_luce(2, [[[0], [1]], [[1], [0]]], weights=[1.0])
    with pytest.raises(ValueError, match="multiplicity must have one entry per ranking"):
        plackett_luce(2, [[[0], [1]], [[1], [0]]], multiplicity=[1])
    with pytest.raises(ValueError, match="multiplicity must be whole numbers"):
        plackett_luce(2, [[[0], [1]], [[1], [0]]], multiplicity=[1, 1.5])
    with pytest.raises(ValueError, match="multiplicity is all zero"):
        plackett_luce(2, [[[0], [1]], [[1], [0]]], multiplicity=[0, 0])
    with pytest.raises(ValueError, match="alpha must be"):
        plackett_luce(2, [[[0], [1]], [[1], [0]]], alpha=-1)
    with pytest.raises(ValueError, match="kind must be"):
        plackett_luce_covariance(2, [[[0], [1]], [[1], [0]]], np.zeros(2), kind="hessian")
    with pytest.raises(RankingError, match="bare name 'a'"):
        fit_plackett_luce([["a", "b"]])
    with pytest.raises(ValueError, match="anchor must be"):
        fit_plackett_luce([[["a"], ["b"]], [["b"], ["a"]]], anchor=("zeta", 1000.0))


def test_fit_by_name_reports_the_rating_scale_anchor_and_bootstrap():
    rng = np.random.default_rng(6)
    names = np.array(["delta", "alpha", "gamma", "beta", "epsilon"])
    strengths = np.array([0.8, 0.3, 0.0, -0.4, -0.7])
    ranked = simulate_rankings(rng, strengths, 1500, 3)
    rankings = [[[str(names[i])] for i in row] for row in ranked]
    fit = fit_plackett_luce(rankings)
    assert fit.models == sorted(names.tolist())
    order = [fit.models.index(n) for n in names]
    np.testing.assert_allclose(fit.rating, 1000.0 + ELO_PER_NAT * fit.theta)
    assert fit.rating.mean() == pytest.approx(1000.0)
    assert np.all(fit.lower < fit.rating) and np.all(fit.rating < fit.upper)
    assert list(np.argsort(-fit.rating[order])) == [0, 1, 2, 3, 4]
    assert fit.votes.sum() == 1500 * 3
    assert fit.covariance.shape == (5, 5)

    anchored = fit_plackett_luce(rankings, anchor=("gamma", 1200.0))
    gamma = anchored.models.index("gamma")
    assert anchored.rating[gamma] == pytest.approx(1200.0)
    assert anchored.lower[gamma] == pytest.approx(1200.0) == anchored.upper[gamma]
    np.testing.assert_allclose(anchored.rating - anchored.rating[gamma], fit.rating - fit.rating[gamma])

    boot = fit_plackett_luce(rankings, ci="bootstrap", n_bootstrap=40, seed=1)
    np.testing.assert_allclose(boot.theta, fit.theta)
    width_ratio = (boot.upper - boot.lower) / (fit.upper - fit.lower)
    assert np.all((width_ratio > 0.6) & (width_ratio < 1.5))
    again = fit_plackett_luce(rankings, ci="bootstrap", n_bootstrap=40, seed=1)
    np.testing.assert_array_equal(boot.lower, again.lower)


# ---- partial rankings ("best only": the rest shown but not ranked) ------------------------------

def loglik(theta, ranking):
    design = compile_rankings(len(theta), [ranking])
    return ranking_log_likelihood(design, np.asarray(theta), np.ones(1), derivatives=False)


def test_a_partial_ranking_is_the_probability_of_all_its_completions():
    """Plackett-Luce's top-k likelihood: P(the placed groups, in order, ahead of the rest) is the sum
    of the full rankings' probabilities over every order of the unranked models."""
    rng = np.random.default_rng(11)
    for placed, rest in (([2], [0, 1, 3]), ([3, 0], [1, 2, 4]), ([1], [0])):
        theta = rng.normal(0.0, 1.0, len(placed) + len(rest))
        partial = [[item] for item in placed] + [Unranked(rest)]
        completions = sum(np.exp(brute_force_loglik(theta, [[item] for item in placed + list(order)]))
                          for order in itertools.permutations(rest))
        np.testing.assert_allclose(np.exp(loglik(theta, partial)), completions, rtol=1e-12)
    # a tie among the placed: the average over the tie's orders of log P(that order ahead of the rest)
    theta = rng.normal(0.0, 1.0, 4)
    expected = np.mean([np.log(sum(np.exp(brute_force_loglik(theta, [[first], [second]] + [[x] for x in order]))
                                   for order in itertools.permutations([1, 3])))
                        for first, second in ((0, 2), (2, 0))])
    np.testing.assert_allclose(loglik(theta, [[0, 2], Unranked([1, 3])]), expected, rtol=1e-12)


def test_leaving_only_the_last_model_unranked_is_the_complete_ranking():
    rankings = [[[0], Unranked([1])], [[1], [2], Unranked([0])], [[2], Unranked([0, 1])], [[0], [1], Unranked([2])]]
    complete = [[[0], [1]], [[1], [2], [0]], [[2], Unranked([0, 1])], [[0], [1], [2]]]
    np.testing.assert_allclose(plackett_luce(3, rankings, alpha=0.1), plackett_luce(3, complete, alpha=0.1))


def test_recovers_known_strengths_from_best_only_votes_with_covering_intervals():
    """Voters who only pick the best of four answers (the first stage of Plackett-Luce)."""
    rng = np.random.default_rng(5)
    n_items = 12
    strengths = rng.normal(0.0, 1.0, n_items)
    strengths -= strengths.mean()
    full = simulate_rankings(rng, strengths, 6000, 4)
    best_only = [[[int(row[0])], Unranked(row[1:].tolist())] for row in full]
    theta = plackett_luce(n_items, best_only)
    assert np.corrcoef(theta, strengths)[0, 1] > 0.97
    se = np.sqrt(np.diag(plackett_luce_covariance(n_items, best_only, theta)))
    assert (np.abs(theta - strengths) <= 1.96 * se).sum() >= 9  # expected 11.4 of 12; P(< 9) is about 0.3%
    # the best alone says less than the whole order: wider intervals than from the complete rankings
    full_se = np.sqrt(np.diag(plackett_luce_covariance(n_items, full, plackett_luce(n_items, full))))
    assert (se > full_se).all()
    # reading the unranked models as tied would be a different (wrong) model: its estimates are pulled in
    as_tied = [[[int(row[0])], row[1:].tolist()] for row in full]
    assert np.abs(plackett_luce(n_items, as_tied) - theta).max() > 0.05


def test_partial_rankings_by_name_fit_and_count_every_shown_model():
    rankings = [[["a"], Unranked(["b", "c"])], [["b"], Unranked(["a", "c"])], [["c"], ["a"], Unranked(["b"])],
                [["a"], ["b"], ["c"]], [["c"], Unranked(["b", "a"])]]
    result = fit_plackett_luce(rankings, alpha=0.5)
    assert result.models == ["a", "b", "c"] and list(result.votes) == [5, 5, 5]
    indexed = [[[{"a": 0, "b": 1, "c": 2}[n] for n in g] if not isinstance(g, Unranked) else
                Unranked([{"a": 0, "b": 1, "c": 2}[n] for n in g]) for g in r] for r in rankings]
    np.testing.assert_allclose(result.theta, plackett_luce(3, indexed, alpha=0.5))
    with pytest.raises(RankingError, match="non-empty last entry"):
        plackett_luce(3, [[Unranked([0, 1]), [2]]])
