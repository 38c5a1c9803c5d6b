"""``python -m leaderboard rebuild``: the counts and the snapshot again from the archive alone,
equal to what the worker publishes and to an offline fit of the same file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import redis

from arena.ops.redis_server import EmbeddedRedis
from leaderboard.cli import main
from leaderboard.data.archive import VoteArchive, archive_path
from leaderboard.store.redis_keys import flagged_voters_key, snapshot_key
from leaderboard.views.published import ViewIndex, view_id, view_index_key, view_snapshot_key, view_stats_key
from leaderboard.views.snapshot import Snapshot
from leaderboard.worker import VoteWorker
from tests.helpers import PROJECT_ROOT as ROOT
from tests.helpers import make_vote

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


def write_archive_with_exclusions(data_dir, seed: int = 5) -> None:
    """Honest votes in two categories and two languages, a few K-wise votes, votes on battles where
    a model may have revealed itself (identity_flags), and a voter pushing delta."""
    rng = np.random.default_rng(seed)
    votes = []
    for i in range(400):
        a, b = rng.choice(MODELS, size=2, replace=False)
        p_a = 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a]))
        outcome = "tie" if rng.random() < 0.1 else ("model_a" if rng.random() < p_a else "model_b")
        update = {"voter_id": f"honest-{i % 30}", "language": "en" if i % 3 else "de",
                  "categories": ["coding"] if i % 2 else ["creative_writing"]}
        if i % 7 == 0:  # the answers may have named their models: archived, rated only if asked
            update["identity_flags"] = ["names-itself:B" if outcome == "model_b" else "prompt-asks-identity"]
        votes.append(make_vote(str(a), str(b), outcome, vote_id=f"vote-{i:06d}").model_copy(update=update))
    for i in range(12):
        order = [str(name) for name in rng.permutation(MODELS)]
        votes.append(make_vote(ranking=[[name] for name in order], vote_id=f"kwise-{i:03d}"))
    for i in range(60):
        opponent = MODELS[i % 3]
        votes.append(make_vote("delta", opponent, "model_a", vote_id=f"attack-{i:03d}").model_copy(
            update={"voter_id": "attacker", "language": "en"}))
    with VoteArchive(archive_path(data_dir)) as archive:
        archive.extend(votes)


def published_views(client) -> dict[str, tuple]:
    """Every published view's numbers (its snapshot without generated_at and id, and its counts)."""
    index = ViewIndex.model_validate_json(client.get(view_index_key("arena")))
    views = {}
    for category in index.categories:
        for style_control in (False, True):
            view = view_id(category.name, style_control)
            snapshot = Snapshot.model_validate_json(client.get(view_snapshot_key("arena", view)))
            stats = json.loads(client.get(view_stats_key("arena", view)))
            views[view] = (snapshot.total_votes, snapshot.method, snapshot.note,
                           [(row.model, row.rating, row.lower, row.upper, row.rank, row.rank_lower, row.votes)
                            for row in snapshot.rows],
                           {key: value for key, value in stats.items() if key != "generated_at"})
    return views


@pytest.mark.parametrize("rate_deanonymised, flagged_voter_weight", [(False, 0.0), (True, 0.5)])
def test_rebuild_applies_the_workers_exclusions_identity_flags_and_flagged_voters(
        redis_url, redis_client, tmp_path, capsys, rate_deanonymised, flagged_voter_weight):
    write_archive_with_exclusions(tmp_path)
    # the anomaly test's verdict, as the worker leaves it in Redis (leaderboard.worker.voters)
    flagged = {"attacker": json.dumps({"model": "delta", "delta": 1.0, "log_evidence": 12.0, "threshold": 8.0,
                                       "votes": 60, "flagged_at": 1_700_000_000.0})}
    redis_client.hset(flagged_voters_key("arena"), mapping=flagged)
    worker = VoteWorker(redis_client, tmp_path, refit_interval=0.01, rate_deanonymised=rate_deanonymised,
                        flagged_voter_weight=flagged_voter_weight, min_category_votes=40)
    worker.process_once(block_ms=1)
    worker.refit_and_publish()
    worker.close()
    from_worker = published_views(redis_client)
    overall_note = from_worker[view_id()][2]
    assert "fewer than 100 vote(s) of fewer than 10 flagged voter(s)" in overall_note
    assert ("revealed itself" in overall_note) is not rate_deanonymised
    assert len(from_worker) >= 8  # overall, coding, creative writing, languages: each with and without style
    redis_client.flushall()  # Redis lost the boards; the operator's flags are restored (they are not in the archive)
    redis_client.hset(flagged_voters_key("arena"), mapping=flagged)

    argv = ["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url,
            "--flagged-voter-weight", str(flagged_voter_weight), "--min-category-votes", "40"]
    assert main(argv + (["--rate-deanonymised"] if rate_deanonymised else [])) == 0
    rebuilt = published_views(redis_client)
    assert rebuilt.keys() == from_worker.keys()
    for view, (total, method, note, rows, stats) in from_worker.items():
        assert rebuilt[view][:3] == (total, method, note), view
        assert [row[0] for row in rebuilt[view][3]] == [row[0] for row in rows], view
        assert np.allclose([row[1:] for row in rebuilt[view][3]], [row[1:] for row in rows], atol=1e-6), view
        assert rebuilt[view][4] == stats, view
    assert published(redis_client).note == overall_note  # snapshot_key too, the one the matchmaker reads
    assert "with every view" in capsys.readouterr().out


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

    # known answer: the offline fit of the same file (docs/researchers.md: --no-ipw --alpha 0.01 is the live fit)
    board = tmp_path / "board.json"
    assert main(["fit", str(archive_path(tmp_path)), "--no-ipw", "--alpha", "0.01", "--out", str(board),
                 "--quiet"]) == 0
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


def test_out_also_publishes_unless_no_publish(redis_url, redis_client, tmp_path, capsys):
    write_archive(tmp_path, n_votes=60)
    out = tmp_path / "snapshot.json"
    assert main(["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url, "--out", str(out)]) == 0
    assert "published the snapshot to" in capsys.readouterr().out  # --out is not a file-only form
    assert published(redis_client).total_votes == 60
    written = json.loads(out.read_text())
    assert [row["model"] for row in written["rows"]] == [row.model for row in published(redis_client).rows]

    redis_client.flushall()
    out.unlink()
    assert main(["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url, "--out", str(out),
                 "--no-publish"]) == 0
    printed = capsys.readouterr().out
    assert "not published (--no-publish)" in printed and "published the snapshot to" not in printed
    assert redis_client.keys("*") == []  # nothing written: no snapshot, no view, no index
    assert Snapshot.model_validate_json(out.read_text()).total_votes == 60

    assert main(["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url, "--no-publish"]) == 2
    assert "add --out" in capsys.readouterr().err
    assert redis_client.keys("*") == []


def test_a_missing_or_damaged_archive_is_one_clear_error(tmp_path, redis_url, capsys):
    assert main(["rebuild", "--data-dir", str(tmp_path / "nowhere"), "--redis-url", redis_url]) == 2
    assert "no vote archive at" in capsys.readouterr().err
    write_archive(tmp_path, n_votes=5)
    with archive_path(tmp_path).open("ab") as archive:
        archive.write(b'{"not": "a vote"}\n')
    assert main(["rebuild", "--data-dir", str(tmp_path), "--redis-url", redis_url]) == 2
    assert "line 6: not a valid vote" in capsys.readouterr().err


def test_a_flagged_voter_left_out_is_out_of_every_view_not_only_the_overall_one(redis_url, redis_client, tmp_path):
    """With weight 0, every view (categories, languages, style control) equals the same view fitted
    from the archive without that voter's votes."""
    def views_of(data_dir, flagged):
        redis_client.flushall()
        if flagged:
            redis_client.hset(flagged_voters_key("arena"), "attacker", json.dumps({"model": "delta", "votes": 60}))
        worker = VoteWorker(redis_client, data_dir, refit_interval=0.01, flagged_voter_weight=0.0,
                            min_category_votes=40)
        worker.process_once(block_ms=1)
        worker.refit_and_publish()
        worker.close()
        return published_views(redis_client)

    write_archive_with_exclusions(tmp_path / "all")
    with_attacker = views_of(tmp_path / "all", flagged=True)
    honest = tmp_path / "honest"
    with VoteArchive(archive_path(honest)) as archive:
        with VoteArchive(archive_path(tmp_path / "all")) as source:
            archive.extend([vote for vote in source if vote.voter_id != "attacker"])
    without_attacker = views_of(honest, flagged=False)
    compared = sorted(with_attacker.keys() & without_attacker.keys())
    assert {"overall", "overall+style", "language:en", "language:en+style"} <= set(compared)
    for view in compared:
        rows, expected = with_attacker[view][3], without_attacker[view][3]
        assert [row[0] for row in rows] == [row[0] for row in expected], view
        assert np.allclose([row[1:4] for row in rows], [row[1:4] for row in expected], atol=1e-6), view
        if view.startswith(("overall", "language:en")):  # the attacker voted there: the note says so
            note = with_attacker[view][2]
            assert "fewer than 100 vote(s) of fewer than 10 flagged voter(s)" in note and "left out" in note
