"""The consumer's state, in one place, with named transitions.

A worker goes CLOSED -> ARCHIVE_OPEN -> GROUP_READY -> CONSUMING as it starts (each step may fail
because Redis is down, and is simply tried again), and back to CLOSED when it lets go of the
archive (it lost the lease, or it is closing). Redis losing its data (NOGROUP) takes it back to
ARCHIVE_OPEN. The lease is NOT_NEEDED when the worker is driven by hand (``process_once`` in a
test or benchmark), HELD while ``run_forever`` holds it, and LOST when a renewal failed in the
middle of a step: the step then finishes what cannot be interrupted (reading a file), stops what
can (the stream catch-up) and the worker lets go.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from leaderboard.data.archive import ArchivePosition
from leaderboard.store.stream import STREAM_START, start_after


class Phase(enum.Enum):
    CLOSED = "closed"  # archive not open; a resume position may say where we let go of it
    ARCHIVE_OPEN = "archive open"  # the tally equals the archive; the consumer group may not exist yet
    GROUP_READY = "group ready"  # the group exists; the stream may still hold votes the archive lacks
    CONSUMING = "consuming"  # caught up with the stream: reading the group


class Lease(enum.Enum):
    NOT_NEEDED = "not needed"
    HELD = "held"
    LOST = "lost"


# XAUTOCLAIM start meaning "a new pass over the PEL" (STREAM_START, the XRANGE start meaning
# "from the first entry", is leaderboard.store.stream's)
CLAIM_PASS_START = "0-0"


@dataclass
class ConsumerState:
    phase: Phase = Phase.CLOSED
    lease: Lease = Lease.NOT_NEEDED
    # where our archive ended when we last let go of it; the tally counts exactly the votes up to there
    resume_from: ArchivePosition | None = None
    # XRANGE start of the next catch-up: every valid vote before it is known to be in our archive
    stream_checked_to: str = STREAM_START
    # after a start or a failed batch our own pending entries may hold votes: read them first
    own_pending_possible: bool = True
    claim_cursor: str = CLAIM_PASS_START  # XAUTOCLAIM cursor of the pass in progress
    last_claim_scan: float = -math.inf  # monotonic start of the last pass
    warm_start: dict[str, float] | None = None  # theta of the last fit, by model name

    # -- starting ------------------------------------------------------------------------------

    def archive_read_whole(self) -> None:
        """A file we had not read (or that was replaced): the tally is rebuilt, and the whole
        stream must be checked against it."""
        self.phase = Phase.ARCHIVE_OPEN
        self.resume_from = None
        self.stream_checked_to = STREAM_START
        self.warm_start = None
        self.own_pending_possible = True

    def archive_resumed(self) -> None:
        """The file we let go of, with only what was appended since read into the tally."""
        self.phase = Phase.ARCHIVE_OPEN
        self.resume_from = None
        self.own_pending_possible = True

    def group_ready(self) -> None:
        self.phase = Phase.GROUP_READY

    def caught_up(self) -> None:
        self.phase = Phase.CONSUMING

    def checked_stream_to(self, entry_id: str | bytes) -> None:
        self.stream_checked_to = start_after(entry_id)  # the next catch-up starts after it

    # -- consuming -----------------------------------------------------------------------------

    def own_pending_read(self, complete: bool) -> None:
        if complete:
            self.own_pending_possible = False

    def recheck_own_pending(self) -> None:
        """A batch failed, or a claim returned deleted entries: our own pending list may hold
        entries, so the next read looks there first."""
        self.own_pending_possible = True

    def claim_pass_continues(self, cursor: str) -> None:
        self.claim_cursor = cursor

    def claim_pass_started(self, now: float) -> None:
        self.last_claim_scan = now

    def claim_pass_due(self, now: float, idle_seconds: float) -> bool:
        """A full pass over the pending list at most twice per idle period; continue one in progress."""
        return self.claim_cursor != CLAIM_PASS_START or now - self.last_claim_scan >= idle_seconds / 2

    def fitted(self, theta: dict[str, float]) -> None:
        self.warm_start = theta

    # -- going back ----------------------------------------------------------------------------

    def group_lost(self) -> None:
        """The stream or the group vanished (Redis lost its data): create it again, check again."""
        if self.phase in (Phase.GROUP_READY, Phase.CONSUMING):
            self.phase = Phase.ARCHIVE_OPEN

    def let_go(self, position: ArchivePosition | None) -> None:
        """The archive is closed; ``position`` (None: unknown) is where to resume reading it."""
        self.phase = Phase.CLOSED
        self.resume_from = position

    # -- the lease -----------------------------------------------------------------------------

    def lease_held(self) -> None:
        self.lease = Lease.HELD

    def lease_lost(self) -> None:
        self.lease = Lease.LOST

    def lease_not_needed(self) -> None:
        self.lease = Lease.NOT_NEEDED
