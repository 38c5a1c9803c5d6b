"""The parallel Poisson bootstrap: exact Poisson draws, reproducible whatever the thread count,
independent chunks, replicate weights with Poisson(1)-per-vote moments, coverage of known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from leaderboard.data.counts import PairCounts
from leaderboard.models.bradley_terry import bradley_terry, half_tie_scores
from leaderboard.resampling.bootstrap import PoissonResampler, bootstrap_thetas
from leaderboard.resampling.poisson_sampling import TABLE_MAX_MEAN, InversionTable, PoissonSampler, _Scratch
from leaderboard.resampling.replicates import CHUNK_REPLICATES

OUTCOMES = np.array(["model_a", "model_b", "tie"], dtype=object)


def all_pairs_votes(theta: np.ndarray, votes_per_pair: int, rng: np.random.Generator,
                    tie_share: float = 0.2) -> pd.DataFrame:
    """Every pair played, as in LMArena's data; pair sizes vary around votes_per_pair. Ties fall
    at random (tie_share), so with ties the half-tie fit estimates a shrunken theta, not theta."""
    first, second = np.triu_indices(theta.size, k=1)
    per_pair = rng.integers(votes_per_pair // 2, 2 * votes_per_pair, first.size)
    a, b = np.repeat(first, per_pair), np.repeat(second, per_pair)
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    tie = rng.random(a.size) < tie_share
    outcome = np.where(tie, 2, np.where(rng.random(a.size) < p_a, 0, 1))
    names = np.array([f"m{k:02d}" for k in range(theta.size)], dtype=object)
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": OUTCOMES[outcome]})


@pytest.fixture(scope="module")
def dense():
    rng = np.random.default_rng(4)
    theta = rng.normal(0, 0.5, 30)
    counts = PairCounts.from_frame(all_pairs_votes(theta, 20, rng))
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)
    theta_hat = bradley_terry(arrays.n_models, arrays.pair_i, arrays.pair_j, wins, totals).theta
    return arrays, theta_hat


def test_same_seed_gives_identical_replicates_whatever_the_thread_count(dense):
    arrays, theta_hat = dense
    n = 3 * CHUNK_REPLICATES + 17  # several chunks, the last one short
    serial = bootstrap_thetas(theta_hat, arrays, n_bootstrap=n, seed=11, threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(bootstrap_thetas(theta_hat, arrays, n_bootstrap=n, seed=11, threads=threads),
                                      serial)
    assert not np.array_equal(bootstrap_thetas(theta_hat, arrays, n_bootstrap=n, seed=12, threads=2), serial)
    with pytest.raises(ValueError, match="threads"):
        bootstrap_thetas(theta_hat, arrays, n_bootstrap=n, threads=0)


def test_chunks_draw_from_independent_streams(dense):
    """Were two chunks given one generator (or one seed), their replicates would repeat."""
    arrays, theta_hat = dense
    replicates = bootstrap_thetas(theta_hat, arrays, n_bootstrap=2 * CHUNK_REPLICATES, seed=0, threads=2)
    first, second = replicates[:CHUNK_REPLICATES], replicates[CHUNK_REPLICATES:]
    assert len(np.unique(np.round(replicates, 10), axis=0)) == len(replicates)
    # replicate b of chunk 1 is unrelated to replicate b of chunk 0
    correlation = [np.corrcoef(first[:, m], second[:, m])[0, 1] for m in range(arrays.n_models)]
    assert abs(np.mean(correlation)) < 0.05


@pytest.mark.parametrize("mean", [0.3, 1.0, 2.0, 5.0, 9.0, 17.0, 64.0, 250.0])
def test_table_inversion_is_the_poisson_distribution(mean):
    """Many cells sharing a mean (the tabled path): chi-square goodness of fit to Poisson(mean) on
    400,000 draws, and the guide table agrees with a plain binary search on the same uniforms."""
    sampler = PoissonSampler(np.full(400, mean), expected_draws=1000)
    assert len(sampler.groups) == 1 and sampler.rest.size == 0  # the table path is the one tested
    draws = sampler.draw(1000, np.random.default_rng(int(mean * 10))).ravel()
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    low, high = stats.poisson.ppf([1e-4, 1 - 1e-4], mean).astype(int)
    edges = np.arange(low, high + 2)
    observed = np.histogram(np.clip(draws, low, high), bins=edges - 0.5)[0]
    expected = np.diff(np.concatenate([[0.0], stats.poisson.cdf(edges[:-1], mean)]))
    expected[0] = stats.poisson.cdf(low, mean)
    expected[-1] = stats.poisson.sf(high - 1, mean)
    assert stats.chisquare(observed, expected * draws.size / expected.sum()).pvalue > 1e-3
    assert abs(draws.mean() - mean) < 4 * np.sqrt(mean / draws.size)
    assert abs(draws.var() / mean - 1) < 0.02

    table = InversionTable.for_mean(mean)
    uniform = np.random.default_rng(1).random(50_000)
    uniform[:3] = [0.0, np.nextafter(1.0, 0.0), table.cdf[0]]  # the edges of [0, 1) and a table entry
    counts = np.empty(uniform.size)
    table.counts(uniform, counts, _Scratch.of_size(uniform.size))
    np.testing.assert_array_equal(counts, np.searchsorted(table.cdf, uniform, side="right"))


def test_means_few_cells_share_use_numpy_and_are_poisson_too():
    means = np.array([0.0, 0.37, 2.5, 11.1, TABLE_MAX_MEAN * 3])
    sampler = PoissonSampler(means, expected_draws=1_000)  # one cell per mean: no table pays off
    assert sampler.groups == [] and sampler.rest.tolist() == [1, 2, 3, 4]
    draws = sampler.draw(40_000, np.random.default_rng(0))
    assert np.all(draws[0] == 0)
    np.testing.assert_allclose(draws[1:].mean(axis=1), means[1:], rtol=0.03)
    np.testing.assert_allclose(draws[1:].var(axis=1), means[1:], rtol=0.05)


def test_replicate_weights_have_poisson_one_moments_per_vote():
    """Each vote appears Poisson(1) times: a cell of n votes of weight w has replicate weight with
    mean n w and variance n w^2; a tie counts half a win to each side; classes are independent."""
    frame = pd.DataFrame({
        "model_a": ["a"] * 7 + ["b"] * 3 + ["a"] * 4,
        "model_b": ["b"] * 7 + ["a"] * 3 + ["c"] * 4,
        "winner": ["model_a"] * 7 + ["model_a"] * 3 + ["tie"] * 4,
        "w": [2.0] * 7 + [0.5] * 3 + [1.0] * 4,
    })
    arrays = PairCounts.from_frame(frame, "w").arrays()
    n = 40_000
    wins, totals = PoissonResampler(arrays, n).draw(n, np.random.default_rng(3))
    ab = np.flatnonzero((arrays.pair_i == 0) & (arrays.pair_j == 1))[0]
    ac = np.flatnonzero((arrays.pair_i == 0) & (arrays.pair_j == 2))[0]
    # pair (a, b): a won 7 votes of weight 2, b won 3 of weight 0.5
    assert abs(wins[ab].mean() - 14.0) < 0.15 and abs(wins[ab].var() / 28.0 - 1) < 0.04
    losses = totals[ab] - wins[ab]
    assert abs(losses.mean() - 1.5) < 0.03 and abs(losses.var() / 0.75 - 1) < 0.04
    assert abs(np.corrcoef(wins[ab], losses)[0, 1]) < 0.03
    # pair (a, c): 4 ties of weight 1, half a win each
    np.testing.assert_array_equal(wins[ac], 0.5 * totals[ac])
    assert abs(totals[ac].mean() - 4.0) < 0.05 and abs(totals[ac].var() / 4.0 - 1) < 0.04


def test_parallel_bootstrap_intervals_cover_the_truth_on_all_pairs_data():
    rng = np.random.default_rng(21)
    truth = rng.normal(0, 0.4, 8)
    truth -= truth.mean()
    covered = []
    for _ in range(60):
        counts = PairCounts.from_frame(all_pairs_votes(truth, 30, rng, tie_share=0.0))
        arrays = counts.arrays()
        wins, totals = half_tie_scores(arrays)
        theta_hat = bradley_terry(arrays.n_models, arrays.pair_i, arrays.pair_j, wins, totals).theta
        replicates = bootstrap_thetas(theta_hat, arrays, n_bootstrap=200, seed=int(rng.integers(1 << 30)), threads=2)
        lower, upper = np.percentile(replicates, [2.5, 97.5], axis=0)
        covered.append((lower <= truth) & (truth <= upper))
    assert 0.92 <= np.mean(covered) <= 0.98
