"""The leaderboard figures are Plotly JSON built by hand (for speed): every one must pass Plotly's
own schema, carry the numbers it claims, and survive JSON (no NaN)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from arena.web import board_data as data
from arena.web import leaderboard_figures as figures
from leaderboard.views.published import RatingPoint
from tests.helpers import make_view

RATINGS = {"a": 1100.0, "b": 1000.0, "c": 900.0}


def validated(figure: dict) -> go.Figure:
    """Plotly's graph objects raise ValueError on any property its schema does not know."""
    json.loads(figures.as_plot(figure).plot)  # strict JSON: a NaN would raise in as_plot
    return go.Figure(figure)


@pytest.fixture
def view():
    return make_view("overall+style", RATINGS, battles_per_pair=10, generated_at=1_700_000_000.0)


def test_every_figure_passes_plotlys_schema(view):
    snapshot, stats = view
    models = [row.model for row in snapshot.rows] + ["unplayed"]
    observed, battles = data.observed_win_rates(stats, models)
    history = [RatingPoint(generated_at=1_700_000_000.0 + 60 * k, total_votes=k, ratings=RATINGS) for k in range(3)]
    built = [
        figures.ratings_figure(snapshot.rows),
        figures.matrix_figure(observed, models, kind="win rate", battles=battles),
        figures.matrix_figure(battles, models, kind="battles"),
        figures.matrix_figure(data.predicted_win_rates(snapshot, models), models, kind="win rate"),
        figures.history_figure(history, ["a", "c"]),
        figures.opponents_figure(["b", "c"], [0.6, 0.8], [10, 10]),
        figures.votes_over_time_figure(stats, "a"),
        figures.empty_figure("nothing yet"),
    ]
    for figure in built:
        validated(figure)


def test_ratings_whiskers_are_the_asymmetric_interval(view):
    snapshot, _ = view
    figure = validated(figures.ratings_figure(snapshot.rows))
    trace = figure.data[0]
    best = snapshot.rows[0]
    assert trace.y[-1] == best.model  # best on top
    assert trace.error_x.array[-1] == pytest.approx(best.upper - best.rating)
    assert trace.error_x.arrayminus[-1] == pytest.approx(best.rating - best.lower)
    assert trace.error_x.array[-1] > trace.error_x.arrayminus[-1]


def test_matrix_cells(view):
    snapshot, stats = view
    models = ["a", "b", "unplayed"]
    observed, battles = data.observed_win_rates(stats, models)
    figure = validated(figures.matrix_figure(observed, models, kind="win rate", battles=battles))
    z = figure.data[0].z
    assert z[0][0] is None and z[2][0] is None  # the diagonal and a pair never played are blank
    assert z[0][1] == pytest.approx(observed[0, 1]) and z[0][1] + z[1][0] == pytest.approx(1.0)
    assert figure.data[0].text[0][1] == f"{observed[0, 1]:.0%}"
    many = [f"m{i}" for i in range(figures.LABELLED_CELLS + 1)]
    assert go.Figure(figures.matrix_figure(np.zeros((len(many), len(many))), many, kind="battles")).data[0].text is None
