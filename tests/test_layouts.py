"""LMArena's Kaggle and conversation layouts: read unchanged, fitted, and written back by convert."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leaderboard.cli import main
from leaderboard.data.counts import PairCounts
from leaderboard.data.loading import VoteFileError, load_all, load_votes
from leaderboard.fit import fit_leaderboard

FIXTURES = Path(__file__).parent / "fixtures"
KAGGLE = FIXTURES / "kaggle_layout.csv"
CONVERSATION = FIXTURES / "conversation_layout.jsonl"


def fitted(path: Path, *extra: str, tmp_path: Path) -> dict:
    out = tmp_path / f"{path.stem}-{len(extra)}.json"
    assert main(["fit", str(path), "--quiet", "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_the_kaggle_layout_loads_with_winner_from_its_one_hot_columns():
    raw = pd.read_csv(KAGGLE)
    votes = load_votes(KAGGLE)
    assert len(votes) == len(raw) == 20
    expected = np.select([raw["winner_model_a"] == 1, raw["winner_model_b"] == 1], ["model_a", "model_b"], "tie")
    assert votes["winner"].tolist() == expected.tolist()
    assert votes["prompt"].tolist() == raw["prompt"].tolist()  # the text columns as written


def test_the_conversation_layout_loads_with_style_and_category_flags():
    votes = load_votes(CONVERSATION)
    records = [json.loads(line) for line in CONVERSATION.read_text().splitlines()]
    assert votes["winner"].tolist() == [record["winner"] for record in records]
    assert votes["tokens_a"].tolist() == [record["conv_metadata"]["sum_assistant_a_tokens"] for record in records]
    assert votes["lists_a"].tolist() == [record["conv_metadata"]["list_count_a"]["unordered"] for record in records]
    math = [record["category_tag"]["math_v0.1"]["math"] for record in records]
    assert votes["categories"].map(lambda tags: "math" in tags).tolist() == math
    assert votes["category_tag"].tolist() == [record["category_tag"] for record in records]


def test_both_fixtures_fit_and_agree_because_they_hold_the_same_votes(tmp_path):
    kaggle = fitted(KAGGLE, tmp_path=tmp_path)
    conversation = fitted(CONVERSATION, tmp_path=tmp_path)
    assert kaggle["n_votes"] == conversation["n_votes"] == 20
    # the same battles (a bothbad tie is a tie in the Kaggle layout, and ties count half either way)
    by_model = {row["model"]: row["rating"] for row in conversation["models"]}
    for row in kaggle["models"]:
        assert row["rating"] == pytest.approx(by_model[row["model"]], abs=1e-9)
    # a direct fit of the same counts is the known answer
    counts = PairCounts.from_frame(pd.read_json(CONVERSATION, lines=True)[["model_a", "model_b", "winner"]])
    direct = fit_leaderboard(counts)
    for name, rating in zip(direct.models, direct.rating):
        assert by_model[name] == pytest.approx(rating, abs=1e-9)
    styled = fitted(CONVERSATION, "--style-control", tmp_path=tmp_path)
    assert set(styled["settings"]["style_coefficients"]) == {"tokens", "headers", "lists", "bold"}
    # both category names filter LMArena's flags
    for where in ("category_tag=math", "categories=math", "category_tag=math_v0.1.math"):
        out = tmp_path / "math.json"
        code = main(["fit", str(CONVERSATION), "--quiet", "--alpha", "0.01", "--where", where, "--out", str(out)])
        assert code == 0 and json.loads(out.read_text())["n_votes"] == 3


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_convert_writes_each_layout_and_reads_back_the_same_votes(tmp_path, suffix):
    as_conversation = tmp_path / f"conversation.{suffix}"
    assert main(["convert", str(KAGGLE), str(as_conversation), "--layout", "conversation"]) == 0
    back = tmp_path / f"kaggle.{suffix}"
    assert main(["convert", str(as_conversation), str(back), "--layout", "kaggle"]) == 0
    original, again = load_votes(KAGGLE), load_votes(back)
    for column in ("model_a", "model_b", "winner", "prompt", "response_a", "response_b"):
        assert again[column].tolist() == original[column].tolist(), column
    conversation = load_votes(as_conversation)
    first = conversation["conversation_a"].iloc[3]
    first = first if isinstance(first, list) else list(first)
    turns = json.loads(original["prompt"].iloc[3])
    assert [message["content"] for message in first if message["role"] == "user"] == turns


def test_a_conversation_file_converts_back_unchanged(tmp_path):
    out = tmp_path / "again.jsonl"
    assert main(["convert", str(CONVERSATION), str(out), "--layout", "conversation"]) == 0
    original = [json.loads(line) for line in CONVERSATION.read_text().splitlines()]
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(again) == len(original)
    for before, after in zip(original, again):
        assert {key: before[key] for key in after} == after


def test_a_kaggle_row_without_exactly_one_winner_is_named(tmp_path):
    frame = pd.read_csv(KAGGLE)
    frame.loc[4, "winner_model_a"] = 1  # row 4 is a tie: now two columns are set
    path = tmp_path / "broken.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(VoteFileError, match=r"row 4: .*exactly one of winner_model_a, winner_model_b, winner_tie"):
        load_all(path)


def test_convert_counts_the_kwise_votes_it_cannot_write(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    rows = [{"model_a": "a", "model_b": "b", "winner": "model_a"}, {"model_a": "b", "model_b": "a", "winner": "tie"},
            {"ranking": [["a"], ["b"], ["c"]]}]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assert main(["convert", str(path), str(tmp_path / "out.csv"), "--layout", "kaggle"]) == 0
    assert "1 K-wise vote(s) left out" in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "out.csv")) == 2
