"""The one reader of the published board (leaderboard.views.reader) against a real Redis: the sync
read the matchmaker and the operator use, the asyncio reader the web process uses, the overall
fallback to ``snapshot_key``, and parsing each document once, exactly until it is rewritten."""

from __future__ import annotations

import numpy as np
import pytest
import redis.asyncio as aioredis

from leaderboard.store.redis_keys import snapshot_key
from leaderboard.views.published import view_snapshot_key
from leaderboard.views.reader import (
    BoardReader,
    latest_snapshot,
    parse_rating_history,
    parse_snapshot,
    parse_view_index,
    parse_view_stats,
)
from tests.helpers import make_board, make_snapshot, publish, publish_board

OVERALL = {"a": 1200.0, "b": 1100.0, "c": 1000.0}
CODING = {"c": 1300.0, "a": 900.0}


@pytest.fixture
async def reader(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield BoardReader(client, "arena")
    await client.aclose()


def test_nothing_published_parses_to_nothing(redis_client):
    assert latest_snapshot(redis_client, "arena") is None
    assert parse_snapshot(None) is parse_view_index(b"") is parse_view_stats(None) is None
    assert parse_rating_history([]) == []


def test_the_sync_read_is_the_published_snapshot(redis_client):
    snapshot = make_snapshot(["a", "b"], [0.5, -0.5], np.eye(2) * 0.01, [10, 10], generated_at=7.0)
    publish(redis_client, snapshot)
    read = latest_snapshot(redis_client, "arena")
    assert read == snapshot and read.id == repr(7.0)
    assert latest_snapshot(redis_client, "other-prefix") is None


def test_a_document_that_breaks_the_contract_is_refused(redis_client):
    redis_client.set(snapshot_key("arena"), b'{"generated_at": 1.0}')
    with pytest.raises(ValueError, match="total_votes"):
        latest_snapshot(redis_client, "arena")


async def test_overall_falls_back_to_the_latest_snapshot_and_no_other_view_does(reader, redis_client):
    snapshot = make_snapshot(["a", "b"], [0.5, -0.5], np.eye(2) * 0.01, [10, 10], generated_at=3.0)
    publish(redis_client, snapshot)  # a worker older than the views: snapshot_key only
    assert (await reader.snapshot("overall")) == snapshot
    assert await reader.snapshot("overall+style") is None and await reader.snapshot("coding") is None
    assert await reader.index() is None and await reader.stats("overall") is None
    assert (await reader.latest_snapshot()) == snapshot


async def test_a_view_is_read_from_its_own_key(reader, redis_client):
    publish_board(redis_client, make_board({"overall": OVERALL, "coding": CODING}, generated_at=50.0))
    coding = await reader.snapshot("coding")
    assert [row.model for row in coding.rows] == ["c", "a"]
    assert (await reader.stats("coding")).models == ["c", "a"]
    assert [info.name for info in (await reader.index()).categories] == ["overall", "coding"]


async def test_a_document_is_parsed_once_until_it_is_rewritten(reader, redis_client):
    publish_board(redis_client, make_board({"overall": OVERALL, "coding": CODING}, generated_at=100.0))
    first = await reader.view("coding")
    again = await reader.view("coding")
    assert again.snapshot is first.snapshot and again.stats is first.stats and again.history is first.history
    assert await reader.snapshot("coding") is first.snapshot  # the API and the page share the parsed document

    # a new cycle that leaves coding alone (the worker does not rewrite a view without new votes)
    overall_only = make_board({"overall": dict(OVERALL, a=1500.0)}, generated_at=101.0)
    publish_board(redis_client, overall_only)
    assert (await reader.snapshot("coding")) is first.snapshot
    assert (await reader.snapshot("overall")).rows[0].rating == 1500.0

    # rewritten under the same cycle time: still read anew (the bytes name the document, not the clock)
    rewritten = make_board({"overall": OVERALL, "coding": {"c": 1000.0, "a": 1250.0}}, generated_at=101.0)
    redis_client.set(view_snapshot_key("arena", "coding"), rewritten.snapshots["coding"].model_dump_json())
    assert [row.model for row in (await reader.snapshot("coding")).rows] == ["a", "c"]


async def test_the_cache_keeps_at_most_its_size(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    small = BoardReader(client, "arena", cache_size=2)
    try:
        publish_board(redis_client, make_board({"overall": OVERALL, "coding": CODING}, generated_at=9.0))
        first = await small.snapshot("coding")
        assert (await small.snapshot("coding")) is first
        await small.snapshot("overall")
        await small.stats("overall")  # a third document pushes the least recently read, coding, out
        reparsed = await small.snapshot("coding")
        assert reparsed == first and reparsed is not first
    finally:
        await client.aclose()
