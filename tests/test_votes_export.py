"""/api/votes end to end: a real arena (uvicorn, Redis, demo endpoints) with pairwise votes cast
through the API and K-wise votes in the stream; every format read back by the fit CLI's loader."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time

import httpx
import pandas as pd
import pytest

from arena.cli.serve import ArenaStack
from leaderboard.cli import main as leaderboard_main
from leaderboard.data.events import StyleFeatures, VoteEvent
from leaderboard.data.export import RELEASE_KEY_FILE
from leaderboard.data.loading import load_all
from leaderboard.store.redis_keys import vote_stream_key
from tests.helpers import arena_settings, signed_entry

KWISE_RANKINGS = [[["k1"], ["k2", "k3"], ["k4"]], [["k4"], ["k1"], ["k2"], ["k3"]], [["k3"], ["k1", "k2", "k4"]]]


def cast_pairwise(http: httpx.Client, outcomes: list[str], feedback: str | None = None) -> list[dict]:
    """Battles voted through the API: (battle response, vote receipt) pairs."""
    cast = []
    for n, outcome in enumerate(outcomes):
        battle = http.post("/api/battles", json={"prompt": f"Question number {n}?"}).json()
        vote = {"outcome": outcome} | ({"feedback": feedback} if feedback else {})
        receipt = http.post(f"/api/battles/{battle['battle_id']}/vote", json=vote,
                            headers={"X-Arena-Session": battle["session"]})
        assert receipt.status_code == 200, receipt.text
        cast.append({"battle": battle, "receipt": receipt.json()})
    return cast


def kwise_rankings(names: list[str]) -> list[list[list[str]]]:
    """KWISE_RANKINGS over four of the arena's models (so every vote is on one comparison graph)."""
    rename = {f"k{k + 1}": name for k, name in enumerate(sorted(names)[:4])}
    return [[[rename[name] for name in group] for group in ranking] for ranking in KWISE_RANKINGS]


def add_kwise(redis_client, names: list[str], voted_at: float, text: bool = False) -> list[VoteEvent]:
    events = []
    for n, ranking in enumerate(kwise_rankings(names)):
        models = sorted(name for group in ranking for name in group)
        style = [StyleFeatures(tokens=10 + k, headers=k, list_items=0, bold=1) for k in range(len(models))]
        event = VoteEvent(vote_id=f"kw{n:030x}", battle_id=f"kb{n:030x}", mode="kwise", models=models, ranking=ranking,
                          voter_id=f"v_kwise{n}", served_at=voted_at - 5, voted_at=voted_at, selection_probability=0.25,
                          style=style, categories=["multi_turn"] if n == 0 else [], turns=2 if n == 0 else 1)
        fields = signed_entry(event)
        if text:
            fields["text"] = json.dumps({"prompts": ["rank us"], "answers": [[f"answer {m}"] for m in models]})
        redis_client.xadd(vote_stream_key("arena"), fields)
        events.append(event)
    return events


def download(http: httpx.Client, fmt: str, tmp_path, **params) -> tuple[pd.DataFrame, object]:
    response = http.get("/api/votes", params={"format": fmt, **params})
    assert response.status_code == 200, response.text
    path = tmp_path / f"export-{fmt}-{len(params)}.{fmt}"
    path.write_bytes(response.content)
    if fmt == "parquet":
        frame = pd.read_parquet(io.BytesIO(response.content))
    elif fmt == "csv":
        frame = pd.read_csv(io.BytesIO(response.content), dtype=str, keep_default_na=False)
    else:
        frame = pd.DataFrame([json.loads(line) for line in response.text.splitlines()])
    return frame, path


@pytest.fixture
def stack(redis_url, tmp_path):
    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False)) as running:
        yield running


def test_every_vote_in_every_format_fits_back(stack, redis_client, tmp_path):
    outcomes = ["model_a", "model_b", "tie", "tie (bothbad)", "model_a", "model_b"]
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        cast_pairwise(http, outcomes)
        kwise = add_kwise(redis_client, stack.endpoints.names, time.time())
        for fmt in ("jsonl", "csv", "parquet"):
            frame, path = download(http, fmt, tmp_path)
            assert len(frame) == len(outcomes) + len(kwise), fmt
            assert frame.columns[:4].tolist() == ["question_id", "model_a", "model_b", "winner"]
            is_kwise = frame["mode"] == "kwise"
            assert is_kwise.sum() == len(kwise) and sorted(frame.loc[~is_kwise, "winner"]) == sorted(outcomes)
            empty = frame.loc[is_kwise, ["model_a", "model_b", "winner"]]
            assert empty.map(lambda cell: cell is None or cell == "" or cell != cell).all().all(), fmt
            # text is not released by default
            assert "conversation_a" not in frame.columns and "feedback" not in frame.columns
            assert "identity_flags" in frame.columns
            pairwise, rankings = load_all(path)
            assert len(pairwise) == len(outcomes) and len(rankings) == len(kwise), fmt
            assert rankings["ranking"].tolist() == kwise_rankings(stack.endpoints.names), fmt
            assert rankings["categories"].tolist()[0] == ["multi_turn"]
            out = tmp_path / f"board-{fmt}.json"
            assert leaderboard_main(["fit", str(path), "--quiet", "--alpha", "0.01", "--out", str(out)]) == 0
            board = json.loads(out.read_text())
            assert board["n_votes"] == len(outcomes) + len(kwise), fmt
            assert board["method"].startswith("plackett-luce") and "fitted jointly" in board["settings"]["note"]
            # the one category name filters the export in every format
            tagged = tmp_path / f"tagged-{fmt}.json"
            assert leaderboard_main(["fit", str(path), "--quiet", "--alpha", "0.01", "--method", "plackett-luce",
                                     "--where", "categories=multi_turn", "--out", str(tagged)]) == 0
            assert json.loads(tagged.read_text())["n_votes"] == 1


def test_since_keeps_only_later_votes(stack, redis_client, tmp_path):
    now = time.time()
    add_kwise(redis_client, stack.endpoints.names, now - 7200)  # two hours ago
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        cast_pairwise(http, ["model_a", "model_b"])
        for fmt in ("jsonl", "csv", "parquet"):
            everything, _ = download(http, fmt, tmp_path)
            recent, _ = download(http, fmt, tmp_path, since=now - 60)
            assert len(everything) == 5 and len(recent) == 2, fmt
            assert set(recent["mode"]) == {"anonymous"}
            assert pd.to_numeric(recent["tstamp"]).min() >= now - 60
        assert download(http, "jsonl", tmp_path, since=time.time() + 60)[0].empty


def test_judge_is_a_release_pseudonym_stable_within_a_release(stack, redis_client, tmp_path):
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        cast_pairwise(http, ["model_a", "tie"])
        first, _ = download(http, "jsonl", tmp_path)
        again, _ = download(http, "csv", tmp_path)
    events = [VoteEvent.model_validate_json(fields[b"event"])
              for _, fields in redis_client.xrange(vote_stream_key("arena"))]
    live = {event.vote_id: event.voter_id for event in events}
    key_file = tmp_path / RELEASE_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip().encode()
    for _, row in first.iterrows():
        voter = live[row["vote_id"]]
        assert row["judge"] != voter and voter not in json.dumps(row.to_dict())
        assert row["judge"] == "r_" + hmac.new(key, voter.encode(), hashlib.sha256).hexdigest()[:20]
    assert first["judge"].tolist() == again["judge"].tolist()  # stable within the release
    assert first["judge"].nunique() == 1  # one client address, one voter, one pseudonym


def test_a_new_release_key_gives_new_pseudonyms_and_text_only_when_released(redis_url, tmp_path, redis_client):
    settings = arena_settings(redis_url, tmp_path, run_worker=False, release_text=True,
                              release_key="another-release-key-0123456789")
    with ArenaStack(settings) as running, httpx.Client(base_url=running.url, timeout=60) as http:
        cast = cast_pairwise(http, ["model_b"], feedback="B gave the steps in order.")
        add_kwise(redis_client, running.endpoints.names, time.time(), text=True)
        frame, path = download(http, "jsonl", tmp_path)
        parquet, _ = download(http, "parquet", tmp_path)
    assert not (tmp_path / RELEASE_KEY_FILE).exists()  # the configured key is used, no file made
    row = frame[frame["mode"] == "anonymous"].iloc[0]
    live = next(VoteEvent.model_validate_json(fields[b"event"]).voter_id
                for _, fields in redis_client.xrange(vote_stream_key("arena")))
    assert row["judge"] == "r_" + hmac.new(b"another-release-key-0123456789", live.encode(),
                                           hashlib.sha256).hexdigest()[:20]
    battle = cast[0]["battle"]
    assert row["conversation_a"] == [{"role": "user", "content": "Question number 0?"},
                                     {"role": "assistant", "content": battle["answers"][0]["text"]}]
    assert row["conversation_b"][1]["content"] == battle["answers"][1]["text"]
    kwise = frame[frame["mode"] == "kwise"].iloc[0]
    assert [conversation[1]["content"] for conversation in kwise["conversations"]] == \
        [f"answer {m}" for m in kwise["models"]]
    assert parquet["conversation_a"].notna().sum() == 1
    assert row["feedback"] == "B gave the steps in order."  # the voter's reason travels with the text
    assert parquet["feedback"].dropna().tolist() == ["B gave the steps in order."]
    pairwise, _ = load_all(path)  # text columns do not get in the way of a fit
    assert len(pairwise) == 1


def test_the_api_document_names_every_export_column_in_order():
    """docs/api.md's /api/votes row lists EXPORT_COLUMNS exactly, in order, and names each text column."""
    import re

    from leaderboard.data.export import EXPORT_COLUMNS, TEXT_COLUMNS
    from tests.helpers import PROJECT_ROOT

    document = (PROJECT_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    row = next(line for line in document.splitlines() if line.startswith("| `GET /api/votes"))
    named = {word for quoted in re.findall(r"`([^`]*)`", row) for word in re.split(r"[\s,=]+", quoted) if word}
    assert [column for column in (*EXPORT_COLUMNS, *TEXT_COLUMNS) if column not in named] == []
    listed = re.search(r"Columns, in this order[^`]*`([^`]*)`", row)
    assert listed is not None, "the row does not list the columns in order"
    assert [name.strip() for name in listed.group(1).split(",")] == list(EXPORT_COLUMNS)
