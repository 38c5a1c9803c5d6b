"""The vote stream pager against a real Redis: every entry exactly once, across page boundaries,
from the first entry or strictly after a given one, in the sync and the asyncio form alike."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from leaderboard.store.stream import STREAM_START, StreamCursor, start_after, stream_pages, stream_pages_async

STREAM = "arena:votes"


def fill(redis_client, n: int) -> list[bytes]:
    pipe = redis_client.pipeline(transaction=False)
    for k in range(n):
        pipe.xadd(STREAM, {"event": str(k)})
    return pipe.execute()


async def collect_async(redis_url, **options) -> list[list]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        return [page async for page in stream_pages_async(client, STREAM, **options)]
    finally:
        await client.aclose()


@pytest.mark.parametrize("n, page_size", [(0, 3), (1, 3), (9, 3), (10, 3), (11, 3), (7, 1)])
async def test_every_entry_exactly_once_from_the_start_and_after_an_id(redis_url, redis_client, n, page_size):
    ids = fill(redis_client, n)
    starts = [(STREAM_START, ids)]
    for k in sorted({0, n // 2, n - 1} if n else set()):
        starts += [(start_after(ids[k]), ids[k + 1:]), (start_after(ids[k].decode()), ids[k + 1:])]
    for start, expected in starts:
        sync_pages = list(stream_pages(redis_client, STREAM, start=start, page_size=page_size))
        async_pages = await collect_async(redis_url, start=start, page_size=page_size)
        for pages in (sync_pages, async_pages):
            assert [entry_id for page in pages for entry_id, _ in page] == expected
            assert all(0 < len(page) <= page_size for page in pages)
            assert len(pages) == -(-len(expected) // page_size)  # no empty page, none missing
        assert async_pages == sync_pages


def test_a_cursor_resumes_strictly_after_the_last_entry_read(redis_client):
    ids = fill(redis_client, 5)
    cursor = StreamCursor(STREAM, page_size=2)
    assert cursor.xrange_arguments()["min"] == "-"
    cursor.advance(redis_client.xrange(**cursor.xrange_arguments()))
    assert cursor.start == start_after(ids[1]) == "(" + ids[1].decode() and not cursor.done
    fill(redis_client, 1)  # appended while paging: still read, once
    rest = list(stream_pages(redis_client, STREAM, start=cursor.start, page_size=2))
    assert [entry_id for page in rest for entry_id, _ in page][:3] == ids[2:]
    assert sum(len(page) for page in rest) == 4
    with pytest.raises(ValueError, match="page_size"):
        StreamCursor(STREAM, page_size=0)
