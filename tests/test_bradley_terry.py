"""Bradley-Terry fit: a published worked example, exactness, known-truth simulations, invariances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from leaderboard.data.counts import PairCounts
from leaderboard.fit import DisconnectedGraphError, NoMaximumLikelihoodError, fit_leaderboard
from leaderboard.models.bradley_terry import bradley_terry, bt_gradient, davidson, half_tie_scores
from leaderboard.models.scale import ELO_PER_NAT

OUTCOMES = np.array(["model_a", "model_b", "tie", "tie (bothbad)"], dtype=object)


def votes_from_wins(wins: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = [(winner, loser, "model_a") for (winner, loser), n in wins.items() for _ in range(n)]
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def simulate(theta: np.ndarray, n_votes: int, rng: np.random.Generator, tie_share: float = 0.2,
             pair_prob: np.ndarray | None = None) -> pd.DataFrame:
    """Votes under Bradley-Terry with random ties (a tie is half a win each way on average)."""
    n_models = len(theta)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    tie = rng.random(n_votes) < tie_share
    a_wins = rng.random(n_votes) < p_a
    outcome = np.where(tie, 2 + (rng.random(n_votes) < 0.5), np.where(a_wins, 0, 1))
    names = np.array([f"m{k}" for k in range(n_models)], dtype=object)
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": OUTCOMES[outcome]})


# ---- the worked example of the Wikipedia article "Bradley-Terry model" -----------------------

# 22 games among four teams (row beat column): A beat B 2, lost 3; A beat D 1, lost 4; B beat C 5,
# lost 3; C beat D 1, lost 3; A-C and B-D never met. The article iterates to
# p = [0.640, 1.043, 0.660, 2.270], normalised to geometric mean 1.
WIKIPEDIA_WINS = {("A", "B"): 2, ("B", "A"): 3, ("A", "D"): 1, ("D", "A"): 4,
                  ("B", "C"): 5, ("C", "B"): 3, ("C", "D"): 1, ("D", "C"): 3}
WIKIPEDIA_SCORES = {"A": 0.640, "B": 1.043, "C": 0.660, "D": 2.270}


def test_wikipedia_worked_example_to_three_decimals():
    fit = fit_leaderboard(PairCounts.from_frame(votes_from_wins(WIKIPEDIA_WINS)))
    scores = np.exp(fit.theta - fit.theta.mean())  # geometric mean 1, as in the article
    for name, expected in WIKIPEDIA_SCORES.items():
        assert round(float(scores[fit.models.index(name)]), 3) == expected
    assert fit.n_votes == 22
    assert fit.votes.tolist() == [10, 13, 12, 9]
    # ratings are the same numbers on the Elo-like scale, mean 1000
    assert fit.rating.mean() == pytest.approx(1000.0)
    assert fit.rating[3] - fit.rating[0] == pytest.approx(ELO_PER_NAT * np.log(2.270 / 0.640), abs=0.1)


# ---- exactness ---------------------------------------------------------------------------------

def test_gradient_below_1e_8_including_models_with_few_votes():
    rng = np.random.default_rng(11)
    theta = rng.normal(0, 0.8, 12)
    big = simulate(theta[:10], 50_000, rng)
    # two rare models with a handful of votes each, against popular ones, with wins and losses
    rare = pd.DataFrame({
        "model_a": ["m10", "m10", "m10", "m11", "m11", "m11", "m11"],
        "model_b": ["m0", "m1", "m2", "m3", "m0", "m10", "m4"],
        "winner": ["model_a", "model_b", "tie", "model_a", "model_b", "model_b", "model_b"],
    })
    counts = PairCounts.from_frame(pd.concat([big, rare], ignore_index=True))
    fit = fit_leaderboard(counts, ci="none")
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)
    gradient = bt_gradient(fit.theta, arrays.pair_i, arrays.pair_j, wins, totals)
    assert np.max(np.abs(gradient)) < 1e-8
    assert counts.votes_per_model()["m10"] == 4 and counts.votes_per_model()["m11"] == 4


def test_matches_a_general_purpose_optimiser():
    rng = np.random.default_rng(3)
    counts = PairCounts.from_frame(simulate(rng.normal(0, 1, 6), 3000, rng))
    arrays = counts.arrays()
    wins, totals = half_tie_scores(arrays)

    def negative_log_likelihood(free):
        theta = np.append(free, -free.sum())
        d = theta[arrays.pair_i] - theta[arrays.pair_j]
        return -(wins @ -np.logaddexp(0, -d) + (totals - wins) @ -np.logaddexp(0, d))

    reference = minimize(negative_log_likelihood, np.zeros(5), method="BFGS", options={"gtol": 1e-10}).x
    ours = bradley_terry(6, arrays.pair_i, arrays.pair_j, wins, totals).theta
    np.testing.assert_allclose(ours, np.append(reference, -reference.sum()), atol=1e-5)


def test_warm_start_equals_fit_from_scratch():
    rng = np.random.default_rng(5)
    counts = PairCounts.from_frame(simulate(rng.normal(0, 1, 8), 5000, rng))
    scratch = fit_leaderboard(counts)
    warm = fit_leaderboard(counts, init_theta={m: 3.0 * rng.normal() for m in counts.models[:6]})
    np.testing.assert_allclose(warm.theta, scratch.theta, atol=1e-10)
    np.testing.assert_allclose(warm.lower, scratch.lower, atol=1e-7)


# ---- known truth ---------------------------------------------------------------------------------

def test_estimates_converge_to_the_truth():
    rng = np.random.default_rng(7)
    truth = rng.normal(0, 0.7, 6)
    truth -= truth.mean()
    errors = []
    for n_votes in (2_000, 200_000):
        # no ties: random ties would pull the half-tie estimate towards 0 (a different estimand)
        fit = fit_leaderboard(PairCounts.from_frame(simulate(truth, n_votes, rng, tie_share=0.0)))
        errors.append(np.max(np.abs(fit.theta[np.argsort(fit.models)] - truth)))
        standard_error = np.sqrt(np.diag(fit.covariance)).max()
        assert errors[-1] < 4 * standard_error
    assert errors[1] < errors[0] / 3


def test_davidson_recovers_strengths_and_tie_parameter():
    rng = np.random.default_rng(8)
    truth = np.array([-0.6, -0.1, 0.2, 0.5])
    nu = 0.8
    n_votes = 150_000
    a = rng.integers(0, 4, n_votes)
    b = (a + rng.integers(1, 4, n_votes)) % 4
    half = 0.5 * (truth[a] - truth[b])
    weights = np.stack([np.exp(half), np.exp(-half), np.full(n_votes, nu)], axis=1)
    probabilities = weights / weights.sum(axis=1, keepdims=True)
    outcome = (rng.random(n_votes)[:, None] > np.cumsum(probabilities, axis=1)).sum(axis=1)
    names = np.array(["m0", "m1", "m2", "m3"], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": OUTCOMES[outcome]})
    fit = fit_leaderboard(PairCounts.from_frame(frame), ties="davidson")
    standard_errors = np.sqrt(np.diag(fit.covariance))
    assert np.all(np.abs(fit.theta - truth) < 4 * standard_errors)
    assert fit.settings["davidson_nu"] == pytest.approx(nu, rel=0.03)
    assert fit.settings["max_abs_gradient"] < 1e-8


def test_davidson_matches_a_general_purpose_optimiser():
    wins_i = np.array([5.0, 2.0, 7.0, 1.0])
    wins_j = np.array([3.0, 4.0, 2.0, 3.0])
    ties = np.array([2.0, 1.0, 0.0, 3.0])
    pair_i, pair_j = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 3])

    def negative_log_likelihood(free):
        theta = np.append(free[:3], -free[:3].sum())
        d = 0.5 * (theta[pair_i] - theta[pair_j])
        log_total = np.logaddexp(np.logaddexp(d, -d), free[3])
        return -(wins_i @ (d - log_total) + wins_j @ (-d - log_total) + ties @ (free[3] - log_total))

    reference = minimize(negative_log_likelihood, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    ours = davidson(4, pair_i, pair_j, wins_i, wins_j, ties)
    np.testing.assert_allclose(ours.theta, np.append(reference[:3], -reference[:3].sum()), atol=1e-5)
    assert ours.log_nu == pytest.approx(reference[3], abs=1e-5)


# ---- invariances ---------------------------------------------------------------------------------

def test_swapping_sides_and_flipping_outcomes_changes_nothing():
    rng = np.random.default_rng(9)
    frame = simulate(rng.normal(0, 1, 7), 4000, rng)
    swapped = frame.rename(columns={"model_a": "model_b", "model_b": "model_a"})
    swapped["winner"] = swapped["winner"].map({"model_a": "model_b", "model_b": "model_a"}).fillna(swapped["winner"])
    one = fit_leaderboard(PairCounts.from_frame(frame))
    two = fit_leaderboard(PairCounts.from_frame(swapped[["model_a", "model_b", "winner"]]))
    np.testing.assert_allclose(one.theta, two.theta, atol=1e-12)
    np.testing.assert_allclose(one.covariance, two.covariance, atol=1e-12)


def test_row_order_changes_nothing():
    rng = np.random.default_rng(10)
    frame = simulate(rng.normal(0, 1, 7), 4000, rng)
    shuffled = frame.sample(frac=1.0, random_state=1)
    one, two = fit_leaderboard(PairCounts.from_frame(frame)), fit_leaderboard(PairCounts.from_frame(shuffled))
    assert one.models == two.models
    np.testing.assert_allclose(one.theta, two.theta, atol=1e-12)
    # The table a reader sees: the same models in the same order with the same ranks and votes, and
    # ratings and interval ends equal up to floating-point summation order (a shuffle reorders sums).
    rows_one, rows_two = one.rows(), two.rows()
    assert [row["model"] for row in rows_one] == [row["model"] for row in rows_two]
    for row_one, row_two in zip(rows_one, rows_two, strict=True):
        assert row_one == pytest.approx(row_two, abs=1e-9)


def test_incremental_counts_equal_batch_counts():
    rng = np.random.default_rng(12)
    frame = simulate(rng.normal(0, 1, 5), 500, rng)
    incremental = PairCounts.empty()
    for row in frame.itertuples(index=False):
        incremental.add(row.model_a, row.model_b, row.winner)
    batch = PairCounts.from_frame(frame)
    assert incremental.n_votes == batch.n_votes == 500
    assert incremental.votes_per_model() == batch.votes_per_model()
    np.testing.assert_allclose(
        fit_leaderboard(incremental).rating[np.argsort(incremental.models)], fit_leaderboard(batch).rating, atol=1e-9)


# ---- when there is no answer ---------------------------------------------------------------------

def test_disconnected_graph_names_the_groups():
    frame = votes_from_wins({("a", "b"): 2, ("b", "a"): 1, ("c", "d"): 1, ("d", "c"): 1})
    with pytest.raises(DisconnectedGraphError, match="never compared") as info:
        fit_leaderboard(PairCounts.from_frame(frame))
    assert sorted(map(sorted, info.value.components)) == [["a", "b"], ["c", "d"]]
    with pytest.raises(DisconnectedGraphError):  # a prior does not make the groups comparable
        fit_leaderboard(PairCounts.from_frame(frame), alpha=1.0)


def test_a_model_that_never_lost_has_no_mle_but_fits_with_a_prior():
    frame = votes_from_wins({("a", "b"): 3, ("b", "a"): 2, ("b", "c"): 2, ("c", "b"): 2, ("champ", "a"): 1})
    with pytest.raises(NoMaximumLikelihoodError, match="never lost") as info:
        fit_leaderboard(PairCounts.from_frame(frame))
    # champ never lost (its rating runs off to +inf) and a, b, c never beat it: both ends are named
    assert "never lost to any model outside their group: ['champ']" in str(info.value)
    assert info.value.models == ["a", "b", "c", "champ"]
    fit = fit_leaderboard(PairCounts.from_frame(frame), alpha=0.1)  # the worker's case: one vote, alpha > 0
    assert np.all(np.isfinite(fit.rating)) and np.all(np.isfinite(fit.lower)) and np.all(np.isfinite(fit.upper))
    assert fit.rating[fit.models.index("champ")] > fit.rating[fit.models.index("a")]
    assert fit.votes[fit.models.index("champ")] == 1


def test_a_tie_counts_half_a_win_each_way():
    frame = pd.DataFrame({"model_a": ["a", "a", "b"], "model_b": ["b", "b", "a"],
                          "winner": ["model_a", "tie", "model_a"]})
    fit = fit_leaderboard(PairCounts.from_frame(frame))
    # a beat b, tied, lost: a scores 1 + 1/2 + 0 = 1.5 of 3: equal strengths
    assert fit.theta[0] == pytest.approx(0.0, abs=1e-12)


def test_an_undefeated_model_with_a_tie_has_a_finite_rating():
    frame = pd.DataFrame({"model_a": ["a", "a"], "model_b": ["b", "b"], "winner": ["model_a", "tie"]})
    fit = fit_leaderboard(PairCounts.from_frame(frame))
    # a scores 1.5 of 2: P(a beats b) = 3/4, so theta_a - theta_b = log 3
    assert fit.theta[0] - fit.theta[1] == pytest.approx(np.log(3.0), abs=1e-10)


def test_fit_errors_survive_pickling_between_processes():
    import pickle

    from leaderboard.models.graph import DisconnectedGraphError, NoMaximumLikelihoodError

    error = DisconnectedGraphError([["a", "b"], ["c", "d"]])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.components == [["a", "b"], ["c", "d"]] and str(copy) == str(error)
    missing = NoMaximumLikelihoodError("model x never lost", ["x"])
    copy = pickle.loads(pickle.dumps(missing))
    assert copy.models == ["x"] and str(copy) == "model x never lost"
