"""What a starting worker reads before it consumes: its archive, and the stream's votes the archive lacks.

Three reads, each a function of its inputs (the consumer, :mod:`leaderboard.worker.consumer`, decides
which to run and keeps the state): the whole archive counted afresh (:func:`read_whole_archive`),
only the votes appended since the worker let go of it (:func:`read_appended`), and, for a page of
the vote stream, the valid votes whose ids the archive does not hold (:func:`votes_missing`). See
the package docstring for why a worker taking the lease over needs the last one.

``while_reading`` is called after each archived vote is read: a big archive takes a while, and the
worker renews its lease meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path

from leaderboard.data.archive import ArchivePosition, VoteArchive, archive_path
from leaderboard.data.events import VoteEvent
from leaderboard.live.view_fit import LiveVotes
from leaderboard.store.stream import event_field
from leaderboard.store.vote_signature import VoteSigner


def read_whole_archive(data_dir: Path, *, rate_deanonymised: bool,
                       while_reading: Callable[[], object]) -> tuple[VoteArchive, LiveVotes]:
    """Open the archive in ``data_dir`` for appending, and every vote in it counted into fresh LiveVotes."""
    live = LiveVotes.empty(rate_deanonymised=rate_deanonymised)

    def count_archived(event: VoteEvent) -> None:
        live.add(event)
        while_reading()

    return VoteArchive(archive_path(data_dir), on_event=count_archived), live


def read_appended(data_dir: Path, position: ArchivePosition, *,
                  while_reading: Callable[[], object]) -> tuple[VoteArchive, list[VoteEvent]]:
    """Reopen the archive the worker let go of at ``position``, and the votes appended to it since.

    Raises ArchiveMovedError when the file was replaced or rewritten meanwhile: then it must be read whole."""
    appended: list[VoteEvent] = []

    def collect(event: VoteEvent) -> None:
        appended.append(event)
        while_reading()

    return VoteArchive(archive_path(data_dir), on_event=collect, resume_from=position), appended


def votes_missing(entries: list, archived_ids: Collection[str], signer: VoteSigner) -> list[VoteEvent]:
    """The votes of stream ``entries`` (``(entry id, fields)`` pairs) whose ids are not in ``archived_ids``.

    A malformed entry, or one whose signature is missing or wrong, is skipped: the consumer that
    reads it through the group dead-letters it."""
    missing = []
    for _entry_id, fields in entries:
        raw = event_field(fields)
        try:
            if json.loads(raw)["vote_id"] in archived_ids or signer.refusal(fields) is not None:
                continue
            missing.append(VoteEvent.model_validate_json(raw))
        except (TypeError, ValueError, KeyError):
            continue
    return missing
