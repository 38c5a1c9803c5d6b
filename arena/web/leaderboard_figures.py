"""Plotly figures for the leaderboard tab: pure functions from published numbers to a figure.

A figure is built as Plotly's own JSON (a ``{"data": [...], "layout": {...}}`` dict) and handed to
gr.Plot as ``PlotData``: building ``plotly.graph_objects`` validates every property on the way in,
which cost 30-60 ms a figure, five figures a redraw, every open page. The tests check each figure
against Plotly's schema (``plotly.graph_objects.Figure(figure)`` raises on any unknown property).

Every figure sizes itself to its rows (Gradio's Plot makes Plotly responsive to the page's width),
carries no title of its own (the gr.Plot label names it) and keeps its margins small so it stays
readable on a 390 px phone.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence

import numpy as np
from gradio.components.plot import PlotData

from leaderboard.views.published import RatingPoint, ViewStats
from leaderboard.views.snapshot import SnapshotRow

ROW_PIXELS = 22  # height per model on a figure's model axis
# Cell labels are readable up to about this many models; beyond, the hover says the numbers.
LABELLED_CELLS = 12
MARGIN = {"l": 8, "r": 8, "t": 36, "b": 8}  # the top clears the gr.Plot label
BLUE = "#2563eb"
GRID = {"showgrid": True, "gridcolor": "#e5e7eb", "zeroline": False, "linecolor": "#d1d5db"}
# Margins sized from the labels here, not by Plotly's automargin: that redraws a figure again and
# again until its labels fit, the better part of a second per redraw for four 20-model figures.
LABEL_PIXELS_PER_CHARACTER = 7
LONGEST_LABEL_PIXELS = 180
# Red (loses) through white to blue (wins); white to dark blue for counts. Spelled out: Plotly's
# named scales run in opposite directions in Python and in the browser.
WIN_RATE_COLOURS = [[0.0, "#b2182b"], [0.5, "#f7f7f7"], [1.0, "#2166ac"]]
COUNT_COLOURS = [[0.0, "#f7fbff"], [1.0, "#08306b"]]
BOTTOM_AXIS_PIXELS = 44  # tick labels and an axis title below the plot
# A numeric y axis at the left: its tick labels (sized from the values) and its title beside them.
Y_TITLE_PIXELS = 26
# Tick labels as plain numbers: Plotly's default writes "1234" beside "1,234.5" on one axis.
NUMBER_TICKS = "~g"


def as_plot(figure: dict) -> PlotData:
    """What gr.Plot shows: the figure's JSON (NaN is not JSON: missing values must already be None)."""
    return PlotData(type="plotly", plot=json.dumps(figure, allow_nan=False))


def _cells(matrix) -> list[list[float | None]]:
    """A matrix as JSON rows, NaN as None (a gap Plotly leaves blank)."""
    return [[None if value is None or (isinstance(value, float) and math.isnan(value)) else value for value in row]
            for row in np.asarray(matrix, dtype=float).tolist()]


def _label_pixels(labels: Sequence[str]) -> int:
    return min(LONGEST_LABEL_PIXELS, LABEL_PIXELS_PER_CHARACTER * max((len(label) for label in labels), default=0))


def _number_label_pixels(values: Sequence[float | None]) -> int:
    """Width of the widest tick label an axis over ``values`` can get: the integer digits of the
    largest, a minus sign if any is negative, and a decimal point and digit (Plotly ticks a
    narrow range at 1234.5)."""
    finite = [float(value) for value in values if value is not None and math.isfinite(value)]
    if not finite:
        return 0
    digits = len(str(int(max(abs(value) for value in finite))))
    sign = 1 if min(finite) < 0 else 0
    return LABEL_PIXELS_PER_CHARACTER * (digits + sign + 2)


def _figure(traces: list[dict], *, height: int, xaxis: dict | None = None, yaxis: dict | None = None,
            left_labels: Sequence[str] = (), left_numbers: Sequence[float | None] = (),
            top_labels: Sequence[str] = (), **layout) -> dict:
    """``left_labels``: a category y axis's names; ``left_numbers``: the values of a numeric y axis
    (its tick labels, and its title beside them, get room at the left)."""
    margin = dict(MARGIN, l=MARGIN["l"] + _label_pixels(left_labels))
    if left_numbers:
        margin["l"] += _number_label_pixels(left_numbers)
        yaxis = {"tickformat": NUMBER_TICKS, **(yaxis or {})}
        if yaxis.get("title"):
            margin["l"] += Y_TITLE_PIXELS
    if top_labels:  # tick labels at -45 degrees above the plot
        margin["t"] = MARGIN["t"] + int(0.72 * _label_pixels(top_labels))
    elif (xaxis or {}).get("visible", True):
        margin["b"] = MARGIN["b"] + BOTTOM_AXIS_PIXELS
    if layout.get("showlegend"):
        margin["b"] += 60  # the legend sits under the axis
    height += margin["t"] - MARGIN["t"] + margin["b"] - MARGIN["b"]
    return {"data": traces, "layout": {
        "height": height, "margin": margin, "font": {"size": 12}, "paper_bgcolor": "white",
        "plot_bgcolor": "white", "showlegend": layout.pop("showlegend", False),
        "xaxis": {**GRID, **(xaxis or {})}, "yaxis": {**GRID, **(yaxis or {})}, **layout}}


def empty_figure(message: str) -> dict:
    return _figure([], height=160, xaxis={"visible": False}, yaxis={"visible": False},
                   annotations=[{"text": message, "showarrow": False, "x": 0.5, "y": 0.5,
                                 "xref": "paper", "yref": "paper"}])


def ratings_figure(rows: Sequence[SnapshotRow]) -> dict:
    """Each model's rating with its 95% interval as whiskers (asymmetric where the interval is), best on top."""
    if not rows:
        return empty_figure("No ratings yet")
    rows = list(rows)[::-1]  # Plotly draws the first category at the bottom

    def finite(value: float) -> float:
        return value if math.isfinite(value) else 0.0

    trace = {
        "type": "scatter", "mode": "markers", "x": [row.rating for row in rows], "y": [row.model for row in rows],
        "marker": {"size": 8, "color": BLUE},
        "error_x": {"type": "data", "symmetric": False, "thickness": 1.5, "width": 3,
                    "array": [finite(row.upper - row.rating) for row in rows],
                    "arrayminus": [finite(row.rating - row.lower) for row in rows]},
        "customdata": [[finite(row.lower), finite(row.upper), row.votes] for row in rows],
        "hovertemplate": "%{y}: %{x:.0f} (95%: %{customdata[0]:.0f} to %{customdata[1]:.0f}), "
                         "%{customdata[2]} votes<extra></extra>",
    }
    return _figure([trace], height=80 + ROW_PIXELS * len(rows), xaxis={"title": {"text": "rating"}},
                   yaxis={"type": "category"}, left_labels=trace["y"])


def matrix_figure(values: np.ndarray, models: Sequence[str], *, kind: str,
                  battles: np.ndarray | None = None) -> dict:
    """A models x models heat map. ``kind``: 'win rate' (0..1, row beats column) or 'battles' (counts)."""
    size = len(models)
    if size == 0:
        return empty_figure("No models yet")
    rate = kind != "battles"
    values = np.array(values, dtype=float)
    np.fill_diagonal(values, np.nan)  # a model never meets itself: a blank cell, not 0 or 50%
    trace = {
        "type": "heatmap", "z": _cells(values), "x": list(models), "y": list(models),
        "colorscale": WIN_RATE_COLOURS if rate else COUNT_COLOURS, "zmin": 0.0, "hoverongaps": False,
        "xgap": 1, "ygap": 1, "colorbar": {"thickness": 10, "len": 0.8},
        "hovertemplate": ("%{y} vs %{x}: %{z:.0%}" + (" of %{customdata:.0f} battles" if battles is not None else "")
                          if rate else "%{y} vs %{x}: %{z:.0f} battles") + "<extra></extra>",
    }
    if rate:
        trace["zmax"] = 1.0
        trace["colorbar"]["tickformat"] = ".0%"
    else:  # Plotly honours zmin only with a zmax
        trace["zmax"] = float(max(np.nanmax(values, initial=0.0), 1.0))
    if battles is not None:
        trace["customdata"] = _cells(battles)
    if size <= LABELLED_CELLS:
        trace["text"] = [["" if math.isnan(v) else (f"{v:.0%}" if rate else f"{v:.0f}") for v in row] for row in values]
        trace["texttemplate"] = "%{text}"
    return _figure([trace], height=60 + ROW_PIXELS * size, left_labels=models, top_labels=models,
                   xaxis={"side": "top", "tickangle": -45, "type": "category", "showgrid": False},
                   yaxis={"autorange": "reversed", "type": "category", "showgrid": False})


def history_figure(history: Sequence[RatingPoint], models: Sequence[str]) -> dict:
    """Each picked model's rating after every refit, over time."""
    if not history or not models:
        return empty_figure("Pick models to see their ratings over time" if history else "No rating history yet")
    times = [datetime.datetime.fromtimestamp(point.generated_at, tz=datetime.UTC).isoformat()
             for point in history]
    traces = [{"type": "scatter", "x": times, "y": [point.ratings.get(model) for point in history], "name": model,
               "mode": "lines+markers" if len(history) < 40 else "lines", "connectgaps": False,
               "hovertemplate": f"{model}: %{{y:.0f}}<extra>%{{x}}</extra>"} for model in models]
    return _figure(traces, height=340, showlegend=True, yaxis={"title": {"text": "rating"}}, xaxis={"type": "date"},
                   left_numbers=[value for trace in traces for value in trace["y"]],
                   legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0})


def opponents_figure(opponents: Sequence[str], win_rates: Sequence[float], votes: Sequence[int]) -> dict:
    """One model's observed win rate against each opponent (bars), with the votes behind each."""
    if not opponents:
        return empty_figure("No battles against other models in this view")
    trace = {"type": "bar", "orientation": "h", "x": list(win_rates)[::-1], "y": list(opponents)[::-1],
             "marker": {"color": BLUE}, "customdata": [int(v) for v in votes][::-1],
             "hovertemplate": "vs %{y}: %{x:.0%} of %{customdata} votes<extra></extra>",
             "text": [f"{rate:.0%} · {int(count)}" for rate, count in zip(win_rates, votes)][::-1],
             "textposition": "auto"}
    return _figure([trace], height=80 + ROW_PIXELS * len(opponents), yaxis={"type": "category"},
                   left_labels=trace["y"],
                   xaxis={"range": [0, 1], "tickformat": ".0%", "title": {"text": "win rate (a tie counts half)"}})


def votes_over_time_figure(stats: ViewStats | None, model: str) -> dict:
    """Votes the model took part in, per day."""
    if stats is None or model not in stats.models or not stats.days or not stats.votes_by_day:
        return empty_figure("No votes per day published for this view yet")
    counts = stats.votes_by_day[stats.models.index(model)]
    trace = {"type": "bar", "x": list(stats.days), "y": list(counts), "marker": {"color": BLUE},
             "hovertemplate": "%{x}: %{y} votes<extra></extra>"}
    return _figure([trace], height=260, yaxis={"title": {"text": "votes"}}, left_numbers=trace["y"],
                   xaxis={"type": "date", "tickformat": "%b %-d", "dtick": 86_400_000})  # one tick per day
