"""Paging through a Redis stream with XRANGE: one bound rule for every reader of the vote stream.

A page starts strictly after the last entry of the page before (:func:`start_after`: the
exclusive ``(id`` form of XRANGE's start), so no entry is seen twice and none is skipped at a
page boundary. A read starts at :data:`STREAM_START` (the first entry) or at ``start_after(id)``
of an entry already read; a page shorter than ``page_size`` is the last one (entries appended
after it are the next read's).

Two forms share the rule (:class:`StreamCursor`): :func:`stream_pages` for a synchronous client
(the worker's catch-up) and :func:`stream_pages_async` for an asyncio one (the vote download).
Pages are lists of ``(entry id, fields)`` as redis-py returns them; :func:`parse_entry` reads an
entry's vote (or why it is malformed), for every reader alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from leaderboard.data.events import VoteEvent
from leaderboard.store.vote_signature import VoteSigner

PAGE_SIZE = 2000
STREAM_START = "-"  # XRANGE start: the first entry


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def start_after(entry_id: str | bytes) -> str:
    """The XRANGE start of the entries strictly after ``entry_id``."""
    return "(" + text(entry_id)


@dataclass
class StreamCursor:
    """Where the next page of ``stream`` starts (an XRANGE start: STREAM_START or start_after)."""

    stream: str
    start: str = STREAM_START
    page_size: int = PAGE_SIZE
    done: bool = False

    def __post_init__(self):
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")

    def xrange_arguments(self) -> dict:
        return {"name": self.stream, "min": self.start, "max": "+", "count": self.page_size}

    def advance(self, page: list) -> None:
        """Move past ``page`` (the reply to :meth:`xrange_arguments`)."""
        if page:
            self.start = start_after(page[-1][0])
        self.done = len(page) < self.page_size


def stream_pages(client, stream: str, *, start: str = STREAM_START, page_size: int = PAGE_SIZE) -> Iterator[list]:
    """Every entry of ``stream`` from ``start``, a page at a time (sync client). The next page
    is read only when the caller asks for it, so a caller may stop between pages."""
    cursor = StreamCursor(stream, start, page_size)
    while not cursor.done:
        page = client.xrange(**cursor.xrange_arguments())
        cursor.advance(page)
        if page:
            yield page


async def stream_pages_async(client, stream: str, *, start: str = STREAM_START,
                             page_size: int = PAGE_SIZE) -> AsyncIterator[list]:
    """:func:`stream_pages` for an asyncio client."""
    cursor = StreamCursor(stream, start, page_size)
    while not cursor.done:
        page = await client.xrange(**cursor.xrange_arguments())
        cursor.advance(page)
        if page:
            yield page


# -- the entries ------------------------------------------------------------------------------


def stream_entries(reply) -> list:
    """The entries of a one-stream XREADGROUP reply (RESP2: [[key, entries]]; RESP3: {key: [entries]})."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (entries,) = reply.values()
        return entries[0] if entries and isinstance(entries[0], list) else entries
    return reply[0][1]


def event_field(fields: dict):
    """The JSON vote event of a stream entry (None if the entry has no ``event`` field)."""
    return fields.get(b"event", fields.get("event"))


def parse_entry(fields: dict, signer: VoteSigner | None = None) -> tuple[VoteEvent | None, str | None]:
    """(vote, None) for a valid entry, (None, reason) for a malformed one; with ``signer``, an
    entry whose signature is missing or wrong is refused too (leaderboard.store.vote_signature)."""
    raw = event_field(fields)
    if raw is None:
        return None, "the entry has no 'event' field"
    refusal = signer.refusal(fields) if signer is not None else None
    if refusal is not None:
        return None, refusal
    try:
        return VoteEvent.model_validate_json(raw), None
    except ValidationError as error:
        return None, validation_reason(error)


def validation_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"not a valid VoteEvent: {where + ': ' if where else ''}{first['msg']}{more}"
