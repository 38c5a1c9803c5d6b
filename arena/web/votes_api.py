"""Vote download: every accepted vote (pairwise and K-wise), read page by page from the vote stream
(so any web process can serve it) and written by leaderboard.data.export, which owns the layout,
the pseudonyms and the text rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from arena.web.context import ArenaContext, get_context
from leaderboard.data.export import MEDIA_TYPES, ExportWriter, Pseudonyms, VoteText, export_row, release_key
from leaderboard.store.redis_keys import vote_stream_key
from leaderboard.store.stream import STREAM_START, parse_entry, stream_pages_async

router = APIRouter()

# Stream ids are the Redis server's clock, ``tstamp`` the web process's: a ``since`` read starts
# this much earlier in the stream and keeps the rows by their own vote time.
SINCE_MARGIN_SECONDS = 3600


def _text(fields: dict) -> VoteText | None:
    raw = fields.get(b"text", fields.get("text"))
    if raw is None:
        return None
    try:
        return VoteText.model_validate_json(raw)
    except ValidationError:
        return None


@router.get("/api/votes")
async def download_votes(context: Annotated[ArenaContext, Depends(get_context)],
                         format: Annotated[Literal["jsonl", "csv", "parquet"],
                                           Query(description="jsonl (default), csv or parquet")] = "jsonl",
                         since: Annotated[float | None,
                                          Query(description="only votes cast at or after this unix time")] = None):
    """Every vote so far, oldest first, loadable by `python -m leaderboard fit` (see leaderboard.data.export)."""
    settings = context.settings
    release_text = bool(settings.release_text)
    pseudonyms = Pseudonyms(release_key(Path(settings.data_dir), settings.release_key))
    start = STREAM_START if since is None else f"{max(0, int((since - SINCE_MARGIN_SECONDS) * 1000))}-0"

    async def body() -> AsyncIterator[bytes]:
        writer = ExportWriter(format, release_text)
        async for entries in stream_pages_async(context.redis, vote_stream_key(settings.prefix), start=start):
            rows = []
            for _, fields in entries:
                # a malformed entry is left out: the worker's dead-letter stream keeps it with the reason
                vote, _reason = parse_entry(fields)
                if vote is None or (since is not None and vote.voted_at < since):
                    continue
                rows.append(export_row(vote, pseudonyms, _text(fields) if release_text else None, release_text))
            chunk = writer.write(rows)
            if chunk:
                yield chunk
        yield writer.finish()

    headers = {"Content-Disposition": f'attachment; filename="arena-votes.{format}"'}
    return StreamingResponse(body(), media_type=MEDIA_TYPES[format], headers=headers)
