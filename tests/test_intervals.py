"""Intervals: coverage against known truth, sandwich vs bootstrap, the exact meat, seeds, ranks, IPW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leaderboard.data.counts import PairCounts
from leaderboard.fit import fit_leaderboard
from leaderboard.models.bradley_terry import bradley_terry, half_tie_scores
from leaderboard.models.ranks import rank_intervals
from leaderboard.models.sandwich import sandwich_cov
from leaderboard.resampling.bootstrap import bootstrap_thetas

OUTCOMES = np.array(["model_a", "model_b", "tie", "tie (bothbad)"], dtype=object)
NAMES = np.array([f"m{k}" for k in range(10)], dtype=object)


def simulate(theta, n_votes, rng, tie_share=0.0):
    n_models = len(theta)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    tie = rng.random(n_votes) < tie_share
    outcome = np.where(tie, 2, np.where(rng.random(n_votes) < p_a, 0, 1))
    return pd.DataFrame({"model_a": NAMES[a], "model_b": NAMES[b], "winner": OUTCOMES[outcome]})


TRUTH = np.array([-0.6, -0.2, 0.0, 0.3, 0.5])


def coverage(ci: str, n_datasets: int, n_votes: int, seed: int, **options) -> float:
    rng = np.random.default_rng(seed)
    covered = []
    for _ in range(n_datasets):
        fit = fit_leaderboard(PairCounts.from_frame(simulate(TRUTH, n_votes, rng)), ci=ci,
                              seed=int(rng.integers(1 << 30)), **options)
        # compare on the nat scale: the truth is mean-zero, like theta (ratings are 1000 + points * theta)
        points_per_nat = 400.0 / np.log(10.0)
        lower = (fit.lower - 1000.0) / points_per_nat
        upper = (fit.upper - 1000.0) / points_per_nat
        covered.append((lower <= TRUTH) & (TRUTH <= upper))
    return float(np.mean(covered))


def test_sandwich_95_percent_intervals_cover_the_truth():
    assert 0.93 <= coverage("sandwich", n_datasets=300, n_votes=1500, seed=1) <= 0.97


def test_bootstrap_95_percent_intervals_cover_the_truth():
    assert 0.93 <= coverage("bootstrap", n_datasets=200, n_votes=1500, seed=2, n_bootstrap=300) <= 0.97


def test_sandwich_and_large_bootstrap_agree():
    rng = np.random.default_rng(4)
    counts = PairCounts.from_frame(simulate(np.linspace(-0.8, 0.8, 6), 60_000, rng, tie_share=0.25))
    sandwich = fit_leaderboard(counts, ci="sandwich")
    bootstrap = fit_leaderboard(counts, ci="bootstrap", n_bootstrap=3000, seed=0)
    half_width = sandwich.upper - sandwich.rating
    assert np.all(np.abs(bootstrap.lower - sandwich.lower) < 0.08 * half_width)
    assert np.all(np.abs(bootstrap.upper - sandwich.upper) < 0.08 * half_width)
    np.testing.assert_allclose(bootstrap.covariance, sandwich.covariance,
                               atol=0.15 * sandwich.covariance.diagonal().max())


def test_fixed_seed_gives_identical_intervals():
    rng = np.random.default_rng(5)
    counts = PairCounts.from_frame(simulate(TRUTH, 3000, rng, tie_share=0.2))
    one = fit_leaderboard(counts, ci="bootstrap", n_bootstrap=250, seed=42)
    two = fit_leaderboard(counts, ci="bootstrap", n_bootstrap=250, seed=42)
    other = fit_leaderboard(counts, ci="bootstrap", n_bootstrap=250, seed=43)
    assert one.rows() == two.rows()
    assert not np.array_equal(one.lower, other.lower)


def test_sandwich_meat_from_counts_equals_the_per_vote_sum():
    """The meat built from per-pair sums of squared weights equals sum_v w_v^2 s_v s_v^T."""
    rng = np.random.default_rng(6)
    frame = simulate(TRUTH, 400, rng, tie_share=0.3)
    frame["w"] = rng.uniform(0.2, 3.0, len(frame))
    counts = PairCounts.from_frame(frame, "w")
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)
    theta = bradley_terry(5, arrays.pair_i, arrays.pair_j, wins, totals).theta
    index = {name: k for k, name in enumerate(counts.models)}
    a = frame["model_a"].map(index).to_numpy()
    b = frame["model_b"].map(index).to_numpy()
    y = frame["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}).to_numpy()
    p = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    scores = np.zeros((len(frame), 5))
    scores[np.arange(len(frame)), a] += frame["w"] * (y - p)
    scores[np.arange(len(frame)), b] -= frame["w"] * (y - p)
    meat = scores.T @ scores
    hessian = np.zeros((5, 5))
    for k in range(len(frame)):
        e = np.zeros(5)
        e[a[k]], e[b[k]] = 1.0, -1.0
        hessian += frame["w"].iloc[k] * p[k] * (1 - p[k]) * np.outer(e, e)
    bread = np.linalg.pinv(hessian)
    np.testing.assert_allclose(sandwich_cov(theta, arrays), bread @ meat @ bread, atol=1e-12)


def test_bootstrap_replicates_are_exact_fits_of_their_resampled_counts():
    rng = np.random.default_rng(7)
    counts = PairCounts.from_frame(simulate(TRUTH, 2000, rng, tie_share=0.2))
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)
    theta = bradley_terry(5, arrays.pair_i, arrays.pair_j, wins, totals).theta
    from leaderboard.resampling.bootstrap import fit_replicates, poisson_cell_weights

    replicate_wins, replicate_totals = poisson_cell_weights(arrays, 20, np.random.default_rng(0))
    batched = fit_replicates(theta, arrays, replicate_wins, replicate_totals)
    for b in range(20):
        one = bradley_terry(5, arrays.pair_i, arrays.pair_j, replicate_wins[b], replicate_totals[b]).theta
        np.testing.assert_allclose(batched[b], one, atol=1e-6)
    assert bootstrap_thetas(theta, arrays, n_bootstrap=30, seed=1).shape == (30, 5)


def test_rank_intervals_follow_the_lmarena_rule():
    lower = np.array([10.0, 8.0, 2.0, 0.0])
    upper = np.array([14.0, 12.0, 9.0, 1.0])
    rank, rank_lower = rank_intervals(lower, upper)
    # model 2: only model 0 has a lower bound (10) above its upper bound (9) -> rank 2;
    # models 0, 1 have upper bounds above its lower bound 2 -> worst rank 3
    assert rank.tolist() == [1, 1, 2, 4]
    assert rank_lower.tolist() == [2, 3, 3, 4]


def test_inverse_propensity_weighting_removes_selection_bias():
    """The matchmaker picks pairs with model 0 mostly for prompts where model 0 is strong.

    The target is the population leaderboard: every pair equally often, both prompt kinds equally
    often. Unweighted votes over-represent model 0's good prompts; weighting each vote by 1 / its
    logged selection probability restores the population.
    """
    strength = np.array([[-0.5, 1.0], [0.3, 0.3], [0.0, 0.0], [-0.2, -0.2]])  # model x prompt kind
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    with_zero = np.array([0 in pair for pair in pairs])
    pair_probability = {0: np.where(with_zero, 0.1 / 3, 0.9 / 3), 1: np.where(with_zero, 0.9 / 3, 0.1 / 3)}

    # population truth: Bradley-Terry fit to the expected scores of the balanced design
    pair_i = np.array([i for i, _ in pairs])
    pair_j = np.array([j for _, j in pairs])
    expected_wins = sum(0.5 / (1.0 + np.exp(strength[pair_j, z] - strength[pair_i, z])) for z in (0, 1))
    truth = bradley_terry(4, pair_i, pair_j, 1e6 * expected_wins, np.full(len(pairs), 1e6)).theta

    rng = np.random.default_rng(8)
    n_votes = 40_000
    kind = rng.integers(0, 2, n_votes)
    chosen = np.where(kind == 0, rng.choice(len(pairs), n_votes, p=pair_probability[0]),
                      rng.choice(len(pairs), n_votes, p=pair_probability[1]))
    a, b = pair_i[chosen], pair_j[chosen]
    p_a = 1.0 / (1.0 + np.exp(strength[b, kind] - strength[a, kind]))
    winner = np.where(rng.random(n_votes) < p_a, "model_a", "model_b")
    selection = np.where(kind == 0, pair_probability[0][chosen], pair_probability[1][chosen])
    frame = pd.DataFrame({"model_a": NAMES[a], "model_b": NAMES[b], "winner": winner,
                          "selection_probability": selection})

    from leaderboard.data.weights import vote_weights

    unweighted = fit_leaderboard(PairCounts.from_frame(frame))
    frame["w"] = vote_weights(frame)
    weighted = fit_leaderboard(PairCounts.from_frame(frame, "w"))
    se_weighted = np.sqrt(np.diag(weighted.covariance))
    se_unweighted = np.sqrt(np.diag(unweighted.covariance))
    assert np.all(np.abs(weighted.theta - truth) < 3 * se_weighted)
    assert np.abs(unweighted.theta[0] - truth[0]) > 5 * se_unweighted[0]
    # and the weighted 95% intervals contain the population truth
    points = 400.0 / np.log(10.0)
    assert np.all((weighted.lower - 1000) / points <= truth) and np.all(truth <= (weighted.upper - 1000) / points)


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
def test_anchor_pins_one_model_and_shifts_the_rest(ci):
    rng = np.random.default_rng(9)
    counts = PairCounts.from_frame(simulate(TRUTH, 3000, rng))
    free = fit_leaderboard(counts, ci=ci, n_bootstrap=200)
    pinned = fit_leaderboard(counts, ci=ci, n_bootstrap=200, anchor=("m2", 1200.0))
    k = pinned.models.index("m2")
    assert pinned.rating[k] == pytest.approx(1200.0) and pinned.lower[k] == pinned.upper[k] == pytest.approx(1200.0)
    np.testing.assert_allclose(pinned.rating - pinned.rating[k], free.rating - free.rating[k], atol=1e-9)


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
def test_constant_weights_change_nothing(ci):
    rng = np.random.default_rng(10)
    frame = simulate(TRUTH, 2000, rng, tie_share=0.2)
    plain = fit_leaderboard(PairCounts.from_frame(frame), ci=ci, n_bootstrap=200, seed=1)
    weighted = fit_leaderboard(PairCounts.from_frame(frame.assign(w=2.5), "w"), ci=ci, n_bootstrap=200, seed=1)
    np.testing.assert_allclose(weighted.theta, plain.theta, atol=1e-10)
    np.testing.assert_allclose(weighted.lower, plain.lower, atol=1e-6)
    np.testing.assert_allclose(weighted.upper, plain.upper, atol=1e-6)


def test_bootstrap_replicates_on_sparse_data_are_exact_too():
    """Models with one or two votes: resamples where a model's votes vanish leave the fast sweeps
    for the exact batched Newton; every replicate must still be its resample's exact (penalised) MLE."""
    rng = np.random.default_rng(11)
    theta = rng.normal(0, 1, 10)
    frame = simulate(theta, 120, rng, tie_share=0.2)
    frame = pd.concat([frame, pd.DataFrame({"model_a": ["rare"], "model_b": ["m0"], "winner": ["model_a"]})])
    counts = PairCounts.from_frame(frame)
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)
    alpha = 0.05
    theta_hat = bradley_terry(arrays.n_models, arrays.pair_i, arrays.pair_j, wins, totals, alpha=alpha).theta
    from leaderboard.resampling.bootstrap import fit_replicates, poisson_cell_weights

    replicate_wins, replicate_totals = poisson_cell_weights(arrays, 40, np.random.default_rng(3))
    assert (replicate_totals[:, np.flatnonzero(arrays.pair_i == counts.models.index("m0"))] == 0).any()
    batched = fit_replicates(theta_hat, arrays, replicate_wins, replicate_totals, alpha=alpha)
    for b in range(40):
        one = bradley_terry(arrays.n_models, arrays.pair_i, arrays.pair_j, replicate_wins[b], replicate_totals[b],
                            alpha=alpha).theta
        np.testing.assert_allclose(batched[b], one, atol=1e-6)


def test_bootstrap_survives_resamples_without_an_mle():
    """A model with 1 win and 6 losses loses its only win in about a third of the resamples
    (e^-1): those replicates have no finite MLE; the model's strength there is -inf, so its lower
    bound is unbounded (null in JSON). Losing all six losses is rare (e^-6 < 2.5%), so the upper
    bound stays finite, and the other models are located and fitted as before."""
    rng = np.random.default_rng(12)
    frame = simulate(np.array([0.0, 0.3, -0.2, 0.1]), 2000, rng)
    extra = pd.DataFrame({"model_a": ["new"] * 7, "model_b": ["m0", "m1", "m2", "m3", "m0", "m1", "m2"],
                          "winner": ["model_a"] + ["model_b"] * 6})
    counts = PairCounts.from_frame(pd.concat([frame, extra], ignore_index=True))
    fit = fit_leaderboard(counts, ci="bootstrap", n_bootstrap=200, seed=0)
    new = fit.models.index("new")
    assert np.isneginf(fit.lower[new]) and np.isfinite(fit.upper[new])
    others = np.arange(len(fit.models)) != new
    assert np.all(np.isfinite(fit.lower[others])) and np.all(fit.upper[others] - fit.lower[others] < 100)
    assert 30 < fit.settings["bootstrap_replicates_with_unbounded_models"] < 120
    row = next(r for r in fit.to_document()["models"] if r["model"] == "new")
    assert row["lower"] is None and row["rank_lower"] == 5
    import json

    json.dumps(fit.to_document(), allow_nan=False)  # strict JSON


def test_a_replicate_without_mle_fits_its_identified_group_exactly():
    from leaderboard.resampling.bootstrap import _beat_structure, _replicate_without_mle

    # a, b, c compare among themselves; "low" lost every vote
    frame = pd.DataFrame({"model_a": ["a", "a", "b", "b", "c", "c", "low", "low"],
                          "model_b": ["b", "c", "a", "c", "a", "b", "a", "c"],
                          "winner": ["model_a", "model_b", "model_a", "model_b", "tie", "model_b", "model_b",
                                     "model_b"]})
    counts = PairCounts.from_frame(frame)
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)
    structure = _beat_structure(arrays, wins, totals)
    assert structure is not None
    theta = _replicate_without_mle(np.zeros(4), arrays, wins, totals, *structure)
    low = counts.models.index("low")
    assert np.isneginf(theta[low])
    inside = np.arange(3)
    only_inside = PairCounts.from_frame(frame[frame["model_a"] != "low"])
    expected = fit_leaderboard(only_inside, ci="none").theta
    np.testing.assert_allclose(theta[inside], expected, atol=1e-9)
