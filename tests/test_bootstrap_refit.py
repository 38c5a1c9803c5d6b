"""Bootstrap with Davidson ties and with style control (exact refits per replicate): the spread
matches the sandwich's on data simulated from the model, runaway models are marked, seeds repeat."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leaderboard.cli import main
from leaderboard.data.counts import PairCounts
from leaderboard.fit import fit_leaderboard, fit_style_control
from leaderboard.models.graph import runaway_limits

NAMES = np.array(["w", "x", "y", "z"], dtype=object)


def davidson_votes(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    theta, nu = np.array([-0.5, 0.0, 0.2, 0.6]), 0.6
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    strength_a, strength_b = np.exp(theta[a] / 2), np.exp(theta[b] / 2)
    tie = nu * np.sqrt(strength_a * strength_b)
    draw = rng.random(n) * (strength_a + strength_b + tie)
    winner = np.where(draw < strength_a, "model_a", np.where(draw < strength_a + strength_b, "model_b", "tie"))
    frame = pd.DataFrame({"model_a": NAMES[a], "model_b": NAMES[b], "winner": winner})
    for feature in ("tokens", "headers", "lists", "bold"):
        frame[f"{feature}_a"] = rng.poisson(5, n)
        frame[f"{feature}_b"] = rng.poisson(5, n)
    return frame


def half_widths(result) -> np.ndarray:
    return (result.upper - result.lower) / 2


def test_davidson_bootstrap_matches_its_sandwich_and_repeats_with_its_seed():
    counts = PairCounts.from_frame(davidson_votes())
    sandwich = fit_leaderboard(counts, ties="davidson")
    boot = fit_leaderboard(counts, ties="davidson", ci="bootstrap", n_bootstrap=400, seed=3)
    assert boot.method == "bradley-terry-davidson+bootstrap"
    np.testing.assert_allclose(boot.rating, sandwich.rating)  # the point estimate is the fit's
    np.testing.assert_allclose(half_widths(boot), half_widths(sandwich), rtol=0.2)
    again = fit_leaderboard(counts, ties="davidson", ci="bootstrap", n_bootstrap=400, seed=3)
    np.testing.assert_array_equal(again.lower, boot.lower)


def test_style_control_bootstrap_matches_its_sandwich():
    votes = davidson_votes(seed=1)
    sandwich = fit_style_control(votes)
    boot = fit_style_control(votes, ci="bootstrap", n_bootstrap=200, seed=2)
    assert boot.method == "bradley-terry+style-control+bootstrap"
    np.testing.assert_allclose(boot.rating, sandwich.rating)
    np.testing.assert_allclose(half_widths(boot), half_widths(sandwich), rtol=0.25)
    for feature, error in sandwich.style_coefficient_se.items():
        assert boot.style_coefficient_se[feature] == pytest.approx(error, rel=0.25)
    assert set(boot.rank_change) == set(boot.models)


def test_runaway_limits_mark_who_never_lost_and_who_never_won():
    # beat edges: 0 <-> 1 (a strong group), 2 -> 0 (2 never lost), 1 -> 3 (3 never won), 4 untouched
    sources, targets = np.array([0, 1, 2, 1]), np.array([1, 0, 0, 3])
    limits = runaway_limits(5, sources, targets)
    assert limits[0] == limits[1] == 0.0
    assert limits[2] == np.inf and limits[3] == -np.inf and np.isnan(limits[4])
    assert runaway_limits(2, np.array([0, 1]), np.array([1, 0])) is None


def test_cli_offers_bootstrap_with_davidson_and_style_control(tmp_path):
    path = tmp_path / "votes.parquet"
    davidson_votes(n=800).to_parquet(path)
    out = tmp_path / "board.json"
    for extra, method in ((["--ties", "davidson"], "bradley-terry-davidson+bootstrap"),
                          (["--style-control"], "bradley-terry+style-control+bootstrap")):
        assert main(["fit", str(path), "--quiet", "--bootstrap", "60", "--out", str(out), *extra]) == 0
        document = json.loads(out.read_text())
        assert document["method"] == method and document["settings"]["n_bootstrap"] == 60
        assert all(row["lower"] < row["rating"] < row["upper"] for row in document["models"])


def test_a_davidson_resample_where_a_model_never_loses_is_unbounded(tmp_path):
    rng = np.random.default_rng(9)
    base = davidson_votes(n=600, seed=4)
    # 'new' wins five and ties once: in many resamples it never drops a point
    extra = pd.DataFrame({"model_a": ["new"] * 7, "model_b": ["w", "x", "y", "z", "w", "x", "y"],
                          "winner": ["model_a"] * 5 + ["tie", "model_b"]})
    frame = pd.concat([base[["model_a", "model_b", "winner"]], extra], ignore_index=True)
    counts = PairCounts.from_frame(frame.sample(frac=1.0, random_state=int(rng.integers(1000))))
    boot = fit_leaderboard(counts, ties="davidson", ci="bootstrap", n_bootstrap=300, seed=1)
    new = boot.models.index("new")
    assert boot.upper[new] == np.inf and np.isfinite(boot.lower[new])
    assert "upper bound unbounded" in boot.row_notes["new"]
