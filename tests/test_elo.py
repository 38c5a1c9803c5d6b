"""Online Elo against hand-computed updates and its known invariances."""

from __future__ import annotations

import numpy as np
import pytest

from leaderboard.data.events import UnknownOutcomeError
from leaderboard.models.elo import OnlineElo, online_elo


def test_first_updates_match_hand_computation():
    elo = OnlineElo(k=32, initial=1500)
    # Equal ratings: expected score 0.5, so the winner gains k/2 = 16.
    elo.update("alpha", "beta", "model_a")
    assert elo.ratings() == pytest.approx({"alpha": 1516.0, "beta": 1484.0})
    # alpha (1516) vs gamma (1500), gamma wins: expected_alpha = 1 / (1 + 10 ** (-16 / 400)).
    elo.update("alpha", "gamma", "model_b")
    expected_alpha = 1.0 / (1.0 + 10.0 ** (-16.0 / 400.0))
    assert expected_alpha == pytest.approx(0.5230096, abs=1e-7)
    assert elo.ratings()["alpha"] == pytest.approx(1516.0 - 32 * expected_alpha)
    assert elo.ratings()["gamma"] == pytest.approx(1500.0 + 32 * expected_alpha)
    # A tie between beta (1484) and gamma: beta is the underdog, so it gains.
    before = elo.ratings()
    elo.update("beta", "gamma", "tie")
    expected_beta = 1.0 / (1.0 + 10.0 ** ((before["gamma"] - before["beta"]) / 400.0))
    assert elo.ratings()["beta"] == pytest.approx(before["beta"] + 32 * (0.5 - expected_beta))
    assert elo.votes() == {"alpha": 2, "beta": 2, "gamma": 2}


def test_each_update_is_zero_sum():
    rng = np.random.default_rng(1)
    names = [f"m{i}" for i in range(6)]
    outcomes = ["model_a", "model_b", "tie", "tie (bothbad)"]
    elo = OnlineElo(k=16)
    for _ in range(300):
        a, b = rng.choice(names, size=2, replace=False)
        before = sum(elo.ratings().get(n, 1000.0) for n in (a, b))
        elo.update(a, b, outcomes[rng.integers(4)])
        assert elo.ratings()[a] + elo.ratings()[b] == pytest.approx(before, abs=1e-9)
    assert np.mean(list(elo.ratings().values())) == pytest.approx(1000.0, abs=1e-9)


def test_k_zero_leaves_ratings_fixed():
    ratings = online_elo(["a", "b", "a"], ["b", "c", "c"], ["model_a", "model_a", "model_b"], k=0.0)
    assert ratings == {"a": 1000.0, "b": 1000.0, "c": 1000.0}


def test_swapping_sides_and_outcome_gives_the_same_ratings():
    rng = np.random.default_rng(2)
    n = 500
    a = rng.integers(0, 5, n)
    b = (a + rng.integers(1, 5, n)) % 5
    winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n)
    swapped_winner = np.select([winner == "model_a", winner == "model_b"], ["model_b", "model_a"], winner)
    names_a = np.array([f"m{i}" for i in a])
    names_b = np.array([f"m{i}" for i in b])
    forward = online_elo(names_a, names_b, winner, k=8)
    backward = online_elo(names_b, names_a, swapped_winner, k=8)
    assert forward == pytest.approx(backward, abs=1e-9)


def test_both_kinds_of_tie_are_half_a_win():
    tie = online_elo(["a", "a"], ["b", "c"], ["tie", "tie"], k=10)
    bothbad = online_elo(["a", "a"], ["b", "c"], ["tie (bothbad)", "tie (bothbad)"], k=10)
    assert tie == bothbad
    # Equal ratings and a tie: nobody moves on the first vote.
    assert online_elo(["a"], ["b"], ["tie"]) == {"a": 1000.0, "b": 1000.0}


def test_vectorised_equals_one_by_one():
    rng = np.random.default_rng(3)
    n = 2000
    names = np.array([f"model-{i}" for i in range(12)])
    a = rng.integers(0, 12, n)
    b = (a + rng.integers(1, 12, n)) % 12
    winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n, p=[0.4, 0.4, 0.15, 0.05])
    elo = OnlineElo(k=4)
    for i, j, w in zip(names[a], names[b], winner):
        elo.update(i, j, w)
    assert online_elo(names[a], names[b], winner, k=4) == pytest.approx(elo.ratings(), abs=1e-9)


def test_stronger_model_ends_higher():
    rng = np.random.default_rng(4)
    n = 5000
    a_wins = rng.random(n) < 0.75
    ratings = online_elo(["strong"] * n, ["weak"] * n, np.where(a_wins, "model_a", "model_b"), k=4)
    # The fixed point of Elo for a 75% win rate is 400 * log10(3) = 190.8 points apart.
    assert ratings["strong"] - ratings["weak"] == pytest.approx(190.8, abs=30)


def test_bad_input_gives_clear_errors():
    with pytest.raises(UnknownOutcomeError, match=r"vote 1: unknown outcome 'draw'"):
        online_elo(["a", "a"], ["b", "b"], ["model_a", "draw"])
    with pytest.raises(UnknownOutcomeError, match="unknown outcome 'A'"):
        OnlineElo().update("a", "b", "A")
    with pytest.raises(ValueError, match="same length"):
        online_elo(["a", "a"], ["b"], ["model_a", "model_a"])
    with pytest.raises(ValueError, match="two different models"):
        online_elo(["a"], ["a"], ["model_a"])
    with pytest.raises(ValueError, match=r"vote 1: a model name is missing"):
        online_elo(["a", None], ["b", "c"], ["model_a", "model_a"])
    with pytest.raises(ValueError, match="k must be"):
        OnlineElo(k=-1)
    with pytest.raises(ValueError, match="base must be"):
        online_elo(["a"], ["b"], ["tie"], base=1.0)
    # A rejected update leaves the ratings untouched.
    elo = OnlineElo()
    with pytest.raises(UnknownOutcomeError):
        elo.update("a", "b", "bad")
    assert elo.ratings() == {} and elo.votes() == {}


def test_empty_input_gives_no_ratings():
    assert online_elo([], [], []) == {}
