"""Leaderboard views: the worker publishes overall and every category, with and without style
control; each equals a fit of exactly that view's votes; a restart rebuilds them; the API reads
them (404s named); ``fit --live`` reproduces them from the archive to 0.01 rating points."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import numpy as np
import pandas as pd
import pytest

from arena.battles.prompt_profile import is_hard_prompt, prompt_language
from arena.cli.serve import ArenaStack
from leaderboard.data.counts import PairCounts
from leaderboard.data.events import StyleFeatures, VoteEvent
from leaderboard.data.rankings import all_pairs
from leaderboard.fit import fit_leaderboard, fit_plackett_luce, fit_style_control
from leaderboard.store.redis_keys import snapshot_key, vote_stream_key
from leaderboard.views.categories import vote_categories
from leaderboard.views.published import (
    RatingPoint,
    ViewIndex,
    ViewStats,
    rating_history_key,
    view_id,
    view_index_key,
    view_snapshot_key,
    view_stats_key,
)
from leaderboard.views.snapshot import Snapshot
from leaderboard.worker import DEFAULT_PRIOR_PRECISION, VoteWorker
from tests.helpers import PROJECT_ROOT, TEST_VOTE_KEY, arena_settings, signed_entry, wait_until

MODELS = ["alpha", "beta", "gamma", "delta"]
STRENGTH = {"alpha": 1.0, "beta": 0.4, "gamma": 0.0, "delta": -0.6}
DAY = 86_400.0
START = 1_760_000_000.0


def synthetic_events(seed=7, n_pairwise=400, n_kwise=40):
    """Pairwise and K-wise votes (a third of these partial: the best only) from a known Bradley-Terry
    truth, in three categories of different sizes (coding ~40%, German ~25%, multi-turn ~8%: below a threshold of 40
    when n is small)."""
    rng = np.random.default_rng(seed)
    events = []
    for k in range(n_pairwise + n_kwise):
        kwise = k >= n_pairwise
        chosen = list(rng.choice(MODELS, size=4 if kwise else 2, replace=False))
        tags = ["code"] if rng.random() < 0.4 else []
        if rng.random() < 0.1:
            tags.append("math")
        turns = 2 if rng.random() < 0.08 else 1
        language = "de" if rng.random() < 0.25 else "en"
        voted_at = START + DAY * (k % 3) + k
        style = [StyleFeatures(tokens=int(rng.integers(20, 400)), headers=int(rng.integers(0, 4)),
                               list_items=int(rng.integers(0, 6)), bold=int(rng.integers(0, 3))) for _ in chosen]
        common = dict(vote_id=uuid.uuid4().hex, battle_id=uuid.uuid4().hex, voter_id=f"voter-{k % 97}",
                      served_at=voted_at - 1, voted_at=voted_at, selection_probability=0.5, style=style,
                      categories=tags, turns=turns, language=language)
        # longer answers win more often: style control has something to find
        utility = (np.array([STRENGTH[m] + 0.002 * s.tokens for m, s in zip(chosen, style)])
                   + rng.gumbel(size=len(chosen)))
        order = [chosen[i] for i in np.argsort(-utility)]
        if kwise and k % 3 == 0:  # "best only": a partial ranking, the other three shown but not ranked
            events.append(VoteEvent(mode="kwise", models=chosen, ranking=[[order[0]]], unranked=order[1:], **common))
        elif kwise:
            events.append(VoteEvent(mode="kwise", models=chosen, ranking=[[m] for m in order], **common))
        else:
            outcome = "tie" if rng.random() < 0.1 else ("model_a" if order[0] == chosen[0] else "model_b")
            events.append(VoteEvent(mode="anonymous", models=chosen, outcome=outcome, **common))
    return events


def xadd(client, events):
    for event in events:
        client.xadd(vote_stream_key("arena"), signed_entry(event))


def drain(worker):
    while worker.process_once(block_ms=0):
        pass


def read(client, key, model):
    raw = client.get(key)
    assert raw is not None, f"nothing at {key}"
    return model.model_validate_json(raw)


def ratings(snapshot: Snapshot) -> dict[str, float]:
    return {row.model: row.rating for row in snapshot.rows}


def in_category(events, category):
    return [e for e in events
            if category == "overall" or category in vote_categories(e.categories, e.turns, e.language)]


def pairwise_frame(events):
    rows = []
    for e in events:
        if e.mode == "kwise":
            continue
        row = {"model_a": e.models[0], "model_b": e.models[1], "winner": e.outcome}
        for side, s in zip("ab", e.style):
            row.update({f"tokens_{side}": s.tokens, f"headers_{side}": s.headers, f"lists_{side}": s.list_items,
                        f"bold_{side}": s.bold})
        rows.append(row)
    return pd.DataFrame(rows)


def reference_fit(events, style_control=False):
    """The view's fit computed straight from its votes with the public fitters (not the worker's code)."""
    frame = pairwise_frame(events)
    if style_control:
        return fit_style_control(frame, alpha=DEFAULT_PRIOR_PRECISION)
    rankings = [e.full_ranking() for e in events if e.mode == "kwise"]
    if rankings:
        pairwise = [[[a], [b]] if w == "model_a" else [[b], [a]] if w == "model_b" else [[a, b]]
                    for a, b, w in zip(frame["model_a"], frame["model_b"], frame["winner"])]
        return fit_plackett_luce(pairwise + rankings, alpha=DEFAULT_PRIOR_PRECISION)
    return fit_leaderboard(PairCounts.from_frame(frame), alpha=DEFAULT_PRIOR_PRECISION)


def assert_same_ratings(snapshot, result, tol=1e-6):
    expected = dict(zip(result.models, result.rating))
    assert ratings(snapshot).keys() == expected.keys()
    for model, rating in ratings(snapshot).items():
        assert rating == pytest.approx(expected[model], abs=tol), model


@pytest.fixture
def published(redis_client, tmp_path):
    events = synthetic_events()
    xadd(redis_client, events)
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, min_category_votes=40, history_spacing=0.0)
    drain(worker)
    worker.refit_and_publish()
    yield events, worker
    worker.close()


def test_prompt_language_and_hard_prompt_rule():
    assert prompt_language(["Wie spät ist es heute in Berlin, und wie wird das Wetter?"]) == "de"
    assert prompt_language(["What is the capital of France, and why?"]) == "en"
    assert prompt_language(["hi"]) is None  # too short to tell
    assert not is_hard_prompt(["hello there"])
    assert is_hard_prompt(["Implement a function in Python that must run in O(n log n) and should use only "
                           "constant extra memory. Explain why it is correct, then prove the bound on its "
                           "running time. What happens with duplicate keys? What about an empty input?"])


def test_vote_categories_rule():
    assert vote_categories(["code", "math"], 1, "de") == ("coding", "language:de", "math")
    assert vote_categories([], 3, None) == ("multi_turn",)
    assert (vote_categories(["long_prompt", "hard_prompt", "coding"], 1, None)
            == ("coding", "hard_prompts", "long_prompt"))


def test_worker_publishes_every_view_with_the_right_counts(published, redis_client):
    events, worker = published
    index = read(redis_client, view_index_key("arena"), ViewIndex)
    names = [info.name for info in index.categories]
    expected_counts = {name: len(in_category(events, name)) for name in
                       ("overall", "coding", "language:en", "language:de", "multi_turn", "math")}
    # overall first; every category with >= 40 votes; multi-turn / math below it stay out
    assert names[0] == "overall" and index.min_category_votes == 40 and index.style_control
    published_names = {name for name, count in expected_counts.items() if count >= 40}
    assert set(names) == published_names
    assert {"coding", "language:en", "language:de"} <= published_names
    assert any(count < 40 for count in expected_counts.values())  # the threshold was exercised
    for info in index.categories:
        assert info.votes == expected_counts[info.name]
        assert info.kind == {"overall": "overall", "coding": "derived", "multi_turn": "derived",
                             "math": "tag"}.get(info.name, "language")
        plain = read(redis_client, view_snapshot_key("arena", view_id(info.name)), Snapshot)
        styled = read(redis_client, view_snapshot_key("arena", view_id(info.name, True)), Snapshot)
        view_events = in_category(events, info.name)
        n_kwise = sum(e.mode == "kwise" for e in view_events)
        assert n_kwise > 0
        # K-wise votes are in every plain view, fitted jointly; style views take the pairwise votes
        assert plain.total_votes == len(view_events) and "plackett-luce" in plain.method
        assert styled.total_votes == len(view_events) - n_kwise and "style" in styled.method
        assert f"{n_kwise} K-wise vote(s) are left out" in styled.note
        # known answers: a category view is the fit of only that category's votes
        assert_same_ratings(plain, reference_fit(view_events))
        assert_same_ratings(styled, reference_fit(view_events, style_control=True))
        history = redis_client.lrange(rating_history_key("arena", info.name), 0, -1)
        assert len(history) == 1 and RatingPoint.model_validate_json(history[0]).ratings == ratings(plain)
    # the overall view is also the matchmaker's snapshot, with its covariance
    overall = read(redis_client, snapshot_key("arena"), Snapshot)
    assert ratings(overall) == ratings(read(redis_client, view_snapshot_key("arena", "overall"), Snapshot))
    assert len(overall.covariance) == len(MODELS)


def test_view_stats_count_every_comparison(published, redis_client):
    events, _ = published
    for view, category in (("overall", "overall"), ("coding+style", "coding")):
        stats = read(redis_client, view_stats_key("arena", view), ViewStats)
        index = {m: k for k, m in enumerate(stats.models)}
        battles, wins, ties = (np.array(m) for m in (stats.battles, stats.wins, stats.ties))
        expected_battles = np.zeros_like(battles)
        expected_wins = np.zeros_like(wins)
        for e in in_category(events, category):
            pairs = all_pairs(e.full_ranking()) if e.mode == "kwise" else [(e.models[0], e.models[1], e.outcome)]
            for a, b, outcome in pairs:
                i, j = index[a], index[b]
                expected_battles[i, j] += 1
                expected_battles[j, i] += 1
                if outcome == "model_a":
                    expected_wins[i, j] += 1
                elif outcome == "model_b":
                    expected_wins[j, i] += 1
        assert (battles == expected_battles).all() and (wins == expected_wins).all()
        assert (ties == ties.T).all() and (wins + wins.T + ties == battles).all()
        assert stats.days == ["2025-10-09", "2025-10-10", "2025-10-11"]
        per_model = {m: sum(m in e.models for e in in_category(events, category)) for m in MODELS}
        assert {m: sum(stats.votes_by_day[index[m]]) for m in MODELS} == per_model
    styled = read(redis_client, view_stats_key("arena", "coding+style"), ViewStats)
    assert set(styled.style_coefficients) == {"tokens", "headers", "lists", "bold"}
    assert styled.style_coefficients["tokens"] > 0  # the synthetic voters favour longer answers
    answers = [(s.tokens, m) for e in in_category(events, "coding") if e.mode != "kwise"
               for m, s in zip(e.models, e.style)]
    alpha_tokens = [t for t, m in answers if m == "alpha"]
    assert styled.style_means["alpha"]["tokens"] == pytest.approx(np.mean(alpha_tokens))


def test_a_restarted_worker_rebuilds_every_view_from_the_archive(published, redis_client, tmp_path):
    events, worker = published
    before = {key: read(redis_client, key, Snapshot) for key in
              (view_snapshot_key("arena", view_id(c, s))
               for c in ("overall", "coding", "language:de") for s in (False, True))}
    worker.close()
    for key in before:
        redis_client.delete(key)
    again = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, min_category_votes=40, history_spacing=0.0)
    try:
        drain(again)
        assert again.views.votes == worker.views.votes  # counts rebuilt from the archive, none twice
        again.refit_and_publish()
        for key, snapshot in before.items():
            rebuilt = read(redis_client, key, Snapshot)
            assert rebuilt.total_votes == snapshot.total_votes
            for model, rating in ratings(rebuilt).items():
                assert rating == pytest.approx(ratings(snapshot)[model], abs=1e-6)
    finally:
        again.close()


# ---- the API -------------------------------------------------------------------------------------

@pytest.fixture
def views_stack(redis_url, tmp_path, redis_client):
    """The whole arena with its worker, fed the synthetic votes through the stream."""
    with ArenaStack(arena_settings(redis_url, tmp_path, min_category_votes=40)) as stack:
        events = synthetic_events()
        xadd(redis_client, events)
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            wait_until(lambda board: board["total_votes"] == len(events),
                       observe=lambda: http.get("/api/leaderboard").json(), what="the synthetic votes on the board")
            wait_until(lambda body: len(body["categories"]) > 1 and body["categories"][0]["votes"] == len(events),
                       observe=lambda: http.get("/api/leaderboard/categories").json(), what="the category index")
            yield stack, http, events


def test_api_serves_views_csv_categories_and_model_stats(views_stack, redis_client):
    stack, http, events = views_stack
    categories = http.get("/api/leaderboard/categories").json()
    assert [c["name"] for c in categories["categories"]][0] == "overall"
    assert {c["name"]: c["votes"] for c in categories["categories"]}["coding"] == len(in_category(events, "coding"))

    board = http.get("/api/leaderboard").json()
    assert {"generated_at", "total_votes", "method", "models", "note"} <= board.keys()  # today's fields
    assert board["category"] == "overall" and board["style_control"] is False
    coding = http.get("/api/leaderboard", params={"category": "coding", "style_control": "true"}).json()
    assert coding["view"] == "coding+style" and "style" in coding["method"]
    stored = Snapshot.model_validate_json(redis_client.get(view_snapshot_key("arena", "coding+style")))
    assert [(r["model"], r["rating"]) for r in coding["models"]] == [(r.model, r.rating) for r in stored.rows]
    assert all("rank_change" in row for row in coding["models"])

    missing = http.get("/api/leaderboard", params={"category": "klingon"})
    assert missing.status_code == 404
    assert "unknown category 'klingon'" in missing.json()["detail"] and "coding" in missing.json()["detail"]
    assert http.get("/api/leaderboard.csv", params={"category": "klingon"}).status_code == 404

    csv_response = http.get("/api/leaderboard.csv", params={"category": "coding", "style_control": "true"})
    assert csv_response.status_code == 200 and csv_response.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(pd.io.common.StringIO(csv_response.text), dtype={"model": str})
    assert list(table["model"]) == [r["model"] for r in coding["models"]]
    assert np.allclose(table["rating"], [r["rating"] for r in coding["models"]])

    stats = http.get("/api/models/alpha/stats").json()
    against_beta = next(row for row in stats["opponents"] if row["opponent"] == "beta")
    expected = [p for e in events for p in (all_pairs(e.full_ranking()) if e.mode == "kwise" else
                                            [(e.models[0], e.models[1], e.outcome)]) if {"alpha", "beta"} == set(p[:2])]
    wins = sum((a == "alpha" and o == "model_a") or (b == "alpha" and o == "model_b") for a, b, o in expected)
    assert (against_beta["battles"], against_beta["wins"]) == (len(expected), wins)
    assert against_beta["wins"] + against_beta["losses"] + against_beta["ties"] == against_beta["battles"]
    assert sum(stats["votes_by_day"]) == sum("alpha" in e.models for e in events)
    assert set(stats["style_means"]) == {"tokens", "headers", "lists", "bold"}
    assert {"overall", "overall+style", "coding", "coding+style"} <= stats["ratings"].keys()
    assert stats["ratings"]["coding"]["rating"] == next(r["rating"] for r in http.get(
        "/api/leaderboard", params={"category": "coding"}).json()["models"] if r["model"] == "alpha")
    unknown = http.get("/api/models/nobody/stats")
    assert unknown.status_code == 404 and "unknown model 'nobody'" in unknown.json()["detail"]


# ---- fit --live ------------------------------------------------------------------------------------

def fit_live(path, *extra):
    done = subprocess.run([sys.executable, "-m", "leaderboard", "fit", str(path), "--live", *extra,
                           "--out", str(path.parent / "live.json"), "--quiet"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads((path.parent / "live.json").read_text())


@pytest.mark.parametrize("category, style_control", [("overall", False), ("coding", False), ("overall", True),
                                                     ("language:de", True)])
def test_fit_live_reproduces_the_api_to_a_hundredth(views_stack, category, style_control):
    stack, http, events = views_stack
    board = http.get("/api/leaderboard",
                     params={"category": category, "style_control": str(style_control).lower()}).json()
    archive = stack.settings.data_dir / "votes.jsonl"
    document = fit_live(archive, *(["--category", category] if category != "overall" else []),
                        *(["--style-control"] if style_control else []))
    live = {row["model"]: row for row in document["models"]}
    assert document["n_votes"] == board["total_votes"]
    assert document["method"] == board["method"]
    for row in board["models"]:
        for field in ("rating", "lower", "upper"):
            assert abs(live[row["model"]][field] - row[field]) <= 0.01, (row["model"], field)
        assert live[row["model"]]["rank"] == row["rank"] and live[row["model"]]["votes"] == row["votes"]


def test_fit_live_refuses_unknown_categories_and_conflicting_options(tmp_path):
    archive = tmp_path / "votes.jsonl"
    archive.write_text("".join(e.model_dump_json() + "\n" for e in synthetic_events(n_pairwise=60, n_kwise=0)))
    unknown = subprocess.run([sys.executable, "-m", "leaderboard", "fit", str(archive), "--live",
                              "--category", "klingon"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown category 'klingon'" in unknown.stderr and "coding" in unknown.stderr
    both = subprocess.run([sys.executable, "-m", "leaderboard", "fit", str(archive), "--live", "--alpha", "1"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert both.returncode == 2 and "drop --alpha" in both.stderr


def test_fit_live_reproduces_the_api_from_the_vote_export(redis_url, tmp_path, redis_client):
    """The /api/votes download (pairwise rows in LMArena's columns, K-wise rows with ``ranking``),
    in every format, fed to fit --live gives the page's numbers: overall, a category, and style
    control (pairwise only, as on the live board). Some votes had answers regenerated: their
    ``regenerations`` column is a list in every format, and the fit reads past it."""
    events = [event.model_copy(update={"regenerations": [1 + index % 2] + [0] * (len(event.models) - 1)})
              if index % 5 == 0 else event for index, event in enumerate(synthetic_events(n_pairwise=300, n_kwise=40))]
    regenerated = {event.vote_id: event.regenerations for event in events if event.regenerations}
    with ArenaStack(arena_settings(redis_url, tmp_path / "arena", min_category_votes=40)) as stack:
        xadd(redis_client, events)
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            wait_until(lambda body: body["categories"][0]["votes"] == len(events),
                       observe=lambda: http.get("/api/leaderboard/categories").json(), what="the votes on the board")
            for fmt in ("jsonl", "csv", "parquet"):
                export = tmp_path / f"votes.{fmt}"
                export.write_bytes(http.get("/api/votes", params={"format": fmt}).content)
                assert exported_regenerations(export) == regenerated, fmt
                for category, style_control in (("overall", False), ("coding", False), ("coding", True),
                                                ("overall", True)):
                    board = http.get("/api/leaderboard", params={"category": category,
                                                                 "style_control": str(style_control).lower()}).json()
                    document = fit_live(export, "--category", category, *(["--style-control"] if style_control else []))
                    live = {row["model"]: row for row in document["models"]}
                    assert document["n_votes"] == board["total_votes"], (fmt, category, style_control)
                    if not style_control:  # K-wise votes are in the view: the file's rankings were fitted
                        assert board["total_votes"] == len(in_category(events, category))
                    for row in board["models"]:
                        assert abs(live[row["model"]]["rating"] - row["rating"]) <= 0.01, (fmt, category, row["model"])
                        assert abs(live[row["model"]]["upper"] - row["upper"]) <= 0.01


def exported_regenerations(export) -> dict:
    """vote_id -> regenerations of the rows of a vote download that have some, read back as the fit reads it."""
    import pandas as pd

    from leaderboard.data.tables import read_csv_exact, read_json_lines_exact

    if export.suffix == ".csv":
        frame = read_csv_exact(export)
    elif export.suffix == ".parquet":
        frame = pd.read_parquet(export)
    else:
        with export.open() as handle:
            frame = read_json_lines_exact(handle)
    # none: null in JSON lines and Parquet, an empty cell (NaN) in CSV; some: a list (an array from Parquet)
    return {row["vote_id"]: [int(count) for count in row["regenerations"]] for row in frame.to_dict("records")
            if not isinstance(row["regenerations"], (type(None), float, str))}


def test_views_without_new_votes_are_not_refitted(published, redis_client):
    """A refit after votes in one category only rewrites the views those votes are in."""
    events, worker = published
    before = {view: redis_client.get(view_snapshot_key("arena", view)) for view in ("overall", "coding", "coding+style",
                                                                                    "language:de", "language:de+style")}
    extra = [e.model_copy(update={"vote_id": uuid.uuid4().hex, "categories": ["code"], "language": "en", "turns": 1})
             for e in events[:5] if e.mode != "kwise"]
    xadd(redis_client, extra)
    drain(worker)
    worker.refit_and_publish()
    after = {view: redis_client.get(view_snapshot_key("arena", view)) for view in before}
    assert after["language:de"] == before["language:de"] and after["language:de+style"] == before["language:de+style"]
    for view in ("overall", "coding", "coding+style"):
        assert after[view] != before[view]
        assert Snapshot.model_validate_json(after[view]).total_votes == \
            Snapshot.model_validate_json(before[view]).total_votes + len(extra)


def test_a_real_vote_carries_its_prompts_language_and_categories(arena_stack, redis_client):
    with httpx.Client(base_url=arena_stack.url, timeout=30) as http:
        battle = http.post("/api/battles", json={"prompt": "Wie kann ich am schnellsten Spanisch lernen, "
                                                           "und welche Bücher empfehlen Sie dafür?"}).json()
        vote = http.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_a"},
                         headers={"X-Arena-Session": battle["session"]})
        assert vote.status_code == 200, vote.text
    events = [VoteEvent.model_validate_json(fields[b"event"])
              for _, fields in redis_client.xrange(vote_stream_key("arena"))]
    mine = next(e for e in events if e.battle_id == battle["battle_id"])
    assert mine.language == "de"
    assert vote_categories(mine.categories, mine.turns, mine.language) == ("language:de",)
