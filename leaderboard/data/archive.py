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

The file's format (what a line, a torn tail and corruption are) is leaderboard.data.archive_reader's,
the one reader every other reader of the file is built on.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# ArchiveCorruptError is raised by opening a VoteArchive too, so callers find it here as well.
from leaderboard.data.archive_reader import ArchiveCorruptError, archive_events  # noqa: F401
from leaderboard.data.events import VoteEvent
from leaderboard.data.private_files import open_private, private_dir

ARCHIVE_FILE_NAME = "votes.jsonl"

log = logging.getLogger(__name__)


class ArchiveBusyError(RuntimeError):
    """Another process has the archive open for appending."""


class ArchiveMovedError(RuntimeError):
    """The archive is not the file a resume position was taken from (replaced, truncated or
    rewritten), so it must be read from the start."""


# At most this many bytes before a resume position (normally its whole last line, which holds a
# unique vote id) must still be there, unchanged, to resume from it.
_RESUME_CHECK_BYTES = 65536


@dataclass(frozen=True)
class ArchivePosition:
    """Where a writer left an archive: the file (device, inode), the end of its last complete
    line, the bytes just before that end, and the vote ids up to it. See ``VoteArchive(resume_from=)``."""

    device: int
    inode: int
    offset: int
    tail: bytes  # the last line before offset
    ids: frozenset[str]


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
    """Append-only JSON-lines file of :class:`~leaderboard.data.events.VoteEvent`, idempotent on vote id.

    Opening scans the file once (validating every line, repairing a torn tail) and keeps the set
    of archived vote ids in :attr:`ids`; ``on_event`` (optional) sees every archived vote during
    that scan, so a caller can rebuild its state without reading the file twice. Use :meth:`append` /
    :meth:`extend` to add votes, :meth:`load` or iteration to read them back in archive order. Close
    with :meth:`close` or use as a context manager.

    ``resume_from``: a :meth:`position` taken before an earlier close. Only the lines appended
    since (by another writer on the same file) are scanned and passed to ``on_event``; raises
    :class:`ArchiveMovedError` (before reading anything) if the file is no longer the one the
    position was taken from.
    """

    def __init__(self, path: Path, *, read_only: bool = False, on_event: Callable[[VoteEvent], None] | None = None,
                 resume_from: ArchivePosition | None = None):
        self.path = Path(path)
        self.read_only = read_only
        self.ids: set[str] = set()
        self._file = None
        self._end = 0  # end of the last complete line, while we hold the write lock
        if read_only and resume_from is not None:
            raise ValueError("resume_from is for a writer: a reader scans the whole file")
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no vote archive at {self.path}: nothing has been archived there yet")
        else:
            private_dir(self.path.parent)  # the data dir: 0700, the archive 0600 (leaderboard.data.private_files)
            created = not self.path.exists()
            self._file = os.fdopen(open_private(self.path, os.O_WRONLY | os.O_APPEND), "ab")
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
            start = 0
            if resume_from is not None:
                self._check_resumable(resume_from)
                start = resume_from.offset
                self.ids = set(resume_from.ids)
            for event in self._scan(repair=not read_only, start=start, seen=self.ids):  # adds each id to seen
                if on_event is not None:
                    on_event(event)
            if self._file is not None:
                # we hold the write lock and any torn tail is cut off: the file ends at a line end
                self._end = os.fstat(self._file.fileno()).st_size
        except BaseException:
            self.close()
            raise

    # -- reading -------------------------------------------------------------------------------

    def _check_resumable(self, position: ArchivePosition) -> None:
        status = os.fstat(self._file.fileno())
        same_file = (status.st_dev, status.st_ino) == (position.device, position.inode)
        if same_file and status.st_size >= position.offset:
            with open(self.path, "rb") as reader:
                reader.seek(position.offset - len(position.tail))
                if reader.read(len(position.tail)) == position.tail:
                    return
        self.close()
        raise ArchiveMovedError(
            f"the vote archive {self.path} was replaced or rewritten since byte {position.offset} was read; "
            "read it from the start")

    def position(self) -> ArchivePosition:
        """Where this writer's archive ends now, to reopen it later with ``resume_from``."""
        if self._file is None:
            raise RuntimeError(f"the vote archive {self.path} is {'read-only' if self.read_only else 'closed'}")
        status = os.fstat(self._file.fileno())
        with open(self.path, "rb") as reader:
            reader.seek(max(0, self._end - _RESUME_CHECK_BYTES))
            tail = reader.read(self._end - reader.tell())
        tail = tail[tail.rfind(b"\n", 0, len(tail) - 1) + 1:]
        return ArchivePosition(status.st_dev, status.st_ino, self._end, tail, frozenset(self.ids))

    def _scan(self, repair: bool, start: int = 0, seen: set[str] | None = None) -> Iterator[VoteEvent]:
        """Every archived vote from byte ``start`` (archive_reader's rules); a writer
        (``repair``) cuts a torn last line off, a reader skips it."""
        return archive_events(self.path, start=start, seen=seen, on_torn_tail=self._torn_tail if repair else None)

    def _torn_tail(self, offset: int, line_number: int, length: int) -> None:
        log.warning(
            "vote archive %s: line %d is incomplete (%d bytes, a write interrupted by a crash); "
            "truncating it away: that vote was never acknowledged and Redis will deliver it again",
            self.path, line_number, length,
        )
        os.truncate(self.path, offset)
        os.fsync(self._file.fileno())

    def __iter__(self) -> Iterator[VoteEvent]:
        """Every archived vote, in archive order (reads the file again; a torn tail is skipped)."""
        yield from self._scan(repair=False)

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
            data = b"".join(lines)
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._end += len(data)
            self.ids |= batch_ids
        return fresh

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing releases the flock

    def __enter__(self) -> VoteArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
