"""The joint fit of pair counts and K-wise rankings: the same answer as Plackett-Luce on every
vote written as a ranking, with or without the compiled-rankings cache of a growing list."""

from __future__ import annotations

import numpy as np
import pytest

from leaderboard.data.counts import PairCounts
from leaderboard.fit import fit_joint_plackett_luce, fit_plackett_luce

MODELS = [f"m{k}" for k in range(6)]


def votes(seed, n_pairwise=300, n_kwise=60):
    rng = np.random.default_rng(seed)
    strength = np.linspace(1, -1, len(MODELS))
    pairwise, rankings = [], []
    for _ in range(n_pairwise):
        i, j = rng.choice(len(MODELS), 2, replace=False)
        u = rng.random()
        a_wins = rng.random() < 1 / (1 + np.exp(strength[j] - strength[i]))
        outcome = "tie" if u < 0.15 else ("model_a" if a_wins else "model_b")
        pairwise.append((MODELS[i], MODELS[j], outcome))
    for k in range(n_kwise):
        picked = rng.choice(len(MODELS), 3 + k % 2, replace=False)
        order = sorted(picked, key=lambda m: -(strength[m] + rng.gumbel()))
        ranking = [[MODELS[m]] for m in order]
        if k % 5 == 0:  # a tie in some of them: two shapes of each size
            ranking = [ranking[0] + ranking[1]] + ranking[2:]
        rankings.append(ranking)
    return pairwise, rankings


def as_rankings(pairwise):
    return [[[a], [b]] if w == "model_a" else [[b], [a]] if w == "model_b" else [[a, b]] for a, b, w in pairwise]


def test_joint_fit_equals_plackett_luce_of_every_vote_and_the_cache_changes_nothing():
    pairwise, rankings = votes(1)
    counts = PairCounts.empty()
    cache: dict = {}
    for stop in (20, 45, 60):  # the K-wise list grows between fits, as in the worker
        counts = PairCounts.empty()
        for a, b, w in pairwise:
            counts.add(a, b, w)
        cached = fit_joint_plackett_luce(counts, rankings[:stop], alpha=0.01, design_cache=cache)
        fresh = fit_joint_plackett_luce(counts, rankings[:stop], alpha=0.01)
        reference = fit_plackett_luce(as_rankings(pairwise) + rankings[:stop], alpha=0.01)
        assert cached.models == fresh.models == reference.models
        np.testing.assert_allclose(cached.theta, reference.theta, atol=1e-10)
        np.testing.assert_allclose(fresh.theta, reference.theta, atol=1e-10)
        np.testing.assert_allclose(cached.covariance, reference.covariance, rtol=1e-9, atol=1e-12)
        assert list(cached.votes) == list(reference.votes) and cached.n_votes == reference.n_votes
    assert cache["design"].n_rankings == 60


def test_a_new_model_in_a_later_ranking_recompiles():
    pairwise, rankings = votes(2)
    counts = PairCounts.empty()
    for a, b, w in pairwise:
        counts.add(a, b, w)
    cache: dict = {}
    fit_joint_plackett_luce(counts, rankings, alpha=0.01, design_cache=cache)
    grown = rankings + [[["newcomer"], ["m0"], ["m1"]], [["m2"], ["newcomer"]]]
    cached = fit_joint_plackett_luce(counts, grown, alpha=0.01, design_cache=cache)
    reference = fit_plackett_luce(as_rankings(pairwise) + grown, alpha=0.01)
    assert "newcomer" in cached.models
    np.testing.assert_allclose(cached.theta, reference.theta, atol=1e-10)


def test_the_joint_fit_needs_a_prior():
    with pytest.raises(ValueError, match="alpha > 0"):
        fit_joint_plackett_luce(PairCounts.empty(), [[["a"], ["b"]]], alpha=0.0)


def test_ranking_weights_act_as_sampling_weights():
    """A down-weighted voter's rankings (leaderboard.worker.voters) count as fit_plackett_luce's weights do."""
    pairwise, rankings = votes(3)
    counts = PairCounts.empty()
    for a, b, w in pairwise:
        counts.add(a, b, w)
    weights = [0.25 if k % 3 == 0 else 1.0 for k in range(len(rankings))]
    joint = fit_joint_plackett_luce(counts, rankings, alpha=0.01, ranking_weights=weights)
    reference = fit_plackett_luce(as_rankings(pairwise) + rankings, alpha=0.01,
                                  weights=[1.0] * len(pairwise) + weights)
    np.testing.assert_allclose(joint.theta, reference.theta, atol=1e-10)
    np.testing.assert_allclose(joint.covariance, reference.covariance, rtol=1e-9, atol=1e-12)
