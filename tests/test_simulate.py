"""The matchmaker simulator: determinism, the "reaches and stays" rule, known-truth recovery, CLI output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arena.sim.simulate import main, median_or_none
from arena.sim.simulation import RunResult, SimConfig, run_one


def result_with(checkpoints, holds, join_at=0) -> RunResult:
    n = len(checkpoints)
    return RunResult("x", 2, 0, list(checkpoints), [0.0] * n, list(holds), list(holds), [0.0] * n,
                     join_at, checkpoints[-1], [1.0], 0.0)


def test_reaches_and_stays_is_the_first_checkpoint_after_the_last_failure():
    run = result_with([100, 200, 300, 400, 500], [False, True, False, True, True])
    assert run.votes_to(run.top_right) == 400
    assert run.votes_to([False, True, True, True, False]) is None
    assert run.votes_to([True] * 5) == 100
    # counted from the new model's arrival, ignoring checkpoints before it
    assert run.votes_to([None, None, False, True, True], start=250) == 400 - 250


def test_median_counts_never_reached_as_larger_than_any_budget():
    assert median_or_none([100, None, 300]) == 300
    assert median_or_none([None, None, 100]) is None
    assert median_or_none([100, 200, 300, 400]) == 250


def test_a_run_is_deterministic_for_a_seed():
    config = SimConfig(models=8, votes=600, early_stop=False)
    first = run_one("active", 2, 3, config)
    second = run_one("active", 2, 3, config)
    assert first.checkpoints == second.checkpoints
    assert first.tau == second.tau and first.rank_mse == second.rank_mse
    assert first.battle_share == second.battle_share
    other_seed = run_one("active", 2, 4, config)
    assert other_seed.tau != first.tau


@pytest.mark.parametrize("strategy,k", [("uniform", 2), ("active", 2), ("ucb", 4), ("uniform-elo", 2)])
def test_well_separated_models_are_ranked_correctly(strategy, k):
    """Known truth: 8 models with strengths spread 400 points, no vote noise (this seed has one
    near-tie, 107 vs 109 points, which may go either way)."""
    config = SimConfig(models=8, spread=400.0, votes=1200, noise=0.0, early_stop=False)
    run = run_one(strategy, k, 1, config)
    assert run.tau[-1] >= 0.78  # at most three of the 28 pairs out of order
    assert run.rank_mse[-1] <= 1.0


def test_new_model_joins_half_way_and_shares_are_reported():
    run = run_one("active", 2, 0, SimConfig(models=6, votes=800, early_stop=False))
    assert run.join_at == 400
    assert all(p is None for c, p in zip(run.checkpoints, run.new_placed) if c < 400)
    assert all(p is not None for c, p in zip(run.checkpoints, run.new_placed) if c > 400)
    assert len(run.battle_share) == 7
    assert np.all(np.array(run.battle_share) > 0)


def test_cli_writes_the_results_json(tmp_path, capsys):
    out = tmp_path / "sim.json"
    code = main(["--models", "6", "--votes", "400", "--k", "2", "--strategies", "uniform,active",
                 "--seeds", "2", "--quiet", "--out", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    rows = payload["results"]
    assert [(r["strategy"], r["k"]) for r in rows] == [("uniform", 2), ("active", 2)]
    for row in rows:
        assert set(row) >= {"strategy", "k", "votes_to_tau90", "votes_to_tau95", "votes_to_top5",
                            "votes_to_place_new", "seeds"}
        assert row["seeds"] == [0, 1]
    assert "tau90" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(capsys):
    assert main(["--strategies", "nope", "--votes", "10"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--k", "two"]) == 2


def test_runs_file_saves_runs_and_reuses_them(tmp_path):
    runs_file = tmp_path / "runs.jsonl"
    args = ["--models", "5", "--votes", "300", "--k", "2", "--strategies", "ucb", "--seeds", "2", "--quiet",
            "--runs-file", str(runs_file)]
    assert main(args + ["--out", str(tmp_path / "a.json")]) == 0
    assert len(runs_file.read_text().splitlines()) == 2
    assert main(args + ["--out", str(tmp_path / "b.json")]) == 0
    assert len(runs_file.read_text().splitlines()) == 2  # nothing re-run
    first = json.loads((tmp_path / "a.json").read_text())["results"]
    second = json.loads((tmp_path / "b.json").read_text())["results"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in first] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in second]


def test_cli_takes_the_live_fairness_knobs(tmp_path, monkeypatch):
    out = tmp_path / "sim.json"
    monkeypatch.setenv("ARENA_NEW_MODEL_CI", "25")
    args = ["--models", "5", "--votes", "200", "--k", "2", "--strategies", "uniform", "--seeds", "1", "--quiet"]
    assert main(args + ["--floor", "0.3", "--max-pair-share", "0.5", "--new-model-votes", "20", "--out", str(out)]) == 0
    config = json.loads(out.read_text())["config"]
    assert (config["floor"], config["max_pair_share"], config["new_model_votes"],
            config["new_model_ci"]) == (0.3, 0.5, 20, 25.0)
    with pytest.raises(SystemExit):
        main(args + ["--matchmaker-floor", "1.5"])
