"""Reading vote-stream entries: redis-py reply shapes, the event field, and why an entry is malformed."""

from __future__ import annotations

from pydantic import ValidationError

from leaderboard.events import VoteEvent


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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


def parse_entry(fields: dict) -> tuple[VoteEvent | None, str | None]:
    """(vote, None) for a valid entry, (None, reason) for a malformed one."""
    raw = event_field(fields)
    if raw is None:
        return None, "the entry has no 'event' field"
    try:
        return VoteEvent.model_validate_json(raw), None
    except ValidationError as error:
        return None, validation_reason(error)


def validation_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"not a valid VoteEvent: {where + ': ' if where else ''}{first['msg']}{more}"
