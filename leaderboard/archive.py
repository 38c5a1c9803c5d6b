"""The durable vote archive: every accepted vote, once, as one JSON line in ``<data_dir>/votes.jsonl``.

The archive is the source of truth for the rating engine. The worker appends a vote here, and
only once the line is on disk (flushed and fsynced) does it acknowledge the vote in Redis. So:

- a crash before the append leaves the vote unacknowledged; Redis delivers it again;
- a crash after the append but before the acknowledgement delivers it again too, and the vote id
  (already in :attr:`VoteArchive.ids`) makes the second append a no-op;
- a crash in the middle of a write leaves a last line without its newline (a torn line). The vote
  on it was not acknowledged, so the torn bytes are cut off at the next open (with a warning) and
  the vote comes back from Redis.

A line in the middle that does not parse cannot come from a crash; that is corruption and opening
the archive stops with an error naming the line.

Only one process appends at a time: the writer holds an exclusive ``flock`` on the file for as long
as it is open (a second writer gets :class:`ArchiveBusyError`; a killed writer's lock goes with
it). Readers (``read_only=True``) take no lock and never repair; they skip a torn last line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from leaderboard.events import VoteEvent

ARCHIVE_FILE_NAME = "votes.jsonl"

log = logging.getLogger(__name__)


class ArchiveCorruptError(ValueError):
    """A complete line of the archive is not a valid vote (not something a crash can produce)."""


class ArchiveBusyError(RuntimeError):
    """Another process has the archive open for appending."""


def archive_path(data_dir: Path) -> Path:
    """The one archive of a data directory."""
    return Path(data_dir) / ARCHIVE_FILE_NAME


def _fsync_directory(directory: Path) -> None:
    # A new file's directory entry is only durable once the directory itself is fsynced.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VoteArchive:
    """Append-only JSON-lines file of :class:`~leaderboard.events.VoteEvent`, idempotent on vote id.

    Opening scans the file once (validating every line, repairing a torn tail) and keeps the set
    of archived vote ids in :attr:`ids`; ``on_event`` (optional) sees every archived vote during
    that scan, so a caller can rebuild its state without reading the file twice. Use :meth:`append` / :meth:`extend` to add votes,
    :meth:`load` or iteration to read them back in archive order. Close with :meth:`close` or use
    as a context manager.
    """

    def __init__(self, path: Path, *, read_only: bool = False, on_event: Callable[[VoteEvent], None] | None = None):
        self.path = Path(path)
        self.read_only = read_only
        self.ids: set[str] = set()
        self._file = None
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no vote archive at {self.path}: nothing has been archived there yet")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._file = open(self.path, "ab")
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.close()
                self._file = None
                raise ArchiveBusyError(
                    f"the vote archive {self.path} is open for appending in another process "
                    "(another leaderboard worker on this data directory); stop it or use another --data-dir"
                ) from None
            if created:
                _fsync_directory(self.path.parent)
        try:
            for _line_number, event in self._scan(repair=not read_only):
                self.ids.add(event.vote_id)
                if on_event is not None:
                    on_event(event)
        except BaseException:
            self.close()
            raise

    # -- reading -------------------------------------------------------------------------------

    def _scan(self, repair: bool) -> Iterator[tuple[int, VoteEvent]]:
        """Yield ``(line_number, event)`` for every archived vote; handle a torn last line.

        Duplicate ids (possible only if two writers ever overlapped) are skipped after the first.
        """
        seen: set[str] = set()
        offset = 0
        with open(self.path, "rb") as reader:
            for line_number, line in enumerate(reader, start=1):
                if not line.endswith(b"\n"):
                    # Only the last line can lack its newline: a write cut short by a crash.
                    self._torn_tail(offset, line_number, len(line), repair)
                    return
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    event = VoteEvent.model_validate_json(line)
                except ValidationError as error:
                    first = error.errors()[0]
                    where = ".".join(str(part) for part in first["loc"]) or "line"
                    raise ArchiveCorruptError(
                        f"{self.path}, line {line_number}: not a valid vote ({where}: {first['msg']}); "
                        "the file was edited or damaged: restore it from a backup or remove that line"
                    ) from None
                if event.vote_id in seen:
                    continue
                seen.add(event.vote_id)
                yield line_number, event

    def _torn_tail(self, offset: int, line_number: int, length: int, repair: bool) -> None:
        if not repair:
            return
        log.warning(
            "vote archive %s: line %d is incomplete (%d bytes, a write interrupted by a crash); "
            "truncating it away: that vote was never acknowledged and Redis will deliver it again",
            self.path, line_number, length,
        )
        os.truncate(self.path, offset)
        os.fsync(self._file.fileno())

    def __iter__(self) -> Iterator[VoteEvent]:
        """Every archived vote, in archive order (reads the file again; a torn tail is skipped)."""
        for _line_number, event in self._scan(repair=False):
            yield event

    def load(self) -> list[VoteEvent]:
        """Every archived vote, in archive order."""
        return list(self)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, vote_id: str) -> bool:
        return vote_id in self.ids

    # -- writing -------------------------------------------------------------------------------

    def append(self, event: VoteEvent) -> bool:
        """Archive one vote durably; ``False`` (and nothing written) if its id is already archived."""
        return self.extend([event])[0]

    def extend(self, events: Iterable[VoteEvent]) -> list[bool]:
        """Archive several votes with one fsync; for each, whether it was new.

        Returns only after the new lines are on disk, so the caller may acknowledge them.
        """
        if self._file is None:
            raise RuntimeError(f"the vote archive {self.path} is {'read-only' if self.read_only else 'closed'}")
        fresh: list[bool] = []
        lines: list[bytes] = []
        batch_ids: set[str] = set()
        for event in events:
            new = event.vote_id not in self.ids and event.vote_id not in batch_ids
            fresh.append(new)
            if new:
                batch_ids.add(event.vote_id)
                lines.append(event.model_dump_json().encode() + b"\n")
        if lines:
            # One write of whole lines: a crash can only tear the last of them, which the next
            # open cuts off (none of these votes has been acknowledged yet).
            self._file.write(b"".join(lines))
            self._file.flush()
            os.fsync(self._file.fileno())
            self.ids |= batch_ids
        return fresh

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing releases the flock

    def __enter__(self) -> "VoteArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- public export ------------------------------------------------------------------------------

LMARENA_COLUMNS = [
    "question_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "tstamp",
    "conv_metadata", "category_tag", "selection_probability", "served_at", "vote_id",
]


def export_lmarena(events: Iterable[VoteEvent]) -> pd.DataFrame:
    """Pairwise votes as a table in the column layout of LMArena's public battle data sets.

    One row per pairwise vote (K-wise votes are left out: that format has no place for them).
    ``question_id`` is the battle id, ``judge`` the pseudonymous voter id, ``tstamp`` the vote
    time (unix seconds), ``anony`` whether the names were hidden. ``conv_metadata`` follows
    LMArena's key names for the style features we record (answer tokens, markdown headers, list
    items, bold spans); we count each kind as one total, so the per-kind dicts have a single
    ``"total"`` key. ``category_tag`` is the list of category names. The columns after
    ``category_tag`` are ours (selection probability for inverse-propensity weighting, the time
    the answers were shown, the vote id).
    """
    rows = []
    for event in events:
        if event.mode == "kwise":
            continue
        style_a, style_b = event.style
        rows.append({
            "question_id": event.battle_id,
            "model_a": event.models[0],
            "model_b": event.models[1],
            "winner": event.outcome,
            "judge": event.voter_id,
            "turn": event.turns,
            "anony": event.mode == "anonymous",
            "tstamp": event.voted_at,
            "conv_metadata": {
                "sum_assistant_a_tokens": style_a.tokens,
                "sum_assistant_b_tokens": style_b.tokens,
                "header_count_a": {"total": style_a.headers},
                "header_count_b": {"total": style_b.headers},
                "list_count_a": {"total": style_a.list_items},
                "list_count_b": {"total": style_b.list_items},
                "bold_count_a": {"total": style_a.bold},
                "bold_count_b": {"total": style_b.bold},
                "turns": event.turns,
            },
            "category_tag": list(event.categories),
            "selection_probability": event.selection_probability,
            "served_at": event.served_at,
            "vote_id": event.vote_id,
        })
    return pd.DataFrame(rows, columns=LMARENA_COLUMNS)

