"""Matchmaker strategies: exact set probabilities, fairness, exclusions, and informativeness."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import chisquare, kendalltau

from arena.matchmaker import STRATEGIES, FairnessPolicy, RatingState, StrategyOptions, build_matchmaker
from arena.matchmaker.fairness import capped_pair_weights
from arena.matchmaker.policy import selection_distribution
from arena.matchmaker.sets import MixtureSets, PinnedSets, UniformSets, WeightedSets, inclusion_probabilities
from arena.matchmaker.state import online_pair_update, online_ranking_update


def random_state(n: int, seed: int = 0, votes=None) -> RatingState:
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(n)]
    state = RatingState.prior(names)
    state.mean = rng.normal(0.0, 1.0, n)
    root = rng.normal(0.0, 0.15, (n, n))
    state.covariance = root @ root.T + np.diag(rng.uniform(0.01, 0.3, n))
    state.votes = np.asarray(votes if votes is not None else rng.integers(200, 2000, n), dtype=float)
    pair_votes = rng.integers(0, 50, (n, n)).astype(float)
    state.pair_votes = np.triu(pair_votes, 1) + np.triu(pair_votes, 1).T
    return state


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_probabilities_of_all_sets_sum_to_one(strategy, k):
    distribution = selection_distribution(strategy, random_state(7, seed=k), k)
    total = sum(distribution.probability(s) for s in itertools.combinations(range(7), k))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_weighted_pairs_are_proportional_to_weights():
    weights = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
    distribution = WeightedSets(weights, 2)
    for i, j in itertools.combinations(range(4), 2):
        assert distribution.probability((i, j)) == pytest.approx(weights[i, j] / 21.0)


def test_uniform_probability_is_one_over_n_choose_k():
    matchmaker = build_matchmaker("uniform")
    selection = matchmaker.choose([f"m{i}" for i in range(9)], 3, np.random.default_rng(0))
    assert selection.probability == pytest.approx(1 / math.comb(9, 3))
    assert selection.strategy == "uniform" and len(set(selection.models)) == 3


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_recorded_probabilities_match_empirical_frequencies(strategy, k):
    """Chi-square of 20,000 draws against the probabilities the matchmaker records."""
    n = 6
    distribution = selection_distribution(strategy, random_state(n, seed=11), k)
    sets = list(itertools.combinations(range(n), k))
    expected = np.array([distribution.probability(s) for s in sets])
    rng = np.random.default_rng(5)
    draws = 20_000
    observed = np.zeros(len(sets))
    position = {s: i for i, s in enumerate(sets)}
    for _ in range(draws):
        observed[position[distribution.sample(rng)]] += 1
    # pool sets expected fewer than 5 times so the chi-square approximation holds
    small = expected * draws < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum()) * draws
    keep = exp > 0
    assert chisquare(obs[keep], exp[keep]).pvalue > 1e-3


def test_choose_records_the_probability_of_the_unordered_set_and_shuffles_sides():
    matchmaker = build_matchmaker("active")
    names = ["a", "b", "c"]
    rng = np.random.default_rng(1)
    first_seen = {}
    for _ in range(400):
        selection = matchmaker.choose(names, 2, rng)
        first_seen[selection.models[0]] = first_seen.get(selection.models[0], 0) + 1
        assert 0 < selection.probability <= 1
    assert len(first_seen) == 3  # every model shows up on side A sometimes


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_respects_the_fairness_floor(strategy, k):
    """Exact inclusion probabilities, on a state built to starve some models."""
    n = 8
    state = random_state(n, seed=3)
    state.mean = np.array([3.0, 3.0, 2.9, 0.0, -0.1, -3.0, -6.0, -9.0])
    state.covariance = np.diag([1.0, 1.0, 1.0, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4])
    floor = 0.2
    options = StrategyOptions(fairness=FairnessPolicy(floor=floor))
    shares = inclusion_probabilities(selection_distribution(strategy, state, k, options))
    assert shares.sum() == pytest.approx(k)
    assert shares.min() >= floor * k / n - 1e-12


def test_fairness_floor_holds_over_many_draws():
    n, k, floor = 8, 2, 0.3
    matchmaker = build_matchmaker("top-k", floor=floor)
    names = [f"m{i}" for i in range(n)]
    rng = np.random.default_rng(2)
    counts = dict.fromkeys(names, 0)
    draws = 3000
    for _ in range(draws):
        winner, loser = sorted(matchmaker.choose(names, k, rng).models)  # m0 < m1 < ... always wins
        matchmaker.record_outcome(winner, loser, "model_a")
        counts[winner] += 1
        counts[loser] += 1
    # allow four binomial standard deviations below the floor
    share_floor = floor * k / n
    slack = 4 * math.sqrt(share_floor * (1 - share_floor) / draws)
    assert min(counts.values()) / draws >= share_floor - slack


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_excluded_models_are_never_chosen(strategy):
    matchmaker = build_matchmaker(strategy, excluded=["m1", "m4"])
    names = [f"m{i}" for i in range(6)]
    rng = np.random.default_rng(3)
    for _ in range(300):
        selection = matchmaker.choose(names, 2, rng)
        assert not {"m1", "m4"} & set(selection.models)
    with pytest.raises(ValueError, match="only 1 model"):
        matchmaker.choose(["m0", "m1", "m4"], 2)


def test_active_picks_a_model_with_a_huge_interval_far_more_often_than_uniform():
    n = 10
    state = RatingState.prior([f"m{i}" for i in range(n)])
    state.mean = np.linspace(2.0, -2.0, n)
    state.covariance = np.eye(n) * 0.02
    state.covariance[4, 4] = 4.0  # +-390 rating points
    state.votes = np.full(n, 500.0)
    active = inclusion_probabilities(selection_distribution("active", state, 2))[4]
    uniform = inclusion_probabilities(selection_distribution("uniform", state, 2))[4]
    assert uniform == pytest.approx(2 / n)
    assert active > 3 * uniform


def test_no_pair_takes_most_battles_in_a_small_arena():
    # 5 models, one pair of equal means with wide intervals, the rest far apart and settled:
    # uncapped, active would spend nearly every battle on that pair.
    state = RatingState.prior([f"m{i}" for i in range(5)])
    state.mean = np.array([0.0, 0.0, 3.0, -3.0, 6.0])
    state.covariance = np.eye(5) * 0.001
    state.covariance[0, 0] = state.covariance[1, 1] = 0.5
    state.votes = np.full(5, 500.0)
    uncapped = FairnessPolicy(max_pair_share=1.0)
    loose = selection_distribution("active", state, 2, StrategyOptions(fairness=uncapped))
    assert loose.probability((0, 1)) > 0.5  # so the cap below is what holds it down
    capped = selection_distribution("active", state, 2)
    policy = FairnessPolicy()
    ceiling = policy.floor / 10 + (1 - policy.floor) * policy.max_pair_share
    probabilities = [capped.probability(pair) for pair in itertools.combinations(range(5), 2)]
    assert max(probabilities) == pytest.approx(ceiling)
    assert sum(probabilities) == pytest.approx(1.0)


def test_capped_pair_weights_water_fill():
    weights = np.zeros((4, 4))
    weights[0, 1], weights[2, 3], weights[1, 2] = 90.0, 6.0, 4.0
    weights = weights + weights.T
    capped = capped_pair_weights(weights, 0.4)
    upper = capped[np.triu_indices(4, 1)]
    assert upper.sum() == pytest.approx(1.0)
    assert upper.max() == pytest.approx(0.4)
    # (0, 1) capped at 0.4; the 0.6 left goes 6:4 to (2, 3) and (1, 2); the zero pairs stay zero
    assert capped[2, 3] == pytest.approx(0.36) and capped[1, 2] == pytest.approx(0.24)
    assert capped[0, 2] == 0.0 and np.allclose(capped, capped.T)
    spread = np.random.default_rng(1).random((30, 30))
    assert np.array_equal(capped_pair_weights(spread + spread.T, 0.2), spread + spread.T)  # never binds
    three = np.ones((3, 3))
    three[0, 1] = three[1, 0] = 50.0
    assert capped_pair_weights(three, 0.2)[0, 1] == pytest.approx(2 / 3)  # 3 pairs: twice an equal share
    with pytest.raises(ValueError, match="max_pair_share"):
        FairnessPolicy(max_pair_share=0.0)


def test_new_model_is_boosted_until_it_has_enough_votes():
    n = 10
    state = RatingState.prior([f"m{i}" for i in range(n)])
    state.mean = np.linspace(2.0, -2.0, n)
    state.covariance = np.eye(n) * 0.01
    state.covariance[9, 9] = 1.0
    state.votes = np.full(n, 2000.0)
    state.votes[9] = 0
    policy = FairnessPolicy(floor=0.1, boost_share=0.5, new_model_votes=300)
    shares = inclusion_probabilities(selection_distribution("ucb", state, 2, StrategyOptions(fairness=policy)))
    assert shares[9] >= 0.9 * 0.5  # the boost seats it in half of the non-floor battles
    state.votes[9] = 300  # enough votes: no boost any more
    assert not policy.boosted(state.votes, np.diag(state.covariance)).any()


def test_pinned_pair_gets_its_share():
    state = random_state(6, seed=4)
    options = StrategyOptions(fairness=FairnessPolicy(pins=((("m2", "m5"), 0.25),)))
    for strategy in STRATEGIES:
        distribution = selection_distribution(strategy, state, 2, options)
        assert distribution.probability((2, 5)) >= 0.25
    with pytest.raises(ValueError, match="exceed"):
        FairnessPolicy(floor=0.5, pins=((("a", "b"), 0.6),))


def test_k_wise_sets_cluster_informative_models():
    """With two groups of near-equal uncertain models far apart, a 3-set rarely mixes groups."""
    n = 6
    state = RatingState.prior([f"m{i}" for i in range(n)])
    state.mean = np.array([3.0, 3.05, 3.1, -3.0, -3.05, -3.1])
    state.covariance = np.eye(n) * 0.05
    distribution = selection_distribution("active", state, 3, StrategyOptions(fairness=FairnessPolicy(floor=0.0)))
    pure = distribution.probability((0, 1, 2)) + distribution.probability((3, 4, 5))
    assert pure > 0.9


def test_mixture_and_pinned_sets_probabilities():
    mixture = MixtureSets([UniformSets(5, 2), PinnedSets(5, 2, [0])], [0.5, 0.5])
    assert mixture.probability((0, 3)) == pytest.approx(0.5 / 10 + 0.5 / 4)
    assert mixture.probability((1, 3)) == pytest.approx(0.5 / 10)


def test_online_update_is_symmetric_and_learns_a_known_order():
    mean, variance = np.zeros(2), np.ones(2)
    online_pair_update(mean, variance, 0, 1)
    assert mean[0] == pytest.approx(-mean[1]) and mean[0] > 0
    assert variance[0] == pytest.approx(variance[1]) and variance[0] < 1
    tie_mean, tie_var = np.zeros(2), np.ones(2)
    online_pair_update(tie_mean, tie_var, 0, 1, 0.5)
    assert np.allclose(tie_mean, 0.0)

    rng = np.random.default_rng(0)
    truth = np.linspace(1.5, -1.5, 6)
    mean, variance = np.zeros(6), np.ones(6)
    for _ in range(3000):
        i, j = rng.choice(6, 2, replace=False)
        if rng.random() < 1 / (1 + np.exp(truth[j] - truth[i])):
            online_ranking_update(mean, variance, [[i], [j]])
        else:
            online_ranking_update(mean, variance, [[j], [i]])
    assert kendalltau(mean, truth).statistic == pytest.approx(1.0)
    assert np.abs(mean - mean.mean() - truth).max() < 0.35


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="unknown matchmaker strategy"):
        build_matchmaker("random")
    with pytest.raises(ValueError, match="unknown matchmaker option"):
        build_matchmaker("active", flor=0.1)
    with pytest.raises(ValueError, match="floor"):
        build_matchmaker("active", floor=1.5)
    with pytest.raises(ValueError, match="distinct"):
        build_matchmaker("uniform").choose(["a", "a", "b"], 2)
    with pytest.raises(ValueError, match="exactly once"):
        build_matchmaker("active").record_vote(["a", "b"], [["a"], ["c"]])


def test_choose_end_to_end_frequencies_match_recorded_probabilities():
    """Through the public choose(): a fixed snapshot, no votes in between."""
    from arena.matchmaker.live import LiveMatchmaker
    from leaderboard.views.snapshot import Snapshot

    names = ["a", "b", "c", "d", "e"]
    matchmaker = LiveMatchmaker("active")
    matchmaker.set_snapshot(Snapshot(generated_at=1.0, total_votes=100, method="test", rows=[], models=names,
                                     theta=[0.5, 0.45, 0.0, -0.6, -0.62],
                                     covariance=np.diag([0.05, 0.08, 0.02, 0.1, 0.01]).tolist()))
    rng = np.random.default_rng(9)
    counts, recorded = {}, {}
    draws = 4000
    for _ in range(draws):
        selection = matchmaker.choose(names, 2, rng)
        pair = frozenset(selection.models)
        counts[pair] = counts.get(pair, 0) + 1
        assert recorded.setdefault(pair, selection.probability) == pytest.approx(selection.probability)
    pairs = [frozenset(p) for p in itertools.combinations(names, 2)]
    assert sum(recorded.values()) == pytest.approx(1.0, abs=0.02)  # nearly every pair was drawn
    expected = np.array([recorded.get(p, 0.0) for p in pairs]) * draws
    observed = np.array([counts.get(p, 0) for p in pairs])
    keep = expected >= 5
    assert chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()).pvalue > 1e-3
