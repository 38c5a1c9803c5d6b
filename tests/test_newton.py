"""The one Newton solver: every fit ends with max |gradient| below 1e-8 (docs/researchers.md's promise),
checked against gradients computed independently of the package's derivative code (complex-step
differentiation of the log-likelihood written out per vote), and the solver's own contract."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from leaderboard.data.counts import PairCounts
from leaderboard.data.events import STYLE_COLUMNS
from leaderboard.fit import fit_leaderboard, fit_plackett_luce, fit_style_control
from leaderboard.models.bradley_terry import bradley_terry
from leaderboard.models.optim import GRADIENT_TOL, ConvergenceError, newton_ascent
from leaderboard.models.style_control import style_covariates

STEP = 1e-30  # complex step: f'(x) = Im f(x + i h) / h, exact to rounding for any small h


def complex_step_gradient(log_likelihood, params: np.ndarray) -> np.ndarray:
    """Gradient of a real-analytic function written with numpy operations that accept complex input."""
    return np.array([log_likelihood(params + 1j * STEP * unit).imag / STEP for unit in np.eye(len(params))])


def log_sigmoid(x):
    return -np.log(1.0 + np.exp(-x))


def pairwise_votes(n_votes: int, seed: int, strengths=(0.8, 0.3, 0.0, -0.2, -0.9), tie_share=0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strengths = np.asarray(strengths)
    n_models = len(strengths)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p_a = 1.0 / (1.0 + np.exp(strengths[b] - strengths[a]))
    winner = np.where(rng.random(n_votes) < tie_share, "tie", np.where(rng.random(n_votes) < p_a, "model_a", "model_b"))
    names = np.array([f"m{k}" for k in range(n_models)], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})
    for feature in STYLE_COLUMNS:
        frame[f"{feature}_a"] = rng.poisson(5, n_votes)
        frame[f"{feature}_b"] = rng.poisson(5, n_votes)
    return frame


def vote_codes(frame: pd.DataFrame, models: list[str]):
    index = {name: k for k, name in enumerate(models)}
    first = frame["model_a"].map(index).to_numpy()
    second = frame["model_b"].map(index).to_numpy()
    score_a = frame["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}).to_numpy()
    return first, second, score_a


def half_tie_gradient(frame, result, alpha):
    first, second, score_a = vote_codes(frame, result.models)

    def log_likelihood(theta):
        margin = theta[first] - theta[second]
        return (np.sum(score_a * log_sigmoid(margin) + (1.0 - score_a) * log_sigmoid(-margin))
                - 0.5 * alpha * theta @ theta)

    return complex_step_gradient(log_likelihood, result.theta)


def davidson_gradient(frame, result):
    first, second, score_a = vote_codes(frame, result.models)
    n_models = len(result.models)

    def log_likelihood(params):
        theta, log_nu = params[:n_models], params[n_models]
        half = 0.5 * (theta[first] - theta[second])
        log_total = np.log(np.exp(half) + np.exp(-half) + np.exp(log_nu))
        per_vote = np.where(score_a == 1.0, half, np.where(score_a == 0.0, -half, log_nu)) - log_total
        return np.sum(per_vote)

    return complex_step_gradient(log_likelihood, np.append(result.theta, np.log(result.settings["davidson_nu"])))


def style_gradient(frame, result):
    first, second, score_a = vote_codes(frame, result.models)
    covariates = style_covariates(frame)
    n_models = len(result.models)
    alpha_covariates = result.settings["alpha_covariates"]
    beta = np.array([result.style_coefficients[name] for name in STYLE_COLUMNS])

    def log_likelihood(params):
        theta, coefficients = params[:n_models], params[n_models:]
        margin = theta[first] - theta[second] + covariates @ coefficients
        return (np.sum(score_a * log_sigmoid(margin) + (1.0 - score_a) * log_sigmoid(-margin))
                - 0.5 * alpha_covariates * coefficients @ coefficients)

    return complex_step_gradient(log_likelihood, np.append(result.theta, beta))


def tied_rankings(n_rankings: int, seed: int, k: int = 4) -> list[list[list[str]]]:
    """K-way rankings by name; about one in three ties its middle two items."""
    rng = np.random.default_rng(seed)
    strengths = np.array([0.9, 0.4, 0.1, -0.1, -0.5, -0.8])
    names = [f"m{i}" for i in range(len(strengths))]
    rankings = []
    for _ in range(n_rankings):
        items = rng.choice(len(strengths), size=k, replace=False)
        order = items[np.argsort(-(strengths[items] + rng.gumbel(size=k)))]
        groups = [[names[i]] for i in order]
        if rng.random() < 1 / 3:
            groups[1:3] = [groups[1] + groups[2]]
        rankings.append(groups)
    return rankings


def plackett_luce_gradient(rankings, result):
    """A tie's log-likelihood is the mean over the strict orders of its tied groups (the package's reading)."""
    index = {name: k for k, name in enumerate(result.models)}
    strict_orders = []  # (item indices best first, weight) for every strict completion of every ranking
    for ranking in rankings:
        completions = list(itertools.product(*(itertools.permutations(group) for group in ranking)))
        for completion in completions:
            strict_orders.append(([index[name] for group in completion for name in group], 1.0 / len(completions)))

    def log_likelihood(theta):
        total = 0.0
        for order, weight in strict_orders:
            strengths = theta[order]
            # log P(order) = sum over picks of strength of the pick - log sum exp over the rest
            total += weight * sum(strengths[p] - np.log(np.sum(np.exp(strengths[p:]))) for p in range(len(order) - 1))
        return total

    return complex_step_gradient(log_likelihood, result.theta)


def case_half_ties():
    frame = pairwise_votes(6000, seed=1)
    return fit_leaderboard(PairCounts.from_frame(frame)), lambda result: half_tie_gradient(frame, result, 0.0)


def case_half_ties_with_prior():
    frame = pairwise_votes(3000, seed=2)
    return (fit_leaderboard(PairCounts.from_frame(frame), alpha=0.5),
            lambda result: half_tie_gradient(frame, result, 0.5))


def case_davidson():
    frame = pairwise_votes(6000, seed=3, tie_share=0.3)
    return (fit_leaderboard(PairCounts.from_frame(frame), ties="davidson"),
            lambda result: davidson_gradient(frame, result))


def case_style_control():
    frame = pairwise_votes(20000, seed=4)
    return fit_style_control(frame), lambda result: style_gradient(frame, result)


def case_plackett_luce_with_ties():
    rankings = tied_rankings(600, seed=5)
    return fit_plackett_luce(rankings), lambda result: plackett_luce_gradient(rankings, result)


@pytest.mark.parametrize("case", [case_half_ties, case_half_ties_with_prior, case_davidson, case_style_control,
                                  case_plackett_luce_with_ties])
def test_every_fit_ends_with_its_gradient_below_1e_8(case):
    result, independent_gradient = case()
    assert result.settings["max_abs_gradient"] < 1e-8
    assert result.settings["newton_iterations"] >= 1
    assert np.max(np.abs(independent_gradient(result))) < 1e-8


def test_the_check_would_catch_a_fit_stopped_early():
    # the same check at a point one Newton step short of the optimum fails by orders of magnitude
    frame = pairwise_votes(6000, seed=1)
    result = fit_leaderboard(PairCounts.from_frame(frame))
    result.theta = result.theta + 1e-6 * np.array([1.0, -1.0, 0.5, 0.0, -0.5])
    assert np.max(np.abs(half_tie_gradient(frame, result, 0.0))) > 1e-4


def test_the_solver_stops_on_the_gradient_and_keeps_strengths_at_mean_zero():
    # concave quadratic in differences plus a free coordinate: maximiser known in closed form
    target = np.array([1.0, -0.5, -0.5])

    def evaluate(params, derivatives):
        theta, free = params[:3], params[3]
        centred = theta - theta.mean()
        value = -0.5 * np.sum((centred - target) ** 2) - 2.0 * (free - 3.0) ** 2
        if not derivatives:
            return value
        gradient = np.append(-(centred - target), -4.0 * (free - 3.0))
        information = np.diag([1.0, 1.0, 1.0, 4.0])
        information[:3, :3] -= 1.0 / 3.0
        return value, gradient, information

    solution = newton_ascent(evaluate, np.array([5.0, 5.0, 7.0, 0.0]), n_centred=3)
    np.testing.assert_allclose(solution.params, [1.0, -0.5, -0.5, 3.0], atol=1e-12)
    assert solution.iterations == 1 and solution.max_abs_gradient <= GRADIENT_TOL


def test_too_few_iterations_raise_a_convergence_error_naming_the_fit():
    counts = PairCounts.from_frame(pairwise_votes(2000, seed=6, strengths=(3.0, 0.0, -3.0)))
    arrays = counts.arrays()
    wins = arrays.weight[:, 0] + 0.5 * arrays.weight[:, 2]
    with pytest.raises(ConvergenceError, match="Bradley-Terry fit: Newton's method stopped after 1 iterations"):
        bradley_terry(counts.n_models, arrays.pair_i, arrays.pair_j, wins, arrays.weight.sum(axis=1), max_iter=1)
