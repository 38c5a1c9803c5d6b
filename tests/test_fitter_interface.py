"""One fitter interface: every model goes through ``leaderboard.fit.fit``, the exact-refit bootstrap
takes any model, and the live board fits the overall view and its snapshot by one function."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from leaderboard.data.counts import PairCounts
from leaderboard.fit import fit, fit_leaderboard
from leaderboard.live.policy import build_snapshot
from leaderboard.live.view_fit import LiveVotes, fit_view
from leaderboard.models.base import Estimate, RatingModel, VoteData
from leaderboard.models.pairwise import BradleyTerry
from leaderboard.models.sandwich import Z_95
from leaderboard.models.scale import ELO_PER_NAT
from leaderboard.resampling.bootstrap import bootstrap_thetas, fit_replicates
from leaderboard.resampling.bootstrap_refit import refit_replicates
from tests.helpers import make_vote

STRENGTH = {"alpha": 0.6, "beta": 0.2, "gamma": -0.1, "delta": -0.7}


def simulated_counts(n_votes: int, seed: int) -> PairCounts:
    rng = np.random.default_rng(seed)
    names = list(STRENGTH)
    rows = []
    for _ in range(n_votes):
        a, b = rng.choice(len(names), size=2, replace=False)
        p = 1 / (1 + np.exp(STRENGTH[names[b]] - STRENGTH[names[a]]))
        u = rng.random()
        rows.append((names[a], names[b], "tie" if u < 0.1 else "model_a" if u < 0.1 + 0.9 * p else "model_b"))
    return PairCounts.from_frame(pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]))


class KnownAnswer(RatingModel):
    """A model whose estimate and covariance are given: what fit() adds is all there is to check."""

    name = "known"
    interval_methods = ("sandwich", "none")

    def estimate(self, data, *, warm_start=None):
        theta = np.array([-0.5, 0.0, 0.5])
        return Estimate(models=["a", "b", "c"], theta=theta, params=theta, votes=np.array([10, 12, 14]), n_votes=18,
                        solution=SimpleNamespace(iterations=3, max_abs_gradient=1e-9), details={"prior": 0.5})

    def covariance(self, estimate, *, robust):
        return np.diag([0.04, 0.01, 0.09]) if robust else np.diag([0.01, 0.01, 0.01])


def test_fit_puts_any_model_on_the_reporting_scale_with_its_intervals():
    result = fit(KnownAnswer(), VoteData())
    np.testing.assert_allclose(result.rating, 1000 + ELO_PER_NAT * np.array([-0.5, 0.0, 0.5]))
    np.testing.assert_allclose(result.upper - result.rating, Z_95 * ELO_PER_NAT * np.array([0.2, 0.1, 0.3]))
    # ranks from the intervals: only c is clearly above a
    assert list(result.rank) == [2, 1, 1] and result.method == "known+sandwich"
    assert result.settings["prior"] == 0.5 and result.settings["newton_iterations"] == 3
    assert result.settings["ci"] == "sandwich" and result.settings["anchor"] is None

    anchored = fit(KnownAnswer(), VoteData(), anchor=("b", 1200.0))
    assert anchored.rating[1] == pytest.approx(1200.0) and anchored.rating[2] == pytest.approx(1200 + 0.5 * ELO_PER_NAT)
    # c's interval is that of theta_c - theta_b: variances 0.09 + 0.01
    assert anchored.upper[2] - anchored.rating[2] == pytest.approx(Z_95 * ELO_PER_NAT * np.sqrt(0.10))

    bare = fit(KnownAnswer(), VoteData(), ci="none")
    assert not bare.has_intervals and bare.covariance[0, 0] == 0.01  # the model-based covariance
    with pytest.raises(ValueError, match="ci must be one of"):
        fit(KnownAnswer(), VoteData(), ci="bootstrap")
    with pytest.raises(ValueError, match="anchor must be"):
        fit(KnownAnswer(), VoteData(), anchor=("zeta", 1000.0))


def test_fit_of_bradley_terry_is_fit_leaderboard():
    counts = simulated_counts(600, seed=1)
    direct = fit(BradleyTerry(alpha=0.01), VoteData(pairs=counts), anchor=("beta", 1100.0))
    wrapped = fit_leaderboard(counts, alpha=0.01, anchor=("beta", 1100.0))
    assert direct.models == wrapped.models and direct.method == wrapped.method == "bradley-terry+sandwich"
    for field in ("theta", "covariance", "rating", "lower", "upper", "rank"):
        np.testing.assert_array_equal(getattr(direct, field), getattr(wrapped, field))
    assert direct.settings == wrapped.settings


def test_an_exact_refit_solves_the_replicate_the_batched_bootstrap_solves():
    counts = simulated_counts(800, seed=2)
    model = BradleyTerry()
    estimate = model.estimate(VoteData(pairs=counts))
    arrays = estimate.work
    draws = model.resample(estimate, np.random.default_rng(3), 6)
    wins = np.array([wins_i + 0.5 * ties for wins_i, _, ties in draws])
    totals = np.array([wins_i + wins_j + ties for wins_i, wins_j, ties in draws])
    batched = fit_replicates(estimate.theta, arrays, wins, totals)
    exact = np.array([model.refit(estimate, draw) for draw in draws])
    np.testing.assert_allclose(exact, batched, atol=1e-5)
    assert np.abs(exact - estimate.theta).max() > 1e-3  # the resamples moved the estimate


def test_the_refit_bootstrap_takes_any_model_and_agrees_with_the_batched_one():
    counts = simulated_counts(1500, seed=4)
    model = BradleyTerry()
    estimate = model.estimate(VoteData(pairs=counts))
    refits = refit_replicates(model, estimate, n_bootstrap=300, seed=5)
    batched = bootstrap_thetas(estimate.theta, estimate.work, n_bootstrap=300, seed=5)
    assert refits.shape == batched.shape == (300, 4)
    sandwich_sd = np.sqrt(np.diag(model.covariance(estimate, robust=True)))
    for replicates in (refits, batched):
        np.testing.assert_allclose(replicates.std(axis=0, ddof=1), sandwich_sd, rtol=0.2)
        np.testing.assert_allclose(replicates.mean(axis=0), estimate.theta, atol=2.5 * sandwich_sd.max() / np.sqrt(30))
    again = refit_replicates(model, estimate, n_bootstrap=300, seed=5)
    np.testing.assert_array_equal(refits, again)  # seeded: the same replicates


def test_the_live_snapshot_and_the_overall_view_are_one_fit():
    rng = np.random.default_rng(6)
    names = list(STRENGTH)
    events = []
    for k in range(80):
        a, b = rng.choice(len(names), size=2, replace=False)
        events.append(make_vote(names[a], names[b], "model_a" if rng.random() < 0.6 else "model_b",
                                voted_at=1_700_000_000.0 + k))
    events.append(make_vote(ranking=[["alpha"], ["gamma", "delta"], ["beta"]]))
    live = LiveVotes.from_events(events)
    view = fit_view(live)
    snapshot = build_snapshot(live.overall, now=1.0)
    assert view.fitted and snapshot.method == view.result.method == "plackett-luce+sandwich"
    assert snapshot.note == view.note and "1 K-wise vote(s)" in view.note
    assert [row.model for row in snapshot.rows] == [row["model"] for row in view.result.rows()]
    assert [row.rating for row in snapshot.rows] == [row["rating"] for row in view.result.rows()]

    few = LiveVotes.from_events(events[:5])
    assert not fit_view(few).fitted and build_snapshot(few.overall).method == "elo"
