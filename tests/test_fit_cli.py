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
from leaderboard.models.result import ELO

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
    votes = pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "B wins"]})
    votes.to_csv(path, index=False)
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


@pytest.mark.parametrize("extra, method", [
    ([], "bradley-terry+sandwich"),
    (["--ci", "none"], "bradley-terry"),
    (["--ties", "davidson"], "bradley-terry-davidson+sandwich"),
    (["--style-control"], "bradley-terry+style-control+sandwich"),
    (["--style-control", "--ci", "none"], "bradley-terry+style-control"),
    (["--method", "elo"], ELO),
])
def test_every_method_writes_the_one_documented_document(votes_file, tmp_path, extra, method):
    out = tmp_path / "board.json"
    assert main(["fit", str(votes_file), "--out", str(out), "--quiet", *extra]) == 0
    document = json.loads(out.read_text())
    assert set(document) == {"models", "method", "settings", "n_votes"}
    assert document["method"] == method and document["n_votes"] == 3000
    style_control = "--style-control" in extra
    row_fields = {"model", "rating", "lower", "upper", "rank", "rank_lower", "votes"}
    row_fields |= {"rank_change"} if style_control else set()
    assert all(set(row) == row_fields for row in document["models"])
    assert ("style_coefficients" in document["settings"]) == style_control
    if style_control:
        assert set(document["settings"]["style_coefficient_se"]) == {"tokens", "headers", "lists", "bold"}
    intervals = "+" in method.replace("+style-control", "")
    assert all((row["lower"] < row["rating"] < row["upper"]) == intervals for row in document["models"])
    if method != ELO:  # every fit reports what its Newton solver did
        assert document["settings"]["max_abs_gradient"] < 1e-8 and document["settings"]["newton_iterations"] >= 1


def test_plackett_luce_method_writes_the_same_document(tmp_path):
    path = tmp_path / "votes.jsonl"
    rng = np.random.default_rng(1)
    lines = []
    for k in range(300):
        order = [str(name) for name in rng.permutation(["p", "q", "r", "s"])]
        event = make_kwise_event(k, order)
        lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "board.json"
    assert main(["fit", str(path), "--method", "plackett-luce", "--out", str(out), "--quiet"]) == 0
    document = json.loads(out.read_text())
    assert document["method"] == "plackett-luce+sandwich" and document["n_votes"] == 300
    assert {row["model"] for row in document["models"]} == {"p", "q", "r", "s"}
    assert document["settings"]["file"] == str(path) and document["settings"]["max_abs_gradient"] < 1e-8


def make_kwise_event(k: int, order: list[str]) -> dict:
    """One K-wise vote of our archive, strict ranking ``order`` (best first)."""
    style = {"tokens": 10, "headers": 0, "list_items": 0, "bold": 0}
    return {"vote_id": f"{k:032x}", "battle_id": f"{k:032x}", "mode": "kwise", "models": sorted(order),
            "outcome": None, "ranking": [[name] for name in order], "voter_id": "v_1", "served_at": 1.0,
            "voted_at": 2.0, "selection_probability": 0.5, "style": [style] * len(order)}


@pytest.fixture
def unbounded_file(tmp_path):
    """A model with 1 win and 6 losses: it loses its only win in about a third of the bootstrap
    resamples, so its lower bound is unbounded (see test_intervals)."""
    rng = np.random.default_rng(12)
    names = np.array(["m0", "m1", "m2", "m3"], dtype=object)
    a = rng.integers(0, 4, 2000)
    b = (a + rng.integers(1, 4, 2000)) % 4
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": rng.choice(["model_a", "model_b"], 2000)})
    extra = pd.DataFrame({"model_a": ["new"] * 7, "model_b": ["m0", "m1", "m2", "m3", "m0", "m1", "m2"],
                          "winner": ["model_a"] + ["model_b"] * 6})
    path = tmp_path / "votes.csv"
    pd.concat([frame, extra], ignore_index=True).to_csv(path, index=False)
    return path


def test_unbounded_bootstrap_intervals_are_shown_and_warned_about(unbounded_file, tmp_path, capsys):
    assert main(["fit", str(unbounded_file), "--bootstrap", "200", "--quiet"]) == 0
    captured = capsys.readouterr()
    new = next(line for line in captured.out.splitlines() if " new " in line)
    assert "[-inf, " in new
    assert "warning: 1 model(s) have unbounded 95% intervals" in captured.err
    assert "won every comparison or lost every one" in captured.err

    out = tmp_path / "board.json"
    assert main(["fit", str(unbounded_file), "--bootstrap", "200", "--quiet", "--out", str(out)]) == 0
    assert "warning: 1 model(s) have unbounded" in capsys.readouterr().err
    row = next(r for r in json.loads(out.read_text())["models"] if r["model"] == "new")
    assert row["lower"] is None and row["upper"] is not None


def test_no_warning_when_every_interval_is_bounded(votes_file, capsys):
    assert main(["fit", str(votes_file), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


# -- named (non-anonymous) votes: left out by default, as on the live board and LMArena's -------------

def _named_and_anonymous_events() -> list:
    """Anonymous pairwise and K-wise votes, plus named ones (pairwise and a K-wise ranking) that
    all favour "w", the weakest model of the anonymous votes, so keeping them moves the board."""
    from leaderboard.data.events import StyleFeatures, VoteEvent

    rng = np.random.default_rng(5)
    names = ["w", "x", "y", "z"]
    theta = {"w": -0.6, "x": 0.0, "y": 0.3, "z": 0.7}
    events = []

    def add(mode, models, outcome=None, ranking=None):
        k = len(events)
        events.append(VoteEvent(
            vote_id=f"{k:032x}", battle_id=f"b{k:031x}", mode=mode, models=models, outcome=outcome, ranking=ranking,
            voter_id=f"voter-{k % 7}", served_at=1000.0 + k, voted_at=1001.0 + k, selection_probability=0.5,
            style=[StyleFeatures(tokens=int(rng.integers(10, 90)), headers=0, list_items=0, bold=0) for _ in models]))

    for _ in range(400):
        a, b = rng.choice(names, 2, replace=False)
        p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
        add("anonymous", [str(a), str(b)], outcome="model_a" if rng.random() < p_a else "model_b")
    for _ in range(60):
        order = sorted(names, key=lambda name: -theta[name] - rng.gumbel())
        add("kwise", list(names), ranking=[[name] for name in order])
    for _ in range(80):
        other = str(rng.choice(names[1:]))
        add("named", ["w", other], outcome="model_a")
    for _ in range(30):
        add("named", list(names), ranking=[["w"], ["z"], ["y"], ["x"]])
    return events


def _write_export(events, path: Path) -> None:
    """The /api/votes download of ``events`` (its format from the suffix); ``*.archive.jsonl``: our archive."""
    from leaderboard.data.export import ExportWriter, Pseudonyms, export_row

    if path.name.endswith(".archive.jsonl"):
        path.write_text("".join(event.model_dump_json() + "\n" for event in events))
        return
    writer = ExportWriter(path.suffix.lstrip("."))
    pseudonyms = Pseudonyms(b"k" * 32)
    path.write_bytes(writer.write([export_row(event, pseudonyms) for event in events]) + writer.finish())


def _as_anonymous(event):
    return event.model_copy(update={"mode": "kwise" if event.is_ranking else "anonymous"})


def _fit_document(path: Path, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f"board-{path.stem}-{len(list(tmp_path.iterdir()))}.json"
    assert main(["fit", str(path), "--out", str(out), "--quiet", *extra]) == 0
    return json.loads(out.read_text())


def _ratings(document: dict) -> dict:
    """model -> rating, its bounds and votes, flat (pytest.approx compares flat mappings)."""
    return {f"{row['model']}.{field}": row[field] for row in document["models"]
            for field in ("rating", "lower", "upper", "votes")}


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "archive.jsonl"])
def test_fit_leaves_named_votes_out_unless_include_named(tmp_path, capsys, suffix):
    events = _named_and_anonymous_events()
    anonymous = [event for event in events if event.mode != "named"]
    n_named = len(events) - len(anonymous)
    mixed, anonymous_only, all_anonymous = (tmp_path / f"{name}.{suffix}" for name in ("mixed", "anon", "every"))
    _write_export(events, mixed)
    _write_export(anonymous, anonymous_only)
    _write_export([_as_anonymous(event) for event in events], all_anonymous)  # every vote, as if anonymous

    default = _fit_document(mixed, tmp_path)
    assert "note: 110 named (non-anonymous) vote(s) left out; --include-named keeps them" in capsys.readouterr().err
    assert n_named == 110 and default["settings"]["named_left_out"] == n_named
    assert default["n_votes"] == len(anonymous)
    expected = _ratings(_fit_document(anonymous_only, tmp_path))
    assert _ratings(default) == pytest.approx(expected)

    kept = _fit_document(mixed, tmp_path, "--include-named")
    assert "named" not in capsys.readouterr().err
    assert kept["n_votes"] == len(events) and "named_left_out" not in kept["settings"]
    assert _ratings(kept) == pytest.approx(_ratings(_fit_document(all_anonymous, tmp_path)))
    assert _ratings(kept)["w.rating"] > _ratings(default)["w.rating"] + 20  # the named votes do move the board

    # a --where on anony (or mode) chooses for itself: the named votes alone, or the anonymous ones
    if suffix == "archive.jsonl":  # the archive has mode, not anony
        assert _fit_document(mixed, tmp_path, "--where", "mode=named", "--alpha", "0.01")["n_votes"] == n_named
        return
    only_named = _fit_document(mixed, tmp_path, "--where", "anony=false", "--alpha", "0.01")  # w won them all
    assert only_named["n_votes"] == n_named
    assert _ratings(_fit_document(mixed, tmp_path, "--where", "anony=true")) == pytest.approx(expected)
    assert _fit_document(mixed, tmp_path, "--where", "mode=named", "--alpha", "0.01")["n_votes"] == n_named


def test_fit_of_named_votes_only_says_how_to_keep_them(tmp_path, capsys):
    path = tmp_path / "named.csv"
    pd.DataFrame({"model_a": ["a", "b"], "model_b": ["b", "a"], "winner": ["model_a", "tie"],
                  "anony": [False, False]}).to_csv(path, index=False)
    assert main(["fit", str(path), "--quiet"]) == 2
    assert "all 2 votes are named (non-anonymous); --include-named fits them" in capsys.readouterr().err
    assert main(["fit", str(path), "--quiet", "--include-named"]) == 0


def test_fit_live_refuses_include_named(tmp_path, capsys):
    path = tmp_path / "votes.jsonl"
    _write_export(_named_and_anonymous_events(), path)
    assert main(["fit", str(path), "--live", "--include-named", "--quiet"]) == 2
    assert "--include-named" in capsys.readouterr().err
