"""The leaderboard tab's data: read from the views the worker publishes (real Redis), reshaped into
the table, the freshness line, the matrices and the model detail, checked against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import redis.asyncio as aioredis

from arena.web import board_data as data
from arena.web.board_data import Freshness, ModelInfo
from leaderboard.views.reader import BoardReader, BoardView
from leaderboard.views.snapshot import SnapshotRow
from tests.helpers import make_board, make_snapshot, make_view, publish, publish_board

CATALOGUE = {name: ModelInfo(organisation=f"{name} org", license="MIT") for name in ("a", "b", "c", "d")}
OVERALL = {"a": 1200.0, "b": 1100.0, "c": 1000.0, "d": 800.0, "gone": 1050.0}
STYLE = {"a": 1000.0, "b": 1150.0, "c": 1050.0, "d": 800.0, "gone": 1050.0}
CODING = {"d": 1300.0, "c": 1000.0, "a": 900.0}


@pytest.fixture
async def reader(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield BoardReader(client, "arena")
    await client.aclose()


def board_documents(**extra):
    return make_board({"overall": OVERALL, "overall+style": STYLE, "coding": CODING, "coding+style": CODING},
                      labels={"coding": "Coding"}, battles_per_pair=400, **extra)


async def test_without_a_view_index_the_overall_snapshot_is_shown(reader, redis_client):
    snapshot = make_snapshot(["a", "b"], [0.5, -0.5], np.eye(2) * 0.01, [10, 10])
    publish(redis_client, snapshot)
    board = await reader.view("coding", True)
    assert board.index is None and board.category == "overall" and not board.style_control
    assert [row.model for row in board.snapshot.rows] == ["a", "b"]
    assert [info.name for info in board.categories] == ["overall"] and not board.style_available
    table = data.table_frame(board, CATALOGUE, min_votes=0, show_retired=False)
    assert list(table["Model"]) == ["a", "b"]
    assert list(table["Rank Δ, style control"]) == ["–", "–"]


async def test_nothing_published_yet(reader):
    board = await reader.view()
    assert board.snapshot is None
    assert data.table_frame(board, CATALOGUE, min_votes=0, show_retired=True).empty
    assert "No votes yet" in data.freshness_line(Freshness.of(board), 0.0, 2.0)


async def test_a_category_and_its_style_counterpart_are_read(reader, redis_client):
    publish_board(redis_client, board_documents())
    board = await reader.view("coding", False)
    assert board.view == "coding" and [row.model for row in board.snapshot.rows] == ["d", "c", "a"]
    assert board.counterpart is not None and board.stats.view == "coding"
    assert [c.name for c in board.categories] == ["overall", "coding"]
    unknown = await reader.view("no-such-category", True)
    assert unknown.view == "overall+style"
    assert len((await reader.view()).history) == 4


async def test_rank_change_under_style_control(reader, redis_client):
    publish_board(redis_client, board_documents())
    plain = data.table_frame(await reader.view("overall", False), CATALOGUE, min_votes=0, show_retired=False)
    styled = data.table_frame(await reader.view("overall", True), CATALOGUE, min_votes=0, show_retired=False)
    # 400 battles per pair: intervals of about +-15, so every gap of 50 points separates ranks.
    assert list(zip(plain["Model"], plain["Rank"])) == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert list(zip(styled["Model"], styled["Rank"])) == [("b", 1), ("c", 2), ("a", 3), ("d", 4)]
    change = dict(zip(plain["Model"], plain["Rank Δ, style control"]))
    assert change == {"a": "▼ 2", "b": "▲ 1", "c": "▲ 1", "d": "="}
    # The style view's table says the same moves (plain rank minus style rank).
    assert dict(zip(styled["Model"], styled["Rank Δ, style control"])) == change


async def test_retired_and_preliminary_marks(reader, redis_client):
    publish_board(redis_client, board_documents())
    board = await reader.view()
    hidden = data.table_frame(board, CATALOGUE, min_votes=0, show_retired=False)
    assert "gone" not in set(hidden["Model"])
    shown = data.table_frame(board, CATALOGUE, min_votes=0, show_retired=True)
    status = dict(zip(shown["Model"], shown["Status"]))
    assert status["gone"] == "retired" and status["a"] == ""
    # Ranks are recomputed among the shown models: "gone" (1050) sits between b and c.
    assert dict(zip(shown["Model"], shown["Rank"])) == {"a": 1, "b": 2, "gone": 3, "c": 4, "d": 5}
    owner_retired = data.table_frame(board, CATALOGUE, min_votes=0, show_retired=False, retired={"b"})
    assert "b" not in set(owner_retired["Model"])
    votes = int(shown["Votes"].iloc[0])
    preliminary = data.table_frame(board, CATALOGUE, min_votes=votes + 1, show_retired=True)
    assert set(preliminary["Status"]) == {"preliminary", "retired, preliminary"}
    assert list(shown["Organisation"])[:2] == ["a org", "b org"] and shown["Licence"].iloc[0] == "MIT"


def test_interval_text_is_asymmetric_where_the_interval_is():
    row = SnapshotRow(model="a", rating=1000.0, lower=990.4, upper=1012.2, rank=1, rank_lower=1, votes=5)
    assert data.format_interval(row) == "+12 / −10"
    assert data.format_interval(row.model_copy(update={"lower": 988.0})) == "±12"
    assert data.format_interval(row.model_copy(update={"upper": math.inf})) == "unbounded"


def test_upper_bound_rank_counts_models_clearly_better():
    rows = [SnapshotRow(model=m, rating=r, lower=r - 20, upper=r + 20, rank=0, rank_lower=0, votes=1)
            for m, r in (("a", 1100), ("b", 1090), ("c", 1000), ("d", 990))]
    assert data.upper_bound_ranks(rows) == {"a": 1, "b": 1, "c": 3, "d": 3}


def test_freshness_line_in_plain_words():
    freshness = Freshness(total_votes=1234, generated_at=100.0, next_refit_at=115.0, method="bradley-terry+sandwich")
    assert data.freshness_line(freshness, 112.0, 2.0) == (
        "1,234 votes, refitted 12 s ago, next refit in 3 s if there are new votes")
    one = Freshness(total_votes=1, generated_at=100.0, next_refit_at=None, method="elo")
    line = data.freshness_line(one, 101.0, 2.0)
    assert (line.startswith("1 vote, refitted 1 s ago, next refit in 1 s if there are new votes")
            and "provisional" in line)
    assert "nats" not in line and "elo" not in line.lower()


def test_freshness_line_once_the_due_time_has_passed_waits_for_votes():
    # the worker refits only when votes arrived: 106 s after a refit due at +2 s, no refit is coming "any moment"
    freshness = Freshness(total_votes=1234, generated_at=100.0, next_refit_at=102.0, method="bradley-terry+sandwich")
    line = data.freshness_line(freshness, 206.0, 2.0)
    assert line == "1,234 votes, refitted 106 s ago, next refit when new votes arrive"
    assert "any moment" not in line
    unknown = Freshness(total_votes=5, generated_at=100.0, next_refit_at=None, method="bradley-terry+sandwich")
    assert data.freshness_line(unknown, 400.0, 2.0).endswith("refitted 5 min ago, next refit when new votes arrive")


def test_view_note_is_the_published_note_escaped():
    snapshot, _ = make_view("overall+style", {"a_1": 1000.0, "b": 900.0}, generated_at=1.0)
    board = BoardView("overall", True, None, snapshot.model_copy(update={
        "note": "online Elo: only 3 pairwise vote(s) for style control; *a_1* <b>"}), None, None)
    assert data.view_note(board) == (
        "<small>About this view: online Elo: only 3 pairwise vote(s) for style control; \\*a\\_1\\* &lt;b&gt;</small>")
    assert data.view_note(BoardView("overall", True, None, snapshot, None, None)) == ""  # no note: nothing
    assert data.view_note(BoardView("overall", False, None, None, None, None)) == ""


def test_method_in_words_has_no_codes():
    assert data.method_in_words("bradley-terry+sandwich") == "Bradley-Terry, robust (sandwich) 95% intervals"


def test_predicted_win_rate_is_the_sigmoid_of_theta_differences():
    snapshot, _ = make_view("overall", {"a": 1400.0, "b": 1000.0, "c": 1000.0}, generated_at=1.0)
    rates = data.predicted_win_rates(snapshot, ["a", "b", "c", "missing"])
    # 400 rating points apart: the stronger wins 10 times in 11.
    assert rates[0, 1] == pytest.approx(10 / 11) and rates[1, 0] == pytest.approx(1 / 11)
    assert rates[1, 2] == pytest.approx(0.5)
    assert np.isnan(rates[0, 0]) and np.isnan(rates[3]).all()


def test_observed_win_rate_counts_ties_half():
    _, stats = make_view("overall", {"a": 1100.0, "b": 1000.0}, battles_per_pair=10, generated_at=1.0)
    stats = stats.model_copy(update={"wins": [[0, 6], [2, 0]], "ties": [[0, 2], [2, 0]]})
    rates, battles = data.observed_win_rates(stats, ["b", "a", "never-played"])
    assert rates[1, 0] == pytest.approx(0.7) and rates[0, 1] == pytest.approx(0.3)
    assert battles[0, 1] == 10 and np.isnan(rates[2]).all()


async def test_model_detail(reader, redis_client):
    publish_board(redis_client, board_documents())
    board = await reader.view()
    record = data.opponent_frame(board, "a")
    assert set(record["Opponent"]) == {"b", "c", "d", "gone"}
    first = record.iloc[0]
    assert first["Votes"] == first["Won"] + first["Lost"] + first["Tied"] == 400
    versus_d = record[record["Opponent"] == "d"].iloc[0]
    assert versus_d["Predicted"] == f"{1 / (1 + 10 ** (-400 / 400)):.0%}"
    style = data.style_frame(await reader.stats("overall+style"), "a")
    assert "answer length (tokens)" in set(style["Style feature"])
    categories = data.category_ratings_frame("a", await reader.category_snapshots(board.index, False),
                                             {"overall": "Overall", "coding": "Coding"})
    assert dict(zip(categories["Category"], categories["Rating"])) == {"Overall": 1200, "Coding": 900}
    assert "1200" in data.model_summary(board, "a", CATALOGUE) and "a org" in data.model_summary(board, "a", CATALOGUE)
    assert "Retired" in data.model_summary(board, "gone", CATALOGUE)


async def test_a_cycle_is_parsed_once_and_a_new_cycle_is_read(reader, redis_client):
    documents = board_documents(generated_at=1000.0)
    publish_board(redis_client, documents)
    first, again = await reader.view(), await reader.view()
    assert first.snapshot is again.snapshot and first.cycle == again.cycle == 1000.0
    changed = dict(OVERALL, d=1500.0)
    publish_board(redis_client, make_board({"overall": changed}, generated_at=1001.0))
    newer = await reader.view()
    assert newer.cycle == 1001.0 and newer.snapshot.rows[0].model == "d"
