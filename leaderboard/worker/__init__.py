"""The leaderboard worker: votes from the Redis stream -> durable archive -> counts -> snapshot.

Modules, one job each:

- :mod:`~leaderboard.worker.lease`: the lease that makes one worker the active one.
- :mod:`~leaderboard.worker.state`: the consumer's state and its named transitions.
- :mod:`~leaderboard.worker.catch_up`: what a starting worker reads (its archive, the stream's
  votes the archive lacks).
- :mod:`~leaderboard.worker.consumer`: :class:`VoteWorker`, stream -> archive -> tally -> snapshot.
- :mod:`~leaderboard.worker.publish`: every view of the board, written in one transaction per refit.
- :mod:`~leaderboard.worker.voters`: the anomalous-voter watch, kept in Redis.
- :mod:`~leaderboard.worker.loop`: keeps it going through Redis outages and lease changes.
- :mod:`~leaderboard.worker.cli`: ``python -m leaderboard worker``.

What is kept of the rated votes (pair counts, K-wise rankings, Elo), which fit to publish and when
to refit are the live board's statistics, without Redis: :mod:`leaderboard.live` (``tally``,
``view_tally``, ``policy``, ``view_fit``).

Exactly once. The web side XADDs every accepted vote to ``vote_stream_key(prefix)``. The worker
reads it with a consumer group and, for each batch: appends the votes to the archive
(``<data_dir>/votes.jsonl``, fsynced), adds the new ones to its counts, and only then XACKs.

- Crash before the archive append: the entries stay pending in the group; a restarted worker
  (or any other consumer, via XAUTOCLAIM once they have been idle ``claim_idle_ms``) reads them
  again. Crash after the append but before XACK: same, and the archive recognises the vote ids,
  so they are acknowledged without being counted again. The counts are always rebuilt from the
  archive at start-up, so they equal the archive.
- Entries that are not a valid VoteEvent go to the dead-letter stream
  (``dead_letter_stream_key(prefix)``) with the reason, and are acknowledged in the same MULTI,
  so they never block the stream.

One active worker (see :mod:`~leaderboard.worker.lease`). On taking over, a worker reads its
archive from disk (another process on the same data directory may have appended; the archive's
flock keeps two processes from appending at once) -- a worker that held the lease before reads
only what was appended since it let go, unless the file was replaced, in which case it reads it
all again -- and then copies from the stream any vote its archive lacks (when workers on
different machines have different data directories, the previous holder consumed those votes
into its own archive; a worker taking the lease back checks only the entries added since its
last catch-up). That catch-up relies on the stream keeping its history; trimming the vote
stream would need a shared data directory instead.

Snapshots. Every ``refit_interval`` seconds (or four times the last fit's duration, if longer,
so a slow fit cannot crowd out consuming), if new votes arrived, the worker fits and publishes
a Snapshot (SET ``snapshot_key``, PUBLISH ``snapshot_channel``); see
:mod:`~leaderboard.live.policy` for which fit.

May import: leaderboard.config, leaderboard.data, leaderboard.live, leaderboard.store, leaderboard.trust,
leaderboard.views.
"""

from leaderboard.live.policy import DEFAULT_PRIOR_PRECISION, MIN_VOTES_TO_FIT, RefitSchedule, build_snapshot
from leaderboard.live.tally import VoteTally
from leaderboard.worker.cli import build_parser, main
from leaderboard.worker.consumer import VoteWorker, WorkerStats
from leaderboard.worker.lease import LEASE_TTL_MS, RefitLease

__all__ = [
    "DEFAULT_PRIOR_PRECISION", "LEASE_TTL_MS", "MIN_VOTES_TO_FIT", "RefitLease", "RefitSchedule", "VoteTally",
    "VoteWorker", "WorkerStats", "build_parser", "build_snapshot", "main",
]
