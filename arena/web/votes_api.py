"""Vote download: every accepted pairwise vote in the column layout of LMArena's public data,
read page by page from the vote stream (so any web process can serve it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from arena.web.context import ArenaContext, get_context
from leaderboard.archive import LMARENA_COLUMNS, export_lmarena
from leaderboard.events import VoteEvent
from leaderboard.redis_keys import vote_stream_key
from leaderboard.stream import parse_entry, stream_pages_async

router = APIRouter()


async def _event_pages(context: ArenaContext) -> AsyncIterator[list[VoteEvent]]:
    async for entries in stream_pages_async(context.redis, vote_stream_key(context.settings.prefix)):
        # a malformed entry is left out: the worker's dead-letter stream keeps it with the reason
        yield [vote for vote, _reason in (parse_entry(fields) for _, fields in entries) if vote is not None]


def _csv_cell(value):
    return json.dumps(value) if isinstance(value, (dict, list)) else value


@router.get("/api/votes")
async def download_votes(context: Annotated[ArenaContext, Depends(get_context)],
                         format: Annotated[Literal["jsonl", "csv"], Query(description="jsonl or csv")] = "jsonl"):
    """All pairwise votes so far, oldest first, loadable by `python -m leaderboard fit`."""

    async def body() -> AsyncIterator[str]:
        first = True
        async for events in _event_pages(context):
            frame = export_lmarena(events)
            if format == "jsonl":
                if len(frame):
                    yield frame.to_json(orient="records", lines=True)
                continue
            text = frame.map(_csv_cell).to_csv(index=False, header=first)
            first = False
            yield text
        if format == "csv" and first:
            yield ",".join(LMARENA_COLUMNS) + "\n"

    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    headers = {"Content-Disposition": f'attachment; filename="arena-votes.{format}"'}
    return StreamingResponse(body(), media_type=media, headers=headers)
