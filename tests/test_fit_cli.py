"""The command line: python -m leaderboard fit / worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leaderboard.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def votes_file(tmp_path):
    rng = np.random.default_rng(0)
    theta = np.array([-0.5, 0.0, 0.2, 0.6])
    n = 3000
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    outcome = np.where(rng.random(n) < 0.2, "tie", np.where(rng.random(n) < p_a, "model_a", "model_b"))
    names = np.array(["w", "x", "y", "z"], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": outcome,
                          "language": np.where(rng.random(n) < 0.5, "English", "German")})
    for feature in ("tokens", "headers", "lists", "bold"):
        frame[f"{feature}_a"] = rng.poisson(5, n)
        frame[f"{feature}_b"] = rng.poisson(5, n)
    path = tmp_path / "votes.parquet"
    frame.to_parquet(path)
    return path


def test_fit_writes_the_json_document(votes_file, tmp_path):
    out = tmp_path / "board.json"
    assert main(["fit", str(votes_file), "--out", str(out), "--quiet"]) == 0
    document = json.loads(out.read_text())
    assert [row["model"] for row in document["models"]] == ["z", "y", "x", "w"]
    assert set(document["models"][0]) == {"model", "rating", "lower", "upper", "rank", "rank_lower", "votes"}
    assert document["n_votes"] == 3000
    assert document["settings"]["ci"] == "sandwich" and document["settings"]["ties"] == "half"
    ratings = [row["rating"] for row in document["models"]]
    assert ratings == sorted(ratings, reverse=True) and np.mean(ratings) == pytest.approx(1000.0)
    assert sum(row["votes"] for row in document["models"]) == 2 * 3000


def test_bootstrap_where_anchor_and_csv(votes_file, tmp_path):
    out = tmp_path / "board.csv"
    argv = ["fit", str(votes_file), "--bootstrap", "200", "--seed", "3", "--where", "language=German",
            "--anchor", "x=1100", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["model", "rating", "lower", "upper", "rank", "rank_lower", "votes"]
    x = table[table["model"] == "x"].iloc[0]
    assert x["rating"] == pytest.approx(1100.0) and x["lower"] == pytest.approx(1100.0)
    assert table["votes"].sum() < 2 * 3000  # only the German half
    first = out.read_text()
    assert main(argv) == 0 and out.read_text() == first  # seeded: identical


def test_style_control_elo_and_davidson_run(votes_file, capsys):
    for extra in (["--style-control"], ["--method", "elo"], ["--ties", "davidson"]):
        assert main(["fit", str(votes_file), "--quiet", *extra]) == 0
        printed = capsys.readouterr().out
        assert "rank" in printed and "z" in printed and "3000 votes" in printed


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    path = tmp_path / "votes.csv"
    pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "B wins"]}).to_csv(path, index=False)
    assert main(["fit", str(path), "--quiet"]) == 2
    assert "unknown outcome 'B wins'" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "missing.csv"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["fit", str(path), "--anchor", "nonsense", "--quiet"]) == 2


def test_python_m_leaderboard_runs_and_dispatches_the_worker(votes_file):
    fit = subprocess.run([sys.executable, "-m", "leaderboard", "fit", str(votes_file)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert fit.returncode == 0, fit.stderr
    assert fit.stdout.splitlines()[1].split()[1] == "z"
    worker = subprocess.run([sys.executable, "-m", "leaderboard", "worker", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0 and "python -m leaderboard worker" in worker.stdout
