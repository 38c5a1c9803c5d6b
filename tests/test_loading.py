"""Loading votes: our archive and LMArena-style files, aggregation, weights, filters, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leaderboard.data.counts import PairCounts, SelfComparisonError
from leaderboard.data.events import StyleFeatures, UnknownOutcomeError, VoteEvent
from leaderboard.data.filters import FilterError, filter_votes
from leaderboard.data.layouts import frame_rankings
from leaderboard.data.loading import VoteFileError, load_all, load_votes
from leaderboard.data.weights import WeightError, vote_weights
from leaderboard.fit import fit_leaderboard


def plain_metadata(tokens_a: int, tokens_b: int) -> dict:
    """LMArena conv_metadata of two answers with no markdown at all."""
    return {"sum_assistant_a_tokens": tokens_a, "sum_assistant_b_tokens": tokens_b,
            "header_count_a": {"h1": 0}, "header_count_b": {"h1": 0},
            "list_count_a": {"ordered": 0, "unordered": 0}, "list_count_b": {"ordered": 0, "unordered": 0},
            "bold_count_a": {"**": 0, "__": 0}, "bold_count_b": {"**": 0, "__": 0}}


LMARENA_ROWS = [
    {"model_a": "alpha", "model_b": "beta", "winner": "model_a", "tstamp": 1.0, "language": "English", "judge": "u1",
     "conv_metadata": {"sum_user_tokens": 900, "turns": 2, "sum_assistant_a_tokens": 120, "sum_assistant_b_tokens": 80,
                       "header_count_a": {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
                       "header_count_b": {"h1": 0, "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 1},
                       "list_count_a": {"ordered": 3, "unordered": 4}, "list_count_b": {"ordered": 0, "unordered": 1},
                       "bold_count_a": {"**": 2, "__": 1}, "bold_count_b": {"**": 0, "__": 0}}},
    {"model_a": "beta", "model_b": "gamma", "winner": "tie", "tstamp": 2.0, "language": "German", "judge": "u2",
     "conv_metadata": plain_metadata(10, 20)},
    {"model_a": "gamma", "model_b": "alpha", "winner": "tie (bothbad)", "tstamp": 3.0, "language": "English",
     "judge": "u1", "conv_metadata": plain_metadata(5, 6)},
    {"model_a": "alpha", "model_b": "gamma", "winner": "model_b", "tstamp": 4.0, "language": "English", "judge": "u3",
     "conv_metadata": plain_metadata(7, 9)},
    {"model_a": "beta", "model_b": "alpha", "winner": "model_a", "tstamp": 5.0, "language": "German", "judge": "u1",
     "conv_metadata": plain_metadata(7, 9)},
]


def write_all_formats(tmp_path, rows) -> dict[str, object]:
    frame = pd.DataFrame(rows)
    paths = {}
    paths["csv"] = tmp_path / "votes.csv"
    csv_frame = frame.copy()
    csv_frame["conv_metadata"] = csv_frame["conv_metadata"].map(json.dumps)
    csv_frame.to_csv(paths["csv"], index=False)
    paths["jsonl"] = tmp_path / "votes.jsonl"
    paths["jsonl"].write_text("".join(json.dumps(row) + "\n" for row in rows))
    paths["json"] = tmp_path / "votes.json"
    paths["json"].write_text(json.dumps(rows))
    paths["parquet"] = tmp_path / "votes.parquet"
    frame.to_parquet(paths["parquet"])
    return paths


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_lmarena_files_load_unchanged_with_flattened_style(tmp_path, fmt):
    frame = load_votes(write_all_formats(tmp_path, LMARENA_ROWS)[fmt])
    assert frame["winner"].tolist() == ["model_a", "tie", "tie (bothbad)", "model_b", "model_a"]
    first = frame.iloc[0]
    assert (first["tokens_a"], first["tokens_b"]) == (120, 80)
    assert (first["headers_a"], first["headers_b"]) == (3, 1)
    assert (first["lists_a"], first["lists_b"]) == (7, 1)
    assert (first["bold_a"], first["bold_b"]) == (3, 0)
    assert (first["user_tokens"], first["turns"]) == (900, 2)
    assert filter_votes(frame, ["user_tokens>=500"]).index.tolist() == [0]  # long prompts
    assert frame["language"].tolist()[:2] == ["English", "German"]
    counts = PairCounts.from_frame(frame)
    assert counts.n_votes == 5 and counts.votes_per_model() == {"alpha": 4, "beta": 3, "gamma": 3}


def test_all_formats_give_the_same_fit(tmp_path):
    paths = write_all_formats(tmp_path, LMARENA_ROWS)
    fits = [fit_leaderboard(PairCounts.from_frame(load_votes(path))) for path in paths.values()]
    for fit in fits[1:]:
        np.testing.assert_allclose(fit.theta, fits[0].theta, atol=1e-12)


def make_event(k: int, models, outcome=None, ranking=None, mode="anonymous", **extra) -> VoteEvent:
    return VoteEvent(
        vote_id=f"vote-{k:06d}", battle_id=f"battle-{k:06d}", mode=mode, models=list(models), outcome=outcome,
        ranking=ranking, voter_id=extra.get("voter_id", "voter-1"), served_at=100.0 + k, voted_at=110.0 + k,
        selection_probability=extra.get("selection_probability", 0.5),
        style=[StyleFeatures(tokens=10 * (i + 1), headers=i, list_items=2 * i, bold=3 * i) for i in range(len(models))],
        categories=extra.get("categories", ["coding"]), turns=extra.get("turns", 1),
    )


def test_our_archive_maps_events_to_columns(tmp_path):
    events = [
        make_event(0, ["a", "b"], "model_a", categories=["coding", "hard"], turns=2, selection_probability=0.25),
        make_event(1, ["b", "c"], "tie (bothbad)", voter_id="voter-2"),
        make_event(2, ["a", "b", "c"], ranking=[["c"], ["a", "b"]], mode="kwise"),
        make_event(3, ["c", "a"], "model_b"),
    ]
    path = tmp_path / "votes.jsonl"
    lines = [event.model_dump_json() + "\n" for event in events]
    path.write_text("".join(lines) + lines[0] + '{"vote_id": "torn')  # a duplicate and a torn tail
    frame = load_votes(path)
    assert frame[["model_a", "model_b", "winner"]].values.tolist() == [
        ["a", "b", "model_a"], ["b", "c", "tie (bothbad)"], ["c", "a", "model_b"]]
    first = frame.iloc[0]
    assert first["categories"] == ["coding", "hard"] and first["turns"] == 2
    assert first["selection_probability"] == 0.25 and first["voter_id"] == "voter-1" and first["voted_at"] == 110.0
    assert (first["tokens_a"], first["tokens_b"], first["headers_b"], first["lists_b"], first["bold_b"]) == (
        10, 20, 1, 2, 3)
    _, kwise = load_all(path)
    assert frame_rankings(kwise) == [[["c"], ["a", "b"]]] and kwise["vote_id"].tolist() == ["vote-000002"]


def test_a_bad_line_in_the_middle_of_the_archive_is_an_error(tmp_path):
    path = tmp_path / "votes.jsonl"
    good = make_event(0, ["a", "b"], "model_a").model_dump_json()
    path.write_text(good + "\n{not json\n" + good + "\n")
    with pytest.raises(VoteFileError, match="line 2"):
        load_votes(path)


def test_unknown_outcome_names_the_row_and_value():
    frame = pd.DataFrame({"model_a": ["a", "b", "a"], "model_b": ["b", "a", "b"], "winner": ["model_a", "draw", "tie"]})
    with pytest.raises(UnknownOutcomeError, match=r"row 1: unknown outcome 'draw'"):
        PairCounts.from_frame(frame)
    with pytest.raises(UnknownOutcomeError):
        PairCounts.empty().add("a", "b", "draw")
    with pytest.raises(UnknownOutcomeError, match="row 2"):  # a missing outcome is not a tie either
        PairCounts.from_frame(frame.assign(winner=["model_a", "tie", None]))


def test_missing_column_and_empty_file_are_clear_errors(tmp_path):
    path = tmp_path / "votes.csv"
    pd.DataFrame({"model_a": ["a"], "model_b": ["b"]}).to_csv(path, index=False)
    with pytest.raises(VoteFileError, match=r"missing column\(s\) \['winner'\]"):
        load_votes(path)
    with pytest.raises(KeyError, match="winner"):
        PairCounts.from_frame(pd.DataFrame({"model_a": ["a"], "model_b": ["b"]}))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(VoteFileError, match="empty"):
        load_votes(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("model_a,model_b,winner\n")
    with pytest.raises(VoteFileError, match="no pairwise votes"):
        load_votes(header_only)
    text = tmp_path / "votes.txt"
    text.write_text("model_a,model_b,winner\n")
    with pytest.raises(VoteFileError, match="unknown file type"):
        load_votes(text)


def test_a_model_that_only_played_itself_is_an_error():
    frame = pd.DataFrame({"model_a": ["a", "solo"], "model_b": ["b", "solo"], "winner": ["model_a", "model_b"]})
    with pytest.raises(SelfComparisonError, match="'solo'"):
        PairCounts.from_frame(frame)
    with pytest.raises(SelfComparisonError):
        PairCounts.empty().add("solo", "solo", "tie")


def test_weights_inverse_propensity_and_voter_cap():
    frame = pd.DataFrame({"selection_probability": [0.5, 0.25, 1.0, 0.5], "voter_id": ["x", "x", "x", "y"]})
    np.testing.assert_allclose(vote_weights(frame), np.array([2, 4, 1, 2]) / 2.25)
    capped = vote_weights(frame, inverse_propensity=False, voter_cap=1.0)
    np.testing.assert_allclose(capped, np.array([1 / 3, 1 / 3, 1 / 3, 1.0]) / 0.5)
    with pytest.raises(WeightError, match="selection probability"):
        vote_weights(frame.assign(selection_probability=[0.5, 0.0, 1.0, 0.5]))
    with pytest.raises(WeightError, match="voter column"):
        vote_weights(frame.drop(columns="voter_id"), voter_cap=2)
    assert np.array_equal(vote_weights(frame.drop(columns="selection_probability")), np.ones(4))


def test_filters_by_text_number_and_list_membership():
    frame = pd.DataFrame({"language": ["English", "German", "German"], "turns": [1, 3, 2],
                          "categories": [["coding"], ["math", "hard"], []]})
    assert filter_votes(frame, ["language=German"]).index.tolist() == [1, 2]
    assert filter_votes(frame, ["turns>1", "language!=English"]).index.tolist() == [1, 2]
    assert filter_votes(frame, ["turns>=3"]).index.tolist() == [1]
    assert filter_votes(frame, ["categories=hard"]).index.tolist() == [1]
    tagged = pd.DataFrame({"category_tag": [{"math_v0.1": {"math": True}, "if_v0.1": {"if": False, "score": 2}},
                                            {"math_v0.1": {"math": False}, "if_v0.1": {"if": True, "score": 4}}]})
    assert filter_votes(tagged, ["category_tag=math"]).index.tolist() == [0]
    assert filter_votes(tagged, ["category_tag=if_v0.1.if"]).index.tolist() == [1]
    with pytest.raises(FilterError, match="no column 'lang'"):
        filter_votes(frame, ["lang=German"])
    with pytest.raises(FilterError, match="numeric"):
        filter_votes(frame, ["turns=many"])


def test_aggregation_keeps_weights_and_squared_weights_per_outcome():
    frame = pd.DataFrame({"model_a": ["b", "a", "a"], "model_b": ["a", "b", "b"],
                          "winner": ["model_a", "tie", "model_a"], "w": [2.0, 3.0, 0.5]})
    arrays = PairCounts.from_frame(frame, "w").arrays()
    # pair (a, b): a won once (0.5), b won once (2.0), one tie (3.0)
    assert arrays.pair_i.tolist() == [0] and arrays.pair_j.tolist() == [1]
    assert arrays.count.tolist() == [[1, 1, 1]]
    assert arrays.weight.tolist() == [[0.5, 2.0, 3.0]]
    assert arrays.weight_sq.tolist() == [[0.25, 4.0, 9.0]]


def test_fast_and_line_by_line_archive_readers_agree(tmp_path):
    from leaderboard.data.archive_reader import _columnar_frames, _frames_from_events, archive_events

    events = [make_event(k, ["a", "b"] if k % 3 else ["c", "a"], ["model_a", "tie", "model_b"][k % 3],
                         categories=["x"] if k % 2 else []) for k in range(30)]
    events.append(make_event(99, ["a", "b", "c"], ranking=[["b"], ["a"], ["c"]], mode="kwise"))
    path = tmp_path / "votes.jsonl"
    path.write_text("".join(event.model_dump_json() + "\n" for event in events + events[:5]))  # 5 duplicates
    fast_pairs, fast_kwise = _columnar_frames(path)
    slow_pairs, slow_kwise = _frames_from_events(archive_events(path))
    assert len(fast_pairs) == 30 and len(fast_kwise) == 1
    pd.testing.assert_frame_equal(fast_pairs[slow_pairs.columns].astype(object), slow_pairs.astype(object))
    assert fast_kwise["ranking"].tolist() == slow_kwise["ranking"].tolist() == [[["b"], ["a"], ["c"]]]
    pd.testing.assert_frame_equal(fast_kwise.astype(object), slow_kwise.astype(object))


def test_the_arrow_schema_has_every_vote_event_field_with_its_type(tmp_path):
    """The fast archive path reads with a schema derived from VoteEvent: every field, in order,
    with a type that reads the field's JSON back unchanged (a kwise and a pairwise event with
    every field set)."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    from leaderboard.data.arrow_schema import arrow_schema

    schema = arrow_schema(VoteEvent)
    assert schema.names == list(VoteEvent.model_fields)
    style_struct = pa.struct([(name, pa.int64()) for name in StyleFeatures.model_fields])
    assert schema.field("style").type == pa.list_(style_struct)
    assert schema.field("ranking").type == pa.list_(pa.list_(pa.string()))
    assert (schema.field("served_at").type, schema.field("turns").type) == (pa.float64(), pa.int64())
    events = [make_event(0, ["a", "b"], "model_a", categories=["coding"], turns=3, selection_probability=0.125),
              make_event(1, ["a", "b", "c"], ranking=[["b"], ["a", "c"]], mode="kwise")]
    path = tmp_path / "votes.jsonl"
    path.write_text("".join(event.model_dump_json() + "\n" for event in events))
    table = pa_json.read_json(path, parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                                                       unexpected_field_behavior="error"))
    assert table.schema == schema
    assert table.to_pylist() == [json.loads(event.model_dump_json()) for event in events]


def test_a_field_added_to_the_model_is_in_the_schema_and_an_unmapped_type_is_refused():
    from typing import Literal

    import pyarrow as pa

    from leaderboard.data.arrow_schema import arrow_schema

    class LaterVoteEvent(VoteEvent):
        language: str | None = None
        judge_score: float = 0.0
        flags: list[Literal["spam", "ok"]] = []

    schema = arrow_schema(LaterVoteEvent)
    assert schema.names[-2:] == ["judge_score", "flags"]  # new fields last; a redefined one keeps its place
    assert [schema.field(n).type for n in ("language", "judge_score", "flags")] == [pa.string(), pa.float64(),
                                                                                    pa.list_(pa.string())]

    class WithAMapping(VoteEvent):
        extras: dict[str, int] = {}

    with pytest.raises(TypeError, match=r"WithAMapping.extras: no arrow type"):
        arrow_schema(WithAMapping)


def test_a_compressed_archive_and_a_damaged_one_go_through_the_one_reader(tmp_path):
    import gzip

    events = [make_event(0, ["a", "b"], "model_a"), make_event(1, ["b", "c"], "tie")]
    packed = tmp_path / "votes.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write("".join(event.model_dump_json() + "\n" for event in events))
    assert load_votes(packed)["vote_id"].tolist() == ["vote-000000", "vote-000001"]
    damaged = tmp_path / "damaged.jsonl"
    bad_turns = events[1].model_dump_json().replace('"turns":1', '"turns":"x"')
    damaged.write_text(events[0].model_dump_json() + "\n" + bad_turns + "\n")
    with pytest.raises(VoteFileError,
                       match=r"damaged.jsonl, line 2: not a valid vote \(turns: Input should be a valid integer"):
        load_votes(damaged)
