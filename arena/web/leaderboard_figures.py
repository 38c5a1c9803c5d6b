"""Plotly figures for the leaderboard tab: pure functions from published numbers to a figure.

Every figure sizes itself to its rows (the page's width is the browser's: Gradio's Plot makes
Plotly responsive), carries no title of its own (the gr.Plot label names it) and keeps its margins
small so it stays readable on a 390 px phone.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from leaderboard.snapshot import SnapshotRow
from leaderboard.views import RatingPoint, ViewStats

ROW_PIXELS = 22  # height per model on a figure's model axis
# Cell labels are readable up to about this many models; beyond, the hover says the numbers.
LABELLED_CELLS = 16
MARGIN = dict(l=8, r=8, t=36, b=8)  # the top clears the gr.Plot label


GRID = dict(showgrid=True, gridcolor="#e5e7eb", zeroline=False, linecolor="#d1d5db")


def _layout(figure: go.Figure, *, height: int, **extra) -> go.Figure:
    # Template "none" plus a few colours: a named template such as "plotly_white" is deep-copied into
    # every figure, which costs 30 ms a figure (five figures per refresh, every open page).
    figure.update_layout(height=height, margin=MARGIN, template="none", font=dict(size=12),
                         paper_bgcolor="white", plot_bgcolor="white",
                         showlegend=extra.pop("showlegend", False), **extra)
    figure.update_xaxes(**GRID)
    figure.update_yaxes(**GRID)
    return figure


def empty_figure(message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _layout(figure, height=160)


def ratings_figure(rows: Sequence[SnapshotRow]) -> go.Figure:
    """Each model's rating with its 95% interval as whiskers (asymmetric where the interval is), best on top."""
    if not rows:
        return empty_figure("No ratings yet")
    rows = list(rows)[::-1]  # Plotly draws the first category at the bottom
    models = [row.model for row in rows]
    ratings = np.array([row.rating for row in rows])
    above = np.array([row.upper for row in rows]) - ratings
    below = ratings - np.array([row.lower for row in rows])
    figure = go.Figure(go.Scatter(
        # plain lists, not numpy arrays: Plotly would ship those base64-encoded, unreadable to page tests
        x=ratings.tolist(), y=models, mode="markers", marker=dict(size=8, color="#2563eb"),
        error_x=dict(type="data", symmetric=False, array=np.nan_to_num(above, posinf=0.0).tolist(),
                     arrayminus=np.nan_to_num(below, posinf=0.0).tolist(), thickness=1.5, width=3),
        customdata=[[row.lower, row.upper, row.votes] for row in rows],
        hovertemplate="%{y}: %{x:.0f} (95%: %{customdata[0]:.0f} to %{customdata[1]:.0f}), "
                      "%{customdata[2]} votes<extra></extra>",
    ))
    figure.update_xaxes(title_text="rating", zeroline=False)
    figure.update_yaxes(automargin=True, type="category")
    return _layout(figure, height=80 + ROW_PIXELS * len(rows))


def matrix_figure(values: np.ndarray, models: Sequence[str], *, kind: str,
                  battles: np.ndarray | None = None) -> go.Figure:
    """A models x models heat map. ``kind``: 'win rate' (0..1, row beats column) or 'battles' (counts)."""
    size = len(models)
    if size == 0:
        return empty_figure("No models yet")
    rate = kind != "battles"
    values = np.array(values, dtype=float)
    np.fill_diagonal(values, np.nan)  # a model never meets itself: a blank cell, not 0 or 50%
    labels = None
    if size <= LABELLED_CELLS:
        labels = np.where(np.isnan(values), "", np.vectorize(lambda v: f"{v:.0%}" if rate else f"{v:.0f}")(
            np.nan_to_num(values)))
    hover = ("%{y} vs %{x}: %{z:.0%}" + (" of %{customdata:.0f} battles" if battles is not None else "")
             if rate else "%{y} vs %{x}: %{z:.0f} battles")
    heat = go.Heatmap(
        z=np.where(np.isnan(values), None, values).tolist(),
        x=list(models), y=list(models), customdata=battles.tolist() if battles is not None else None,
        text=labels.tolist() if labels is not None else None, texttemplate="%{text}" if labels is not None else None,
        colorscale="RdBu" if rate else "Blues", zmin=0.0, zmax=1.0 if rate else None,
        hovertemplate=hover + "<extra></extra>", hoverongaps=False,
        colorbar=dict(thickness=10, tickformat=".0%" if rate else None, len=0.8),
        xgap=1, ygap=1,
    )
    figure = go.Figure(heat)
    figure.update_xaxes(side="top", tickangle=-45, automargin=True, type="category")
    figure.update_yaxes(autorange="reversed", automargin=True, type="category")
    return _layout(figure, height=140 + ROW_PIXELS * size)


def history_figure(history: Sequence[RatingPoint], models: Sequence[str]) -> go.Figure:
    """Each picked model's rating after every refit, over time."""
    if not history or not models:
        return empty_figure("Pick models to see their ratings over time" if history else "No rating history yet")
    times = [datetime.datetime.fromtimestamp(point.generated_at, tz=datetime.timezone.utc) for point in history]
    figure = go.Figure()
    for model in models:
        figure.add_trace(go.Scatter(x=times, y=[point.ratings.get(model) for point in history], name=model,
                                    mode="lines+markers" if len(history) < 40 else "lines", connectgaps=False,
                                    hovertemplate=f"{model}: %{{y:.0f}}<extra>%{{x}}</extra>"))
    figure.update_yaxes(title_text="rating")
    return _layout(figure, height=340, showlegend=True,
                   legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0))


def opponents_figure(opponents: Sequence[str], win_rates: Sequence[float], votes: Sequence[int]) -> go.Figure:
    """One model's observed win rate against each opponent (bars), with the votes behind each."""
    if not opponents:
        return empty_figure("No battles against other models in this view")
    figure = go.Figure(go.Bar(
        x=list(win_rates)[::-1], y=list(opponents)[::-1], orientation="h", marker_color="#2563eb",
        customdata=list(votes)[::-1], hovertemplate="vs %{y}: %{x:.0%} of %{customdata} votes<extra></extra>",
        text=[f"{rate:.0%} · {count}" for rate, count in zip(win_rates, votes)][::-1], textposition="auto",
    ))
    figure.update_xaxes(range=[0, 1], tickformat=".0%", title_text="win rate (a tie counts half)")
    figure.update_yaxes(automargin=True, type="category")
    return _layout(figure, height=80 + ROW_PIXELS * len(opponents))


def votes_over_time_figure(stats: ViewStats | None, model: str) -> go.Figure:
    """Votes the model took part in, per day."""
    if stats is None or model not in stats.models or not stats.days or not stats.votes_by_day:
        return empty_figure("No votes per day published for this view yet")
    counts = stats.votes_by_day[stats.models.index(model)]
    figure = go.Figure(go.Bar(x=stats.days, y=counts, marker_color="#2563eb",
                              hovertemplate="%{x}: %{y} votes<extra></extra>"))
    figure.update_yaxes(title_text="votes")
    figure.update_xaxes(type="date", tickformat="%b %-d", dtick=86_400_000)  # one tick per day
    return _layout(figure, height=260)
