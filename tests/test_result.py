"""The one rating result: no intervals, the method vocabulary, and the Snapshot rendering."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from leaderboard.data.counts import PairCounts
from leaderboard.fit import fit_leaderboard
from leaderboard.models.result import (
    BOOTSTRAP,
    BRADLEY_TERRY,
    ELO,
    FISHER,
    PLACKETT_LUCE,
    SANDWICH,
    RatingResult,
    elo_result,
    method_name,
)
from leaderboard.models.scale import ELO_PER_NAT
from leaderboard.views.snapshot import Snapshot


def cycle_counts(repeats: int = 10) -> PairCounts:
    votes = [("a", "b", "model_a"), ("b", "c", "model_a"), ("c", "a", "model_a"), ("a", "b", "tie"),
             ("b", "a", "model_a"), ("a", "c", "model_a")] * repeats
    return PairCounts.from_frame(pd.DataFrame(votes, columns=["model_a", "model_b", "winner"]))


def test_method_names_are_spelled_one_way():
    assert method_name(BRADLEY_TERRY, SANDWICH) == "bradley-terry+sandwich"
    assert method_name(BRADLEY_TERRY, FISHER, style_control=True) == "bradley-terry+style-control+fisher"
    assert method_name(PLACKETT_LUCE, BOOTSTRAP) == "plackett-luce+bootstrap"
    assert method_name(BRADLEY_TERRY) == "bradley-terry" and ELO == "elo"


def test_no_intervals_means_point_bounds_and_point_ranks_and_survives_replace():
    counts = cycle_counts()
    point = fit_leaderboard(counts, ci="none")
    assert not point.has_intervals and point.method == "bradley-terry"
    np.testing.assert_array_equal(point.lower, point.rating)
    np.testing.assert_array_equal(point.upper, point.rating)
    # point intervals: every model is confidently ordered, rank = 1 + number rated higher
    np.testing.assert_array_equal(point.rank, 1 + np.argsort(np.argsort(-point.rating)))
    np.testing.assert_array_equal(point.rank, point.rank_lower)
    copied = replace(point, settings={"extra": 1})
    assert not copied.has_intervals and copied.settings == {"extra": 1}
    np.testing.assert_array_equal(copied.rank, point.rank)

    fitted = fit_leaderboard(counts)
    assert fitted.has_intervals and np.all(fitted.lower < fitted.rating) and np.all(fitted.rating < fitted.upper)
    np.testing.assert_allclose(fitted.theta, point.theta, atol=1e-12)
    with pytest.raises(ValueError, match="both lower and upper"):
        RatingResult(models=["a"], theta=np.zeros(1), covariance=np.zeros((1, 1)), rating=np.full(1, 1000.0),
                     votes=np.ones(1), n_votes=1, method=ELO, lower=np.full(1, 990.0))


def test_the_snapshot_is_the_result_rendered():
    result = fit_leaderboard(cycle_counts())
    snapshot = result.to_snapshot(generated_at=123.5, note="a note")
    assert isinstance(snapshot, Snapshot)
    assert (snapshot.generated_at, snapshot.total_votes, snapshot.method, snapshot.note) == (
        123.5, 60, "bradley-terry+sandwich", "a note")
    assert snapshot.models == result.models
    np.testing.assert_array_equal(snapshot.theta, result.theta)
    np.testing.assert_array_equal(snapshot.covariance, result.covariance)
    assert [row.model_dump() for row in snapshot.rows] == result.rows()
    assert Snapshot.model_validate_json(snapshot.model_dump_json()) == snapshot


def test_elo_result_has_rough_bounds_only_when_asked():
    ratings = {"b": 1010.0, "a": 990.0}
    votes = {"a": 4, "b": 4}
    rough = elo_result(ratings, votes, 4, rough_intervals=True, alpha=0.01)
    assert rough.models == ["a", "b"] and rough.method == ELO and rough.has_intervals
    variance = 1.0 / (4 / 4 + 0.01)
    np.testing.assert_allclose(rough.upper - rough.rating, 1.959963984540054 * ELO_PER_NAT * np.sqrt(variance))
    np.testing.assert_allclose(rough.covariance, np.diag([variance, variance]))
    np.testing.assert_allclose(rough.theta, (rough.rating - 1000.0) / ELO_PER_NAT)
    plain = elo_result(ratings, votes, 4, anchor=("a", 1200.0))
    assert not plain.has_intervals
    np.testing.assert_allclose(plain.rating, [1200.0, 1220.0])
    np.testing.assert_allclose(plain.theta, rough.theta)  # the anchor moves the display, not the strengths
    with pytest.raises(ValueError, match="anchor model 'zeta' is not among the rated models"):
        elo_result(ratings, votes, 4, anchor=("zeta", 1000.0))
