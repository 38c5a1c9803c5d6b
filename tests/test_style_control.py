"""Style control against known truth: simulated length effects, an independent logistic fit, and
the plain Bradley-Terry fit when style has no effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from leaderboard.data.counts import PairCounts
from leaderboard.data.events import STYLE_COLUMNS, UnknownOutcomeError
from leaderboard.fit import fit_leaderboard, fit_style_control
from leaderboard.models.style_control import StyleDataError, style_covariates


def random_battles(rng, names, n_votes, *, length_of=None):
    """Random pairs with style counts; ``length_of`` maps a model index to its typical token count."""
    n_models = len(names)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    typical = np.full(n_models, 400.0) if length_of is None else np.asarray(length_of, dtype=float)
    frame = pd.DataFrame({
        "model_a": names[a], "model_b": names[b],
        "tokens_a": np.round(typical[a] * rng.lognormal(0.0, 0.5, n_votes)),
        "tokens_b": np.round(typical[b] * rng.lognormal(0.0, 0.5, n_votes)),
    })
    for feature, mean in (("headers", 1.0), ("lists", 2.0), ("bold", 1.5)):
        frame[f"{feature}_a"] = rng.poisson(mean, n_votes)
        frame[f"{feature}_b"] = rng.poisson(mean, n_votes)
    return frame, a, b


def draw_winners(rng, margin):
    return np.where(rng.random(len(margin)) < 1.0 / (1.0 + np.exp(-margin)), "model_a", "model_b")


def test_covariates_follow_the_documented_normalisation():
    frame = pd.DataFrame({
        "tokens_a": [10, 30], "tokens_b": [30, 10], "headers_a": [0, 0], "headers_b": [0, 0],
        "lists_a": [3, 0], "lists_b": [0, 0], "bold_a": [1, 2], "bold_b": [1, 0],
    })
    x = style_covariates(frame)
    # tokens: d = -20/41 and +20/41, z-scored -> -1, +1; headers constant -> 0
    np.testing.assert_allclose(x[:, 0], [-1.0, 1.0])
    np.testing.assert_allclose(x[:, 1], [0.0, 0.0])
    # lists: d = 3/4 and 0 -> mean 3/8, std 3/8 -> +1, -1; bold: d = 0 and 2/3 -> -1, +1
    np.testing.assert_allclose(x[:, 2], [1.0, -1.0])
    np.testing.assert_allclose(x[:, 3], [-1.0, 1.0])
    assert STYLE_COLUMNS == ("tokens", "headers", "lists", "bold")


def test_recovers_a_known_length_effect():
    rng = np.random.default_rng(0)
    names = np.array([f"model-{i}" for i in range(8)])
    strengths = np.linspace(-0.8, 0.8, 8)
    frame, a, b = random_battles(rng, names, 20000)
    x = style_covariates(frame)
    true_beta = np.array([0.4, 0.0, -0.15, 0.0])
    frame["winner"] = draw_winners(rng, strengths[a] - strengths[b] + x @ true_beta)
    fit = fit_style_control(frame)
    for k, feature in enumerate(STYLE_COLUMNS):
        assert abs(fit.style_coefficients[feature] - true_beta[k]) < 1.96 * fit.style_coefficient_se[feature], feature
    assert fit.style_coefficient_se["tokens"] < 0.05
    order = [fit.models.index(n) for n in names]
    np.testing.assert_allclose(fit.theta[order], strengths, atol=0.1)
    # the model is true and unweighted: robust and model-based errors agree
    fisher = fit_style_control(frame, ci="fisher")
    for feature in STYLE_COLUMNS:
        assert fisher.style_coefficient_se[feature] == pytest.approx(fit.style_coefficient_se[feature], rel=0.1)
    np.testing.assert_allclose(np.sqrt(np.diag(fisher.covariance)), np.sqrt(np.diag(fit.covariance)), rtol=0.1)


def test_style_balanced_within_every_outcome_gives_plain_bradley_terry_exactly():
    # each vote appears twice with the two answers' styles swapped: the style score is then
    # exactly zero at beta = 0, so the joint MLE is (plain Bradley-Terry theta, beta = 0)
    rng = np.random.default_rng(1)
    names = np.array(["a", "b", "c", "d", "e"])
    frame, a, b = random_battles(rng, names, 1500)
    frame["winner"] = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], len(frame), p=[0.4, 0.35, 0.2, 0.05])
    swapped = frame.copy()
    for feature in STYLE_COLUMNS:
        swapped[f"{feature}_a"], swapped[f"{feature}_b"] = frame[f"{feature}_b"], frame[f"{feature}_a"]
    both = pd.concat([frame, swapped], ignore_index=True)
    fit = fit_style_control(both)
    assert max(abs(v) for v in fit.style_coefficients.values()) < 1e-9
    plain = fit_leaderboard(PairCounts.from_frame(both))
    assert fit.models == plain.models
    np.testing.assert_allclose(fit.theta, plain.theta, atol=1e-9)
    np.testing.assert_allclose(fit.rating, fit.rating_without_style, atol=1e-6)
    assert set(fit.rank_change.values()) == {0}


def test_no_style_effect_leaves_ratings_close_to_plain_bradley_terry():
    rng = np.random.default_rng(2)
    names = np.array([f"m{i}" for i in range(6)])
    strengths = np.array([0.6, 0.3, 0.1, -0.1, -0.3, -0.6])
    frame, a, b = random_battles(rng, names, 8000)
    frame["winner"] = draw_winners(rng, strengths[a] - strengths[b])
    fit = fit_style_control(frame)
    for feature in STYLE_COLUMNS:
        assert abs(fit.style_coefficients[feature]) < 3.0 * fit.style_coefficient_se[feature], feature
    half_width = (fit.upper - fit.lower) / 2
    assert np.all(np.abs(fit.rating - fit.rating_without_style) < 0.2 * half_width)


def test_a_model_that_wins_by_length_alone_drops_under_style_control():
    rng = np.random.default_rng(3)
    names = np.array(["verbose", "m1", "m2", "m3", "m4", "m5"])
    strengths = np.array([-0.2, 0.5, 0.3, 0.1, -0.1, -0.3])
    typical_tokens = np.array([1600.0, 400, 400, 400, 400, 400])
    frame, a, b = random_battles(rng, names, 30000, length_of=typical_tokens)
    x = style_covariates(frame)
    frame["winner"] = draw_winners(rng, strengths[a] - strengths[b] + 0.8 * x[:, 0])
    fit = fit_style_control(frame)
    verbose = fit.models.index("verbose")
    plain_rank = np.argsort(np.argsort(-fit.rating_without_style))[verbose] + 1
    assert plain_rank == 1  # length alone makes it look best
    assert fit.rank_change["verbose"] <= -3  # confidently behind m1, m2, m3 once style is controlled
    assert fit.rating[verbose] < fit.rating_without_style[verbose] - 50
    assert abs(fit.style_coefficients["tokens"] - 0.8) < 1.96 * fit.style_coefficient_se["tokens"]
    # the others' order is the true order
    others = [fit.models.index(n) for n in names[1:]]
    assert list(np.argsort(-fit.rating[others])) == [0, 1, 2, 3, 4]


def test_exact_fit_matches_an_independent_weighted_logistic_fit_with_ties():
    rng = np.random.default_rng(4)
    names = np.array(["p", "q", "r", "s"])
    frame, a, b = random_battles(rng, names, 3000)
    x = style_covariates(frame)
    margin = np.array([0.3, 0.0, -0.2, -0.1])[a] - np.array([0.3, 0.0, -0.2, -0.1])[b] + 0.3 * x[:, 0]
    frame["winner"] = np.where(rng.random(3000) < 0.1, "tie", draw_winners(rng, margin))
    weights = rng.uniform(0.5, 3.0, 3000)
    alpha = 2.0
    fit = fit_style_control(frame, weights=weights, alpha_covariates=alpha)

    codes_a = np.searchsorted(fit.models, frame["model_a"])
    codes_b = np.searchsorted(fit.models, frame["model_b"])
    score = frame["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}).to_numpy()

    def loss(params):
        theta, beta = params[:4], params[4:]
        m = theta[codes_a] - theta[codes_b] + x @ beta
        value = -(weights * (score * -np.logaddexp(0, -m) + (1 - score) * -np.logaddexp(0, m))).sum()
        return value + 0.5 * alpha * beta @ beta

    result = minimize(loss, np.zeros(8), method="BFGS", options={"gtol": 1e-9})
    theta = result.x[:4] - result.x[:4].mean()
    np.testing.assert_allclose(fit.theta, theta, atol=1e-5)
    np.testing.assert_allclose([fit.style_coefficients[f] for f in STYLE_COLUMNS], result.x[4:], atol=1e-5)
    assert fit.settings["max_abs_gradient"] < 1e-6


def test_dropping_ties_equals_fitting_the_decisive_votes():
    rng = np.random.default_rng(5)
    names = np.array(["a", "b", "c"])
    frame, a, b = random_battles(rng, names, 900)
    frame["winner"] = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], 900)
    dropped = fit_style_control(frame, ties="drop")
    decisive = fit_style_control(frame[frame["winner"].isin(["model_a", "model_b"])])
    np.testing.assert_allclose(dropped.theta, decisive.theta, atol=1e-10)
    assert dropped.style_coefficients == pytest.approx(decisive.style_coefficients, abs=1e-10)


def test_bad_input_gives_clear_errors():
    rng = np.random.default_rng(6)
    frame, _, _ = random_battles(rng, np.array(["a", "b", "c"]), 60)
    frame["winner"] = rng.choice(["model_a", "model_b"], 60)
    with pytest.raises(StyleDataError, match=r"missing \['bold_a', 'bold_b'\]"):
        fit_style_control(frame.drop(columns=["bold_a", "bold_b"]))
    broken = frame.copy()
    broken.loc[7, "tokens_b"] = np.nan
    with pytest.raises(StyleDataError, match=r"column 'tokens_b': row 7 has nan"):
        fit_style_control(broken)
    broken = frame.copy()
    broken.loc[3, "lists_a"] = -2
    with pytest.raises(StyleDataError, match=r"'lists_a': row 3"):
        style_covariates(broken)
    bad_outcome = frame.copy()
    bad_outcome.loc[0, "winner"] = "draw"
    with pytest.raises(UnknownOutcomeError, match="draw"):
        fit_style_control(bad_outcome)
    with pytest.raises(ValueError, match="ties must be 'half' or 'drop'"):
        fit_style_control(frame, ties="davidson")
    with pytest.raises(ValueError, match="weights must have one entry per vote"):
        fit_style_control(frame, weights=np.ones(3))
    with pytest.raises(ValueError, match="alpha_covariates must be"):
        fit_style_control(frame, alpha_covariates=-1.0)
