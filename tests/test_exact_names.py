"""Files read exactly as written: model names that look like numbers, booleans or missing values stay
the same text through every format and every method; plain rankings files fit by Plackett-Luce."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leaderboard.cli import main
from leaderboard.data.loading import load_all, load_votes
from leaderboard.fit import fit_plackett_luce

NAMES = ["0", "1e3", "007", "NaN", "null", "true", "NA", "None"]
FORMATS = ["csv", "jsonl", "json", "parquet"]
METHODS = [[], ["--ci", "bootstrap", "--bootstrap", "50"], ["--ties", "davidson"], ["--style-control"],
           ["--method", "elo"], ["--method", "plackett-luce"]]


def weird_votes(n: int = 1200, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strength = np.linspace(-0.6, 0.6, len(NAMES))
    a = rng.integers(0, len(NAMES), n)
    b = (a + rng.integers(1, len(NAMES), n)) % len(NAMES)
    p_a = 1.0 / (1.0 + np.exp(strength[b] - strength[a]))
    winner = np.where(rng.random(n) < 0.15, "tie", np.where(rng.random(n) < p_a, "model_a", "model_b"))
    names = np.array(NAMES, dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})
    for feature in ("tokens", "headers", "lists", "bold"):
        frame[f"{feature}_a"] = rng.poisson(4, n)
        frame[f"{feature}_b"] = rng.poisson(4, n)
    return frame


def write(frame: pd.DataFrame, path) -> None:
    """As other tools write these files: pandas' CSV (no quoting), JSON records, Parquet strings."""
    fmt = path.suffix[1:]
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in frame.to_dict(orient="records")))
    else:
        path.write_text(json.dumps(frame.to_dict(orient="records")))


@pytest.mark.parametrize("fmt", FORMATS)
def test_names_survive_loading_in_every_format(tmp_path, fmt):
    frame = weird_votes()
    path = tmp_path / f"votes.{fmt}"
    write(frame, path)
    votes = load_votes(path)
    assert votes["model_a"].tolist() == frame["model_a"].tolist()
    assert votes["model_b"].tolist() == frame["model_b"].tolist()
    assert all(isinstance(name, str) for name in votes["model_a"])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: " ".join(m) or "default")
def test_names_survive_every_method(tmp_path, fmt, method):
    path = tmp_path / f"votes.{fmt}"
    write(weird_votes(), path)
    out = tmp_path / "board.json"
    assert main(["fit", str(path), "--quiet", "--out", str(out), *method]) == 0
    document = json.loads(out.read_text())
    assert sorted(row["model"] for row in document["models"]) == sorted(NAMES)
    assert document["n_votes"] == 1200
    table_out = tmp_path / "board.csv"
    assert main(["fit", str(path), "--quiet", "--out", str(table_out), *method]) == 0
    table = pd.read_csv(table_out, dtype={"model": str}, keep_default_na=False)
    assert sorted(table["model"]) == sorted(NAMES)


def test_a_name_numeric_in_one_column_only_stays_one_model(tmp_path):
    # pandas would read model_b (all numeric-looking) as floats: '1e3' -> 1000.0, '007' -> 7.0
    frame = pd.DataFrame({"model_a": ["x", "y", "x", "y", "1e3", "007"],
                          "model_b": ["1e3", "007", "007", "1e3", "x", "y"],
                          "winner": ["model_a", "model_b", "tie", "model_a", "model_b", "model_a"]})
    path = tmp_path / "votes.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "board.json"
    assert main(["fit", str(path), "--quiet", "--alpha", "0.01", "--out", str(out)]) == 0
    assert sorted(row["model"] for row in json.loads(out.read_text())["models"]) == ["007", "1e3", "x", "y"]


def test_the_elo_table_prints_text_names(tmp_path, capsys):
    path = tmp_path / "votes.csv"
    write(weird_votes(), path)
    assert main(["fit", str(path), "--quiet", "--method", "elo"]) == 0
    printed = capsys.readouterr().out
    listed = [line.split()[1] for line in printed.splitlines()[1:1 + len(NAMES)]]
    assert sorted(listed) == sorted(NAMES)


def test_elo_refuses_groups_that_never_met_as_bradley_terry_does(tmp_path, capsys):
    frame = pd.DataFrame({"model_a": ["a", "b", "c", "d"] * 5, "model_b": ["b", "a", "d", "c"] * 5,
                          "winner": ["model_a", "model_b", "tie", "model_a"] * 5})
    path = tmp_path / "split.csv"
    frame.to_csv(path, index=False)
    for method in ("bradley-terry", "elo"):
        assert main(["fit", str(path), "--quiet", "--method", method]) == 2
        assert "2 groups that were never compared" in capsys.readouterr().err


# ---- plain rankings files ---------------------------------------------------------------------

def rankings_data(seed: int = 2, n: int = 400):
    rng = np.random.default_rng(seed)
    strength = np.linspace(-0.8, 0.8, len(NAMES))
    rankings, probabilities = [], []
    for _ in range(n):
        chosen = rng.choice(len(NAMES), size=int(rng.integers(3, 5)), replace=False)
        gumbel = strength[chosen] + rng.gumbel(size=chosen.size)
        rankings.append([[NAMES[k]] for k in chosen[np.argsort(-gumbel)]])
        probabilities.append(float(rng.choice([0.1, 0.25, 0.5])))
    return rankings, probabilities


@pytest.mark.parametrize("layout", ["jsonl", "json", "csv", "parquet"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_plain_rankings_file_fits_by_plackett_luce(tmp_path, capsys, layout, weighted):
    rankings, probabilities = rankings_data()
    records = [{"ranking": ranking, **({"selection_probability": p} if weighted else {})}
               for ranking, p in zip(rankings, probabilities)]
    path = tmp_path / f"rankings.{layout}"
    if layout == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    elif layout == "json":
        path.write_text(json.dumps(records))
    elif layout == "parquet":
        pd.DataFrame(records).to_parquet(path)
    else:  # first, second, third, ... with an empty cell where a ranking is shorter
        places = ["first", "second", "third", "fourth"]
        frame = pd.DataFrame([{place: (ranking[k][0] if k < len(ranking) else "") for k, place in enumerate(places)}
                              for ranking in rankings])
        if weighted:
            frame["selection_probability"] = probabilities
        frame.to_csv(path, index=False)
    _, loaded = load_all(path)
    assert loaded["ranking"].tolist() == rankings
    out = tmp_path / "board.json"
    assert main(["fit", str(path), "--method", "plackett-luce", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["method"] == "plackett-luce+sandwich" and document["n_votes"] == len(rankings)
    weights = 1.0 / np.array(probabilities) if weighted else None
    reference = fit_plackett_luce(rankings, weights=None if weights is None else weights / weights.mean())
    by_model = {row["model"]: row for row in document["models"]}
    for name, rating, lower in zip(reference.models, reference.rating, reference.lower):
        assert by_model[name]["rating"] == pytest.approx(rating, abs=1e-6)
        assert by_model[name]["lower"] == pytest.approx(lower, abs=1e-6)
    said = capsys.readouterr().err
    assert ("no selection probabilities in the file: the votes are fitted unweighted" in said) == (not weighted)
