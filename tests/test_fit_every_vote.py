"""fit never drops a vote silently (K-wise votes fitted jointly, or counted out loud), and bootstrap
intervals that cannot be bounded say so instead of crashing or writing a bare null."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leaderboard.cli import main
from leaderboard.data.events import StyleFeatures, VoteEvent
from leaderboard.live.policy import rate
from leaderboard.live.tally import VoteTally

MODELS = ["m-a", "m-b", "m-c", "m-d"]


def archive_events(n_pairwise: int = 120, n_kwise: int = 30, seed: int = 5) -> list[VoteEvent]:
    rng = np.random.default_rng(seed)
    strength = dict(zip(MODELS, [0.6, 0.2, -0.1, -0.7]))
    events = []
    for n in range(n_pairwise + n_kwise):
        kwise = n >= n_pairwise
        chosen = list(rng.choice(MODELS, size=4 if kwise else 2, replace=False))
        noisy = sorted(chosen, key=lambda name: -(strength[name] + rng.gumbel()))
        style = [StyleFeatures(tokens=int(rng.integers(5, 50)), headers=0, list_items=int(rng.integers(0, 3)), bold=0)
                 for _ in chosen]
        common = dict(vote_id=f"{n:032x}", battle_id=f"{n:032x}", models=chosen, voter_id=f"v_{n % 7}",
                      served_at=1000.0 + n, voted_at=1001.0 + n, selection_probability=0.2, style=style)
        if kwise:
            ranking = [[noisy[0]], [noisy[1], noisy[2]], [noisy[3]]] if n % 3 == 0 else [[name] for name in noisy]
            events.append(VoteEvent(mode="kwise", ranking=ranking, **common))
        else:
            outcome = "tie" if rng.random() < 0.1 else ("model_a" if noisy[0] == chosen[0] else "model_b")
            events.append(VoteEvent(mode="anonymous", outcome=outcome, **common))
    return events


@pytest.fixture
def mixed_archive(tmp_path):
    path = tmp_path / "votes.jsonl"
    events = archive_events()
    path.write_text("".join(event.model_dump_json() + "\n" for event in events))
    return path, events


def test_the_default_fit_takes_kwise_votes_jointly_as_the_worker_does(mixed_archive, tmp_path):
    path, events = mixed_archive
    out = tmp_path / "board.json"
    assert main(["fit", str(path), "--quiet", "--no-ipw", "--alpha", "0.01", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["n_votes"] == len(events) == 150
    assert document["method"] == "plackett-luce+sandwich"
    assert "30 K-wise vote(s) fitted jointly with 120 pairwise" in document["settings"]["note"]
    live = rate(VoteTally.from_events(events), alpha=0.01)  # the live worker's fit of the same votes
    by_model = {row["model"]: row for row in document["models"]}
    for row in live.rows():
        assert by_model[row["model"]]["rating"] == pytest.approx(row["rating"], abs=1e-6)
        assert by_model[row["model"]]["upper"] == pytest.approx(row["upper"], abs=1e-6)
    # --method plackett-luce fits the same votes (no longer only the K-wise ones)
    assert main(["fit", str(path), "--quiet", "--no-ipw", "--alpha", "0.01", "--method", "plackett-luce",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_votes"] == 150


def test_a_fit_that_cannot_take_kwise_votes_says_how_many_it_left_out(mixed_archive, tmp_path, capsys):
    path, _ = mixed_archive
    out = tmp_path / "board.json"
    for option, why in ((["--style-control"], "style control"), (["--ties", "davidson"], "the Davidson tie model")):
        assert main(["fit", str(path), "--quiet", *option, "--out", str(out)]) == 0
        said = capsys.readouterr().err
        assert f"warning: 30 K-wise vote(s) left out: {why} fits pairwise votes only" in said
        document = json.loads(out.read_text())
        assert document["n_votes"] == 120 and document["settings"]["left_out_votes"] == 30
    assert main(["fit", str(path), "--quiet", "--method", "elo", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["n_votes"] == 150 and "read as all their pairwise comparisons" in document["settings"]["note"]


def small_file(tmp_path, unbeaten_losses: int) -> str:
    """30 votes among four models; model 'top' loses ``unbeaten_losses`` of its votes."""
    rng = np.random.default_rng(11)
    rows = []
    others = ["b", "c", "d"]
    for n in range(30):
        if n % 3 == 0:
            rows.append(("top", others[n % 3 if n % 2 else (n // 3) % 3], "model_a"))
        else:
            a, b = rng.choice(others, 2, replace=False)
            rows.append((a, b, "model_a" if rng.random() < 0.5 else "model_b"))
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])
    frame.loc[frame.index[frame["model_a"] == "top"][:unbeaten_losses], "winner"] = "model_b"
    path = tmp_path / f"small-{unbeaten_losses}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_bootstrap_on_thirty_votes_with_an_unbeaten_model(tmp_path, capsys):
    unbeaten = small_file(tmp_path, 0)
    # no finite maximum-likelihood rating at all: a clear error naming the model and the remedy
    assert main(["fit", unbeaten, "--ci", "bootstrap", "--quiet"]) == 2
    said = capsys.readouterr().err
    assert "['top']" in said and "never lost" in said and "alpha" in said and "Traceback" not in said
    # with a prior every replicate is finite: a table, no note
    assert main(["fit", unbeaten, "--ci", "bootstrap", "--alpha", "0.01", "--quiet"]) == 0
    assert "unbounded" not in capsys.readouterr().out

    # one loss: the fit exists, but in many resamples 'top' never loses
    once = small_file(tmp_path, 1)
    assert main(["fit", once, "--ci", "bootstrap", "--quiet"]) == 0
    table = capsys.readouterr().out
    top = next(line for line in table.splitlines() if line.split()[1:2] == ["top"])
    assert "+inf]" in top and top.endswith("unbounded")
    assert "top: upper bound unbounded:" in table and "of 1000 bootstrap replicates had no finite estimate" in table

    out = tmp_path / "board.json"
    assert main(["fit", once, "--ci", "bootstrap", "--quiet", "--out", str(out)]) == 0
    rows = {row["model"]: row for row in json.loads(out.read_text())["models"]}
    assert rows["top"]["upper"] is None and rows["top"]["lower"] is not None
    note = rows["top"]["note"]
    count = int(note.split("unbounded: ")[1].split(" of ")[0])
    assert 25 < count < 1000  # more than the 2.5% tail, fewer than all
    assert "more votes for it, or --alpha > 0" in note
    assert all("note" not in row for name, row in rows.items() if row["upper"] is not None and row["lower"] is not None)


def test_a_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, capsys):
    frame = pd.read_csv(small_file(tmp_path, 1))
    frame.loc[frame.index[::4], "winner"] = "tie"  # Davidson needs ties
    path = str(tmp_path / "ties.csv")
    frame.to_csv(path, index=False)
    out = str(tmp_path / "board.json")
    for extra in ([], ["--ties", "davidson"], ["--method", "plackett-luce"]):
        assert main(["fit", path, "--ci", "bootstrap", "--bootstrap", "50", "--alpha", "0.01", "--out", out,
                     *extra]) == 0
        assert "replicate" not in capsys.readouterr().err  # stderr is not a terminal here
        assert main(["fit", path, "--ci", "bootstrap", "--bootstrap", "50", "--alpha", "0.01", "--out", out,
                     "--progress", *extra]) == 0
        assert "50/50" in capsys.readouterr().err


def test_a_condition_kwise_votes_cannot_meet_leaves_them_out_out_loud(mixed_archive, tmp_path, capsys):
    path, _ = mixed_archive
    out = tmp_path / "board.json"
    assert main(["fit", str(path), "--quiet", "--where", "tokens_a>10", "--out", str(out)]) == 0
    assert "warning: 30 K-wise vote(s) left out: they have no column tokens_a" in capsys.readouterr().err
    document = json.loads(out.read_text())
    assert document["settings"]["left_out_votes"] == 30 and 0 < document["n_votes"] <= 120
    # a column both kinds have filters both
    assert main(["fit", str(path), "--quiet", "--where", "voter_id=v_3", "--out", str(out)]) == 0
    assert "left out" not in capsys.readouterr().err
    assert json.loads(out.read_text())["n_votes"] == sum(1 for n in range(150) if n % 7 == 3)
