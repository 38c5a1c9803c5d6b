"""The vote consumer: Redis stream -> durable archive -> tally -> snapshot, exactly once.

For each batch it appends the votes to the archive (``<data_dir>/votes.jsonl``, fsynced), adds
the new ones to its tally, and only then XACKs (see the package docstring for why that is
exactly once). Its state is one :class:`~leaderboard.worker.state.ConsumerState`; when to refit
is a :class:`~leaderboard.live.policy.RefitSchedule`; what to publish is
:func:`~leaderboard.live.policy.build_snapshot`. What it reads as it starts (the archive, the
stream's votes the archive lacks) is :mod:`leaderboard.worker.catch_up`. The loop that keeps it
going through Redis outages and lease changes is :mod:`leaderboard.worker.loop`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from leaderboard.data.archive import ArchiveMovedError, ArchivePosition, VoteArchive
from leaderboard.data.events import VoteEvent
from leaderboard.live.policy import DEFAULT_PRIOR_PRECISION, RefitSchedule, build_snapshot, is_fitted
from leaderboard.live.view_fit import LiveVotes
from leaderboard.store.redis_keys import (
    DEFAULT_PREFIX,
    REFUSED_SIGNATURE_FIELD,
    dead_letter_stream_key,
    refit_stats_key,
    vote_consumer_group,
    vote_stream_key,
    worker_lock_key,
)
from leaderboard.store.stream import event_field, parse_entry, stream_entries, stream_pages, text
from leaderboard.store.vote_signature import SIGNATURE_REFUSALS, VoteSigner
from leaderboard.trust.voter_anomaly import DEFAULT_FALSE_FLAG_RATE
from leaderboard.views.categories import DEFAULT_MIN_CATEGORY_VOTES
from leaderboard.views.snapshot import Snapshot
from leaderboard.worker.catch_up import read_appended, read_whole_archive, votes_missing
from leaderboard.worker.lease import LEASE_TTL_MS, RefitLease
from leaderboard.worker.loop import run_forever
from leaderboard.worker.publish import DEFAULT_HISTORY_SPACING, ViewPublisher
from leaderboard.worker.state import CLAIM_PASS_START, ConsumerState, Lease, Phase
from leaderboard.worker.voters import VoterWatch

log = logging.getLogger(__name__)

MAX_BLOCK_MS = 1000


@dataclass
class WorkerStats:
    counted: int = 0  # new votes archived and counted
    duplicates: int = 0  # entries whose vote id was already archived (redeliveries)
    dead_lettered: int = 0  # malformed entries moved to the dead-letter stream
    refused_signature: int = 0  # of those, entries whose signature was missing or wrong (forged votes)
    claimed: int = 0  # entries taken over from idle consumers (XAUTOCLAIM)
    published: int = 0  # snapshots published
    read_from_archive: int = 0  # votes read from the archive file when (re)opening it
    stream_checked: int = 0  # stream entries the catch-up compared with the archive


class VoteWorker:
    """Consumes the vote stream into the archive and publishes leaderboard snapshots.

    ``consumer`` names this worker in the consumer group (default ``<hostname>-<pid>``).
    ``claim_idle_ms``: entries another consumer has held unacknowledged this long are taken over.
    ``alpha``: prior precision per rating (see DEFAULT_PRIOR_PRECISION). ``catch_up``: on start, copy into
    the archive any vote in the stream that it lacks (see the package docstring). ``vote_key``: the
    key web processes sign votes with (``ARENA_VOTE_KEY``); without it, the data dir's key file
    (leaderboard.store.vote_signature). An entry unsigned or wrongly signed is dead-lettered, never counted.
    """

    def __init__(self, redis_client: redis.Redis, data_dir: Path, *, prefix: str = DEFAULT_PREFIX,
                 consumer: str | None = None, refit_interval: float = 2.0, claim_idle_ms: int = 30_000,
                 batch: int = 500, alpha: float = DEFAULT_PRIOR_PRECISION, lease_ttl_ms: int = LEASE_TTL_MS,
                 catch_up: bool = True, rate_deanonymised: bool = False, flagged_voter_weight: float = 0.0,
                 voter_alpha: float = DEFAULT_FALSE_FLAG_RATE, min_category_votes: int = DEFAULT_MIN_CATEGORY_VOTES,
                 history_spacing: float = DEFAULT_HISTORY_SPACING, vote_key: str | None = None):
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.redis = redis_client
        self.data_dir = Path(data_dir)
        self.prefix = prefix
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.refit_interval = refit_interval
        self.claim_idle_ms = claim_idle_ms
        self.batch = batch
        self.alpha = alpha
        self.catch_up = catch_up
        self.signer = VoteSigner.load(self.data_dir, vote_key)
        self.stream = vote_stream_key(prefix)
        self.group = vote_consumer_group(prefix)
        self.dead_letter_stream = dead_letter_stream_key(prefix)
        self.lease = RefitLease(redis_client, worker_lock_key(prefix), self.consumer, lease_ttl_ms)
        self.stats = WorkerStats()
        self.rate_deanonymised = rate_deanonymised
        self.flagged_voter_weight = flagged_voter_weight
        self.voters = VoterWatch(redis_client, prefix, alpha=voter_alpha)
        live = LiveVotes.empty(rate_deanonymised=rate_deanonymised)
        self.tally = live.overall
        self.views = live.views  # the category and style-control views' counts, beside the overall tally
        self.publisher = ViewPublisher(redis_client, prefix, min_category_votes=min_category_votes,
                                       history_spacing=history_spacing)
        self.last_snapshot: Snapshot | None = None
        self.state = ConsumerState()
        self.schedule = RefitSchedule(refit_interval)
        # open exactly when state.phase is not CLOSED; cleared only after it is closed (its lock
        # released), so another thread seeing None may open the file for writing
        self._archive: VoteArchive | None = None

    # -- starting ------------------------------------------------------------------------------

    def _start(self) -> bool:
        """Open the archive and rebuild the tally from it; make sure the group exists; catch up.

        Each step runs once, in order; a step that failed (Redis down) runs again next time.
        Returns whether the worker may consume: False if it lost the lease on the way (it has
        then let go of the archive).
        """
        if self.state.phase is Phase.CLOSED:
            self._open_archive()
        if self.state.phase is Phase.ARCHIVE_OPEN and self.state.lease is not Lease.LOST:
            self._ensure_group()
        if self.state.phase is Phase.GROUP_READY and self.state.lease is not Lease.LOST:
            if self.catch_up:
                self._catch_up_from_stream()
            if self.state.lease is not Lease.LOST:
                self.state.caught_up()
        if self.state.lease is Lease.LOST:
            log.warning("another worker took the refit lease %s while this one was starting; standing by",
                        self.lease.key)
            self.let_go()
            return False
        return True

    def _open_archive(self) -> None:
        position = self.state.resume_from
        if position is None or not self._resume_archive(position):
            self._read_whole_archive()
        self.schedule.votes_arrived()  # publish what the archive holds, even if no vote arrives

    def _read_whole_archive(self) -> None:
        started = time.perf_counter()
        archive, live = read_whole_archive(self.data_dir, rate_deanonymised=self.rate_deanonymised,
                                           while_reading=self._keep_lease)
        self.tally = live.overall
        self.views = live.views
        self.publisher.forget()
        self._archive = archive
        self.state.archive_read_whole()
        self.stats.read_from_archive += live.overall.archived
        log.info("vote archive %s: %d votes (%d rated), counts rebuilt in %.2fs",
                 archive.path, self.tally.archived, self.tally.rated, time.perf_counter() - started)

    def _resume_archive(self, position: ArchivePosition) -> bool:
        """Reopen the archive we let go of, reading only the votes appended since; False if it was
        replaced or rewritten meanwhile (then it must be read whole)."""
        started = time.perf_counter()
        try:
            archive, appended = read_appended(self.data_dir, position, while_reading=self._keep_lease)
        except ArchiveMovedError as error:
            log.warning("%s: rebuilding the counts from the whole archive", error)
            return False
        # counted only once the archive is open: a failed reopen leaves the tally matching position
        for event in appended:
            self.tally.add(event)
            self.views.add(event)
        self._archive = archive
        self.state.archive_resumed()
        self.stats.read_from_archive += len(appended)
        log.info("vote archive %s reopened: %d vote(s) appended since we let go, %d in all (%.2fs)",
                 archive.path, len(appended), self.tally.archived, time.perf_counter() - started)
        return True

    def _ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, self.stream)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self.state.group_ready()

    def _catch_up_from_stream(self) -> None:
        """Archive and count every valid vote in the stream that the archive lacks.

        Starts after the last entry the previous catch-up checked: the archive only grows (a
        replaced file is read whole, which resets the start), so those entries are still in it.
        Stops early, after a whole page, if the lease is lost.
        """
        started = time.perf_counter()
        added = 0
        for entries in stream_pages(self.redis, self.stream, start=self.state.stream_checked_to):
            added += self._archive_and_count(votes_missing(entries, self._archive.ids, self.signer))
            self.stats.stream_checked += len(entries)
            self.state.checked_stream_to(entries[-1][0])
            if not self._keep_lease():
                break
        if added:
            log.info("caught up %d vote(s) from the stream that this archive lacked (%.2fs)",
                     added, time.perf_counter() - started)

    def _keep_lease(self) -> bool:
        """Renew the lease if we run under it (cheap: at most one Redis call per third of its
        TTL); False, and the state says LOST, if another worker has it now."""
        if self.state.lease is Lease.HELD and not self.lease.hold():
            self.state.lease_lost()
        return self.state.lease is not Lease.LOST

    # -- letting go ----------------------------------------------------------------------------

    def let_go(self) -> None:
        """Close the archive (releasing its lock) so another worker can take over; at the next
        start, only what was appended to it meanwhile is read (see _resume_archive)."""
        archive = self._archive
        position = None
        if archive is not None:
            try:
                position = archive.position()
            except OSError:
                position = None  # read it whole next time
            archive.close()
        self._archive = None
        self.state.let_go(position if archive is not None else self.state.resume_from)

    def close(self) -> None:
        """Stop consuming and release the lease if we hold it."""
        self.let_go()
        try:
            self.lease.release()
        except redis.exceptions.RedisError:
            pass  # the lease expires by itself

    # -- consuming -----------------------------------------------------------------------------

    def process_once(self, block_ms: int = 1000) -> int:
        """Handle one batch: our own pending entries first, then entries reclaimed from idle
        consumers (XAUTOCLAIM), then new ones (blocking up to ``block_ms``). Returns the number of
        stream entries handled (archived, recognised as duplicates, or dead-lettered)."""
        if not self._start():
            return 0
        entries = self._read_own_pending()
        if not entries:
            entries = self._claim_idle()
        if not entries:
            entries = self._read_new(block_ms)
        if not entries:
            return 0
        try:
            return self._handle(entries)
        except BaseException:
            self.state.recheck_own_pending()  # the batch may be left pending: read it again first
            raise

    def _read_own_pending(self) -> list:
        if not self.state.own_pending_possible:
            return []
        reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.batch)
        entries = stream_entries(reply)
        self.state.own_pending_read(complete=len(entries) < self.batch)
        return entries

    def _claim_idle(self) -> list:
        now = time.monotonic()
        if not self.state.claim_pass_due(now, self.claim_idle_ms / 1000):
            return []
        if self.state.claim_cursor == CLAIM_PASS_START:
            self.state.claim_pass_started(now)
        reply = self.redis.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                                      start_id=self.state.claim_cursor, count=self.batch)
        self.state.claim_pass_continues(text(reply[0]))
        # Redis 6.2 claims a pending entry that was deleted from the stream but returns a nil for it;
        # our next read of our own pending entries shows its id (with no fields), and acknowledges it.
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
        if len(entries) < len(reply[1]):
            self.state.recheck_own_pending()
        if entries:
            self.stats.claimed += len(entries)
            log.info("reclaimed %d vote entr%s left unacknowledged by another consumer",
                     len(entries), "y" if len(entries) == 1 else "ies")
        return entries

    def _read_new(self, block_ms: int) -> list:
        reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.batch,
                                      block=block_ms if block_ms > 0 else None)
        return stream_entries(reply)

    def _handle(self, entries: list) -> int:
        votes: list[VoteEvent] = []
        ack_ids = []
        dead = []  # (entry_id, reason, raw event)
        for entry_id, fields in entries:
            ack_ids.append(entry_id)
            if not fields:
                log.warning("vote entry %s was deleted from the stream before it was archived; "
                            "acknowledging it", text(entry_id))
                continue
            vote, reason = parse_entry(fields, self.signer)
            if vote is not None:
                votes.append(vote)
                continue
            raw = event_field(fields)
            dead.append((entry_id, reason, text(raw) if raw is not None else json.dumps(
                {text(k): text(v) for k, v in fields.items()})))
        counted = self._archive_and_count(votes)
        self.stats.duplicates += len(votes) - counted
        self._acknowledge(ack_ids, dead)
        for entry_id, reason, _raw in dead:
            what = "is refused" if reason in SIGNATURE_REFUSALS else "is malformed"
            log.warning("vote entry %s %s (%s); moved to %s", text(entry_id), what, reason, self.dead_letter_stream)
        self.stats.dead_lettered += len(dead)
        self.stats.refused_signature += sum(1 for _, reason, _raw in dead if reason in SIGNATURE_REFUSALS)
        return len(ack_ids)

    def _archive_and_count(self, votes: list[VoteEvent]) -> int:
        """Archive durably, then count the votes that were new; returns how many were new."""
        fresh = self._archive_votes(votes) if votes else []
        counted = []
        for vote, new in zip(votes, fresh):
            if new:
                self.tally.add(vote)
                counted.append(vote)
                self.views.add(vote)
        if counted:
            self.schedule.votes_arrived()
            self.stats.counted += len(counted)
            if self.state.warm_start:  # each vote judged by the ratings fitted before it was read
                self.voters.observe(counted, self.state.warm_start)
        return len(counted)

    def _archive_votes(self, votes: list[VoteEvent]) -> list[bool]:
        return self._archive.extend(votes)

    def _acknowledge(self, ack_ids: list, dead: list) -> None:
        # One MULTI: a malformed entry is never acknowledged without reaching the dead-letter stream.
        pipe = self.redis.pipeline(transaction=True)
        forged = sum(1 for _, reason, _raw in dead if reason in SIGNATURE_REFUSALS)
        if forged:  # the arena's /metrics: arena_votes_refused_signature
            pipe.hincrby(refit_stats_key(self.prefix), REFUSED_SIGNATURE_FIELD, forged)
        for entry_id, reason, raw in dead:
            pipe.xadd(self.dead_letter_stream, {
                "entry_id": entry_id, "reason": reason, "event": raw,
                "consumer": self.consumer, "dead_at": repr(time.time()),
            })
        pipe.xack(self.stream, self.group, *ack_ids)
        pipe.execute()

    # -- publishing ----------------------------------------------------------------------------

    def refit_and_publish(self) -> Snapshot:
        """Fit the current tally (warm start from the last theta) and publish the Snapshot, then
        every other view (leaderboard.worker.publish), all in one transaction.

        Needs a started worker (``process_once`` has run): before it, the tally does not hold
        the archive and publishing it would show an empty leaderboard."""
        if self.state.phase is not Phase.CONSUMING:
            raise RuntimeError(f"the worker is {self.state.phase.value}, not consuming: "
                               "call process_once() (or run_forever) before publishing")
        started = time.monotonic()
        flagged = list(self.voters.flagged())
        snapshot = build_snapshot(self.tally, alpha=self.alpha, init_theta=self.state.warm_start,
                                  flagged_voters=flagged, flagged_voter_weight=self.flagged_voter_weight)
        # the overall snapshot at snapshot_key and its announcement go in the same transaction as the
        # views, each fitted with the flagged voters' votes weighted alike
        self.publisher.publish(LiveVotes(self.tally, self.views), snapshot,
                               next_refit_at=snapshot.generated_at + self.schedule.wait,
                               flagged_voters=flagged, flagged_voter_weight=self.flagged_voter_weight)
        self.redis.hset(refit_stats_key(self.prefix), mapping={  # for the arena's /metrics
            "duration_seconds": repr(time.monotonic() - started), "finished_at": repr(time.time()),
            "votes": snapshot.total_votes})
        if is_fitted(snapshot):
            self.state.fitted(dict(zip(snapshot.models, snapshot.theta)))
        ended = time.monotonic()
        self.schedule.published(started, ended)
        self.last_snapshot = snapshot
        self.stats.published += 1
        log.info("published leaderboard: %d votes, %d models, %s, and its category/style views (%.3fs)",
                 snapshot.total_votes, len(snapshot.rows), snapshot.method, ended - started)
        return snapshot

    def refit_due(self) -> bool:
        return self.schedule.due(time.monotonic())

    def block_ms(self) -> int:
        """Block no longer than the lease renewal period, nor past the next due refit."""
        return self.schedule.block_ms(time.monotonic(), min(MAX_BLOCK_MS, self.lease.ttl_ms // 3))

    # -- the loop ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Consume and publish until ``stop`` is set; never raises (Redis outages are retried)."""
        run_forever(self, stop)
