"""``python -m leaderboard rebuild``: the counts and the snapshot again from the archive alone,
equal to what the worker publishes and to an offline fit of the same file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import redis

from arena.redis_server import EmbeddedRedis
from leaderboard.archive import VoteArchive, archive_path
from leaderboard.cli import main
from leaderboard.redis_keys import snapshot_key
from leaderboard.snapshot import Snapshot
from leaderboard.worker import VoteWorker
from tests.helpers import PROJECT_ROOT as ROOT, make_vote

MODELS = ["alpha", "beta", "gamma", "delta"]
STRENGTH = {"alpha": 1.0, "beta": 0.4, "gamma": 0.0, "delta": -0.6}


def write_archive(data_dir, n_votes: int = 300, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    votes = []
    for i in range(n_votes):
        a, b = rng.choice(MODELS, size=2, replace=False)
        p_a = 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a]))
        outcome = "tie" if rng.random() < 0.1 else ("model_a" if rng.random() < p_a else "model_b")
        votes.append(make_vote(str(a), str(b), outcome, vote_id=f"vote-{i:06d}"))
    with VoteArchive(archive_path(data_dir)) as archive:
        archive.extend(votes)


def published(client) -> Snapshot:
    return Snapshot.model_validate_json(client.get(snapshot_key("arena")))


def test_rebuild_publishes_what_the_worker_publishes_from_the_same_archive(redis_url, redis_client, tmp_path, capsys):
    write_archive(tmp_path)
    worker = VoteWorker(redis_client, tmp_path, refit_interval=0.01)
    worker.process_once(block_ms=1)
    from_worker = worker.refit_and_publish()
    worker.close()
    redis_client.flushall()  # Redis lost everything; the archive is the record

    assert main(["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url]) == 0
    rebuilt = published(redis_client)
    assert rebuilt.total_votes == from_worker.total_votes == 300
    assert rebuilt.method == from_worker.method == "bradley-terry+sandwich"
    assert [row.model for row in rebuilt.rows] == [row.model for row in from_worker.rows] == MODELS
    for mine, theirs in zip(rebuilt.rows, from_worker.rows):
        assert mine.votes == theirs.votes
        assert abs(mine.rating - theirs.rating) < 1e-6 and abs(mine.upper - theirs.upper) < 1e-6
    out = capsys.readouterr().out
    assert out.startswith("300 archived vote(s): 300 rated, 0 named (not rated); 4 model(s); bradley-terry+sandwich")
    assert "published the snapshot to" in out

    # known answer: the offline fit of the same file (README: --no-ipw --alpha 0.01 is the live fit)
    board = tmp_path / "board.json"
    assert main(["fit", str(archive_path(tmp_path)), "--no-ipw", "--alpha", "0.01", "--out", str(board), "--quiet"]) == 0
    offline = {row["model"]: row["rating"] for row in json.loads(board.read_text())["models"]}
    for row in rebuilt.rows:
        assert abs(row.rating - offline[row.model]) < 1e-4


def test_rebuild_finds_the_running_embedded_redis_and_can_write_a_file_instead(tmp_path):
    write_archive(tmp_path / "data", n_votes=40)
    missing = subprocess.run([sys.executable, "-m", "leaderboard", "rebuild", "--data-dir", str(tmp_path / "data")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert missing.returncode == 2 and "no Redis to publish to" in missing.stderr
    out = tmp_path / "snapshot.json"
    assert main(["rebuild", "--data-dir", str(tmp_path / "data"), "--out", str(out)]) == 0
    assert Snapshot.model_validate_json(out.read_text()).total_votes == 40

    with EmbeddedRedis(tmp_path / "data" / "redis") as server:  # as a running `serve` leaves it
        found = subprocess.run([sys.executable, "-m", "leaderboard", "rebuild", "--data-dir", str(tmp_path / "data")],
                               cwd=ROOT, capture_output=True, text=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert found.returncode == 0, found.stderr
        assert published(redis.Redis.from_url(server.url)).total_votes == 40


def test_a_missing_or_damaged_archive_is_one_clear_error(tmp_path, redis_url, capsys):
    assert main(["rebuild", "--data-dir", str(tmp_path / "nowhere"), "--redis-url", redis_url]) == 2
    assert "no vote archive at" in capsys.readouterr().err
    write_archive(tmp_path, n_votes=5)
    with archive_path(tmp_path).open("ab") as archive:
        archive.write(b'{"not": "a vote"}\n')
    assert main(["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url]) == 2
    assert "line 6: not a valid vote" in capsys.readouterr().err
