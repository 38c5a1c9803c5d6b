"""The leaderboard worker: votes from the Redis stream -> durable archive -> counts -> snapshot.

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

One active worker. Every web process may start a worker (behind a load balancer there are
several), but only the holder of a lease (``worker_lock_key(prefix)``: SET NX PX, renewed every
third of its TTL by a compare-and-renew script) consumes, refits and publishes; the others stand
by and poll the lease, taking over within one TTL of the holder dying. On taking over, a worker
reads its archive from disk (another process on the same data directory may have appended; the
archive's flock keeps two processes from appending at once) -- a worker that held the lease
before reads only what was appended since it let go, unless the file was replaced, in which case
it reads it all again -- and then copies from the stream any vote its archive lacks (when
workers on different machines have different data directories, the previous holder consumed
those votes into its own archive; a worker taking the lease back checks only the entries added
since its last catch-up). That catch-up relies on the stream keeping its history; trimming the
vote stream would need a shared data directory instead.

Snapshots. Every ``refit_interval`` seconds (or four times the last fit's duration, if longer,
so a slow fit cannot crowd out consuming), if new votes arrived, the worker fits and publishes
a Snapshot (SET ``snapshot_key``, PUBLISH ``snapshot_channel``): Bradley-Terry on the per-pair
counts with sandwich intervals (warm-started from the previous theta). When K-wise votes exist,
all votes are fitted together by Plackett-Luce (a pairwise vote is a two-item ranking and a tie a
tied group, which is exactly Bradley-Terry with half-ties; each (pair, outcome) goes in once with
its count as a frequency weight, so the cost grows with the K-wise votes, not with all votes). With too few votes, a comparison
graph in several pieces, or a failed fit, it publishes online Elo ratings instead, with a note
saying why. Only anonymous and K-wise votes are rated (as on LMArena): in ``named`` mode the
voter saw the names, so those votes are archived but not counted.

Redis outages: the loop logs one line, retries with exponential backoff, and resumes; nothing is
acknowledged that is not archived, so no vote is lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
from pydantic import ValidationError

from leaderboard.archive import ArchiveBusyError, ArchiveMovedError, ArchivePosition, VoteArchive, archive_path
from leaderboard.counts import I_WINS, J_WINS, TIE_CLASS, PairCounts
from leaderboard.elo import OnlineElo
from leaderboard.events import MODEL_A, TIE, VoteEvent
from leaderboard.fit import DisconnectedGraphError, NoMaximumLikelihoodError, NoVotesError, fit_leaderboard
from leaderboard.plackett_luce import fit_plackett_luce
from leaderboard.intervals import normal_bounds
from leaderboard.ranks import leaderboard_rows
from leaderboard.redis_keys import (
    DEFAULT_PREFIX,
    dead_letter_stream_key,
    snapshot_channel,
    snapshot_key,
    vote_consumer_group,
    vote_stream_key,
    worker_lock_key,
)
from leaderboard.scale import ELO_PER_NAT, elo_to_nats
from leaderboard.snapshot import Snapshot, SnapshotRow
from leaderboard.urls import redact_url

log = logging.getLogger(__name__)

# Prior precision per rating, in nats^-2: a N(0, 1/alpha) prior on each theta. 0.01 (sd 10 nats,
# ~1700 rating points) weighs as much as 1/25 of one vote between equals (a vote carries 1/4 nat^-2
# of information), so it changes nothing once a model has a few dozen votes, yet keeps every
# rating finite when a new model has won (or lost) all its votes so far.
DEFAULT_ALPHA = 0.01
# Below this many rated votes the sandwich intervals are not worth much; Elo is shown instead.
MIN_VOTES_TO_FIT = 10
LEASE_TTL_MS = 10_000
MAX_BLOCK_MS = 1000
INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
# Errors that mean "Redis is not answering right now" (restart, network, still loading its AOF).
REDIS_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


# ---------------------------------------------------------------------------------------------
# What the worker keeps of the rated votes


class VoteTally:
    """Running statistics of the rated votes: per-pair counts, K-wise rankings, online Elo."""

    def __init__(self) -> None:
        self.pairs = PairCounts.empty()
        self.rankings: list[list[list[str]]] = []  # K-wise votes, groups best first
        self.elo = OnlineElo()
        self.named = 0  # archived but not rated: the voter saw the model names

    @classmethod
    def from_events(cls, events: Iterable[VoteEvent]) -> "VoteTally":
        tally = cls()
        for event in events:
            tally.add(event)
        return tally

    def add(self, event: VoteEvent) -> None:
        if event.mode == "named":
            self.named += 1
        elif event.mode == "kwise":
            self.rankings.append([list(group) for group in event.ranking])
            # Elo sees a K-wise vote as its pairwise comparisons (it has no K-wise form).
            for ahead, behind, outcome in _broken_pairs(event.ranking):
                self.elo.update(ahead, behind, outcome)
        else:
            model_a, model_b = event.models
            self.pairs.add(model_a, model_b, event.outcome)
            self.elo.update(model_a, model_b, event.outcome)

    @property
    def rated(self) -> int:
        return self.pairs.n_votes + len(self.rankings)

    @property
    def archived(self) -> int:
        """Every archived vote, rated or not."""
        return self.rated + self.named

    def votes_per_model(self) -> dict[str, int]:
        votes = self.pairs.votes_per_model()
        for ranking in self.rankings:
            for group in ranking:
                for name in group:
                    votes[name] = votes.get(name, 0) + 1
        return votes

    def all_rankings(self) -> tuple[list[list[list[str]]], list[int]]:
        """Every rated vote as a ranking, with how many votes each stands for: pairwise votes as
        two-item rankings (a tie as one group), one per (pair, outcome) with its count -- so the
        Plackett-Luce fit costs O(pairs + K-wise votes), not O(votes); K-wise votes one each."""
        arrays = self.pairs.arrays()
        models = self.pairs.models
        rankings: list[list[list[str]]] = []
        multiplicity: list[int] = []
        for i, j, count in zip(arrays.pair_i.tolist(), arrays.pair_j.tolist(), arrays.count.tolist()):
            a, b = models[i], models[j]
            for ranking, votes in (([[a], [b]], count[I_WINS]), ([[b], [a]], count[J_WINS]),
                                   ([[a, b]], count[TIE_CLASS])):
                if votes:
                    rankings.append(ranking)
                    multiplicity.append(votes)
        return rankings + self.rankings, multiplicity + [1] * len(self.rankings)


def _broken_pairs(ranking: list[list[str]]):
    """(ahead, behind, outcome) for every pair in a ranking; models in one group tie."""
    for g, group in enumerate(ranking):
        for k, name in enumerate(group):
            for other in group[k + 1:]:
                yield name, other, TIE
            for later in ranking[g + 1:]:
                for other in later:
                    yield name, other, MODEL_A


# ---------------------------------------------------------------------------------------------
# Fitting: tally in, Snapshot out (no Redis here)


def build_snapshot(tally: VoteTally, *, alpha: float = DEFAULT_ALPHA, init_theta: dict[str, float] | None = None,
                   now: float | None = None) -> Snapshot:
    """The leaderboard for the votes in ``tally``; Elo (with a note) when no fit is possible."""
    generated_at = time.time() if now is None else now
    notes = []
    if tally.named:
        notes.append(f"{tally.named} named-mode vote(s) archived but not rated (the voter saw the names)")
    if tally.rated < MIN_VOTES_TO_FIT:
        reason = f"only {tally.rated} rated vote(s) so far; a fit needs at least {MIN_VOTES_TO_FIT}"
        return _elo_snapshot(tally, reason, notes, generated_at, alpha)
    try:
        if tally.rankings:
            snapshot = _plackett_luce_snapshot(tally, alpha, generated_at)
            notes.append(
                f"{len(tally.rankings)} K-wise vote(s): all votes fitted jointly by Plackett-Luce "
                "(a pairwise vote is a two-item ranking; same model as Bradley-Terry)")
        else:
            snapshot = _bradley_terry_snapshot(tally, alpha, init_theta, generated_at)
    except (NoVotesError, DisconnectedGraphError, NoMaximumLikelihoodError) as error:
        return _elo_snapshot(tally, str(error), notes, generated_at, alpha)
    # ArithmeticError: numpy floating-point errors (e.g. FloatingPointError) from a fit
    except (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError) as error:
        log.warning("leaderboard fit failed, publishing online Elo instead: %s", error)
        return _elo_snapshot(tally, f"the fit failed ({error})", notes, generated_at, alpha)
    snapshot.note = "; ".join(notes)
    return snapshot


def _bradley_terry_snapshot(tally: VoteTally, alpha: float, init_theta, generated_at: float) -> Snapshot:
    fit = fit_leaderboard(tally.pairs, ci="sandwich", alpha=alpha, init_theta=init_theta)
    return Snapshot(
        generated_at=generated_at, total_votes=fit.n_votes, method=fit.method,
        rows=[SnapshotRow(**row) for row in fit.rows()],
        models=list(fit.models), theta=fit.theta.tolist(), covariance=fit.covariance.tolist(),
    )


def _plackett_luce_snapshot(tally: VoteTally, alpha: float, generated_at: float) -> Snapshot:
    rankings, multiplicity = tally.all_rankings()
    fit = fit_plackett_luce(rankings, multiplicity=multiplicity, ci="sandwich", alpha=alpha)
    rows = [SnapshotRow(**row) for row in leaderboard_rows(fit["models"], fit["rating"], fit["lower"], fit["upper"],
                                                            fit["votes"])]
    return Snapshot(
        generated_at=generated_at, total_votes=tally.rated, method="plackett-luce+sandwich", rows=rows,
        models=list(fit["models"]), theta=np.asarray(fit["theta"]).tolist(),
        covariance=np.asarray(fit["covariance"]).tolist(),
    )


def _elo_snapshot(tally: VoteTally, reason: str, notes: list[str], generated_at: float, alpha: float) -> Snapshot:
    """Online Elo ratings, with rough intervals: a model with n votes against equals has Fisher
    information n/4 nat^-2, so we show +-1.96 / sqrt(n/4 + alpha) nats (there is no Elo interval)."""
    ratings = tally.elo.ratings()
    votes_by_model = tally.votes_per_model()
    models = sorted(ratings)
    rating = np.array([ratings[name] for name in models])
    votes = np.array([votes_by_model.get(name, 0) for name in models])
    variance = 1.0 / (votes / 4.0 + max(alpha, 1e-3))
    lower, upper = normal_bounds(rating, ELO_PER_NAT ** 2 * np.diag(variance))
    note = (f"online Elo ratings, not a Bradley-Terry fit: {reason}. Elo has no confidence interval; "
            "the bounds shown are a rough +-1.96/sqrt(votes/4) nats")
    return Snapshot(
        generated_at=generated_at, total_votes=tally.rated, method="elo",
        rows=[SnapshotRow(**row) for row in leaderboard_rows(models, rating, lower, upper, votes)],
        models=models, theta=elo_to_nats(rating).tolist(),
        covariance=np.diag(variance).tolist() if models else [],
        note="; ".join(notes + [note]),
    )


# ---------------------------------------------------------------------------------------------
# The lease: one active worker


class RefitLease:
    """A lease in Redis held by the one worker that consumes, refits and publishes.

    ``hold()`` takes the lease if it is free or renews it if it is ours, and says whether we hold
    it. The token is unique per worker instance, so a worker never renews someone else's lease.
    """

    _RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
              "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
    _RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('del', KEYS[1]) else return 0 end")

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl_ms: int = LEASE_TTL_MS):
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = f"{holder}/{uuid.uuid4().hex[:12]}"
        self._renewed_at = -math.inf

    def hold(self) -> bool:
        # Renewing every third of the TTL is enough: until then the lease is certainly still ours.
        now = time.monotonic()
        if now - self._renewed_at < self.ttl_ms / 3000:
            return True
        held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms)
                    or self.client.eval(self._RENEW, 1, self.key, self.token, self.ttl_ms))
        self._renewed_at = now if held else -math.inf
        return held

    def release(self) -> None:
        self._renewed_at = -math.inf
        self.client.eval(self._RELEASE, 1, self.key, self.token)


# ---------------------------------------------------------------------------------------------
# The worker


class LeaseLostError(RuntimeError):
    """Another worker holds the refit lease now; this one must stop consuming."""


@dataclass
class WorkerStats:
    counted: int = 0  # new votes archived and counted
    duplicates: int = 0  # entries whose vote id was already archived (redeliveries)
    dead_lettered: int = 0  # malformed entries moved to the dead-letter stream
    claimed: int = 0  # entries taken over from idle consumers (XAUTOCLAIM)
    published: int = 0  # snapshots published
    read_from_archive: int = 0  # votes read from the archive file when (re)opening it
    stream_checked: int = 0  # stream entries the catch-up compared with the archive


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class VoteWorker:
    """Consumes the vote stream into the archive and publishes leaderboard snapshots.

    ``consumer`` names this worker in the consumer group (default ``<hostname>-<pid>``).
    ``claim_idle_ms``: entries another consumer has held unacknowledged this long are taken over.
    ``alpha``: prior precision per rating (see DEFAULT_ALPHA). ``catch_up``: on start, copy into
    the archive any vote in the stream that it lacks (see the module docstring).
    """

    def __init__(self, redis_client: redis.Redis, data_dir: Path, *, prefix: str = DEFAULT_PREFIX,
                 consumer: str | None = None, refit_interval: float = 2.0, claim_idle_ms: int = 30_000,
                 batch: int = 500, alpha: float = DEFAULT_ALPHA, lease_ttl_ms: int = LEASE_TTL_MS,
                 catch_up: bool = True):
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
        self.stream = vote_stream_key(prefix)
        self.group = vote_consumer_group(prefix)
        self.dead_letter_stream = dead_letter_stream_key(prefix)
        self.lease = RefitLease(redis_client, worker_lock_key(prefix), self.consumer, lease_ttl_ms)
        self.stats = WorkerStats()
        self.tally = VoteTally()
        self.last_snapshot: Snapshot | None = None
        self._archive: VoteArchive | None = None
        # where our archive ended when we last let go of it; self.tally counts exactly the votes up to there
        self._resume_from: ArchivePosition | None = None
        # XRANGE start of the next catch-up: every valid vote up to here is known to be in our archive
        self._stream_checked_to = "-"
        self._group_ready = False
        self._caught_up = False
        self._own_pending_possible = True  # after a start or a failed batch: re-read our PEL first
        self._claim_cursor = "0-0"
        self._last_claim_scan = -math.inf
        self._new_votes = False
        self._last_refit = -math.inf
        self._refit_wait = refit_interval
        self._last_theta: dict[str, float] | None = None
        self._lease_active = False  # run_forever holds the lease; process_once alone does not need it

    # -- start-up ------------------------------------------------------------------------------

    def _start(self) -> None:
        """Open the archive and rebuild the counts from it; make sure the group exists; catch up.

        Idempotent: each step runs once, and a step that failed (Redis down) runs again next time.
        """
        if self._archive is None:
            if self._resume_from is None or not self._resume_archive(self._resume_from):
                self._read_whole_archive()
            self._resume_from = None
            self._new_votes = True  # publish what the archive holds, even if no vote arrives
            self._own_pending_possible = True
        if not self._group_ready:
            try:
                self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
                log.info("created consumer group %s on %s", self.group, self.stream)
            except redis.exceptions.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            self._group_ready = True
        if self.catch_up and not self._caught_up:
            self._catch_up_from_stream()
            self._caught_up = True

    def _read_whole_archive(self) -> None:
        started = time.perf_counter()
        tally = VoteTally()

        def count_archived(event: VoteEvent) -> None:
            tally.add(event)
            self._keep_lease()  # a big archive takes a while: don't let the lease lapse meanwhile

        archive = VoteArchive(archive_path(self.data_dir), on_event=count_archived)
        self.tally = tally
        self._archive = archive
        self._last_theta = None
        self._stream_checked_to = "-"  # a file we had not read (or that was replaced): check the whole stream
        self.stats.read_from_archive += tally.archived
        log.info("vote archive %s: %d votes (%d rated), counts rebuilt in %.2fs",
                 archive.path, self.tally.archived, self.tally.rated, time.perf_counter() - started)

    def _resume_archive(self, position: ArchivePosition) -> bool:
        """Reopen the archive we let go of, reading only the votes appended since; False if it was
        replaced or rewritten meanwhile (then it must be read whole)."""
        started = time.perf_counter()
        appended: list[VoteEvent] = []

        def collect(event: VoteEvent) -> None:
            appended.append(event)
            self._keep_lease()

        try:
            archive = VoteArchive(archive_path(self.data_dir), on_event=collect, resume_from=position)
        except ArchiveMovedError as error:
            log.warning("%s: rebuilding the counts from the whole archive", error)
            return False
        # counted only once the archive is open: a failed reopen leaves the tally matching position
        for event in appended:
            self.tally.add(event)
        self._archive = archive
        self.stats.read_from_archive += len(appended)
        log.info("vote archive %s reopened: %d vote(s) appended since we let go, %d in all (%.2fs)",
                 archive.path, len(appended), self.tally.archived, time.perf_counter() - started)
        return True

    def _catch_up_from_stream(self, page: int = 2000) -> None:
        """Archive and count every valid vote in the stream that the archive lacks.

        Starts after the last entry the previous catch-up checked: the archive only grows (a
        replaced file is read whole, which resets the start), so those entries are still in it.
        """
        started = time.perf_counter()
        added = 0
        cursor = self._stream_checked_to
        while True:
            entries = self.redis.xrange(self.stream, min=cursor, count=page)
            missing = []
            for entry_id, fields in entries:
                raw = _event_field(fields)
                try:
                    vote_id = json.loads(raw)["vote_id"]
                    if vote_id in self._archive.ids:
                        continue
                    missing.append(VoteEvent.model_validate_json(raw))
                except (TypeError, ValueError, KeyError):
                    continue  # malformed: the consumer that reads it dead-letters it
            added += self._archive_and_count(missing)
            self.stats.stream_checked += len(entries)
            if entries:
                cursor = self._stream_checked_to = "(" + _text(entries[-1][0])
            self._keep_lease()
            if len(entries) < page:
                break
        if added:
            log.info("caught up %d vote(s) from the stream that this archive lacked (%.2fs)",
                     added, time.perf_counter() - started)

    def _keep_lease(self) -> None:
        """Inside run_forever: renew the lease (cheap: at most one Redis call per third of its TTL),
        or stop what we are doing if another worker has it."""
        if self._lease_active and not self.lease.hold():
            raise LeaseLostError(f"another worker took the refit lease {self.lease.key}")

    def _stop_consuming(self) -> None:
        """Close the archive (releasing its lock) so another worker can take over; at the next
        start, only what was appended to it meanwhile is read (see _resume_archive)."""
        archive = self._archive
        if archive is not None:
            try:
                self._resume_from = archive.position()
            except OSError:
                self._resume_from = None  # read it whole next time
            archive.close()
        self._archive = None  # only now: another thread seeing None may open the file for writing
        self._caught_up = False
        self._group_ready = False

    def close(self) -> None:
        """Stop consuming and release the lease if we hold it."""
        self._stop_consuming()
        try:
            self.lease.release()
        except redis.exceptions.RedisError:
            pass  # the lease expires by itself

    # -- consuming -----------------------------------------------------------------------------

    def process_once(self, block_ms: int = 1000) -> int:
        """Handle one batch: our own pending entries first, then entries reclaimed from idle
        consumers (XAUTOCLAIM), then new ones (blocking up to ``block_ms``). Returns the number of
        stream entries handled (archived, recognised as duplicates, or dead-lettered)."""
        self._start()
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
            self._own_pending_possible = True
            raise

    def _read_own_pending(self) -> list:
        if not self._own_pending_possible:
            return []
        reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.batch)
        entries = _stream_entries(reply)
        if len(entries) < self.batch:
            self._own_pending_possible = False
        return entries

    def _claim_idle(self) -> list:
        # A full pass over the pending list at most twice per idle period; continue a pass in progress.
        now = time.monotonic()
        if self._claim_cursor == "0-0" and now - self._last_claim_scan < self.claim_idle_ms / 2000:
            return []
        if self._claim_cursor == "0-0":
            self._last_claim_scan = now
        reply = self.redis.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                                      start_id=self._claim_cursor, count=self.batch)
        self._claim_cursor = _text(reply[0])
        # Redis 6.2 claims a pending entry that was deleted from the stream but returns a nil for it;
        # our next read of our own pending entries shows its id (with no fields), and acknowledges it.
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
        if len(entries) < len(reply[1]):
            self._own_pending_possible = True
        if entries:
            self.stats.claimed += len(entries)
            log.info("reclaimed %d vote entr%s left unacknowledged by another consumer",
                     len(entries), "y" if len(entries) == 1 else "ies")
        return entries

    def _read_new(self, block_ms: int) -> list:
        reply = self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.batch,
                                      block=block_ms if block_ms > 0 else None)
        return _stream_entries(reply)

    def _handle(self, entries: list) -> int:
        votes: list[VoteEvent] = []
        ack_ids = []
        dead = []  # (entry_id, reason, raw event)
        for entry_id, fields in entries:
            ack_ids.append(entry_id)
            if not fields:
                log.warning("vote entry %s was deleted from the stream before it was archived; acknowledging it",
                            _text(entry_id))
                continue
            raw = _event_field(fields)
            if raw is None:
                dead.append((entry_id, "the entry has no 'event' field", json.dumps(
                    {_text(k): _text(v) for k, v in fields.items()})))
                continue
            try:
                votes.append(VoteEvent.model_validate_json(raw))
            except ValidationError as error:
                dead.append((entry_id, _validation_reason(error), _text(raw)))
        counted = self._archive_and_count(votes)
        self.stats.duplicates += len(votes) - counted
        self._acknowledge(ack_ids, dead)
        for entry_id, reason, _raw in dead:
            log.warning("vote entry %s is malformed (%s); moved to %s", _text(entry_id), reason, self.dead_letter_stream)
        self.stats.dead_lettered += len(dead)
        return len(ack_ids)

    def _archive_and_count(self, votes: list[VoteEvent]) -> int:
        """Archive durably, then count the votes that were new; returns how many were new."""
        fresh = self._archive_votes(votes) if votes else []
        counted = 0
        for vote, new in zip(votes, fresh):
            if new:
                self.tally.add(vote)
                counted += 1
        if counted:
            self._new_votes = True
            self.stats.counted += counted
        return counted

    def _archive_votes(self, votes: list[VoteEvent]) -> list[bool]:
        return self._archive.extend(votes)

    def _acknowledge(self, ack_ids: list, dead: list) -> None:
        # One MULTI: a malformed entry is never acknowledged without reaching the dead-letter stream.
        pipe = self.redis.pipeline(transaction=True)
        for entry_id, reason, raw in dead:
            pipe.xadd(self.dead_letter_stream, {
                "entry_id": entry_id, "reason": reason, "event": raw,
                "consumer": self.consumer, "dead_at": repr(time.time()),
            })
        pipe.xack(self.stream, self.group, *ack_ids)
        pipe.execute()

    # -- publishing ----------------------------------------------------------------------------

    def refit_and_publish(self) -> Snapshot:
        """Fit the current counts (warm start from the last theta) and publish the Snapshot."""
        self._start()
        started = time.perf_counter()
        started_monotonic = time.monotonic()
        snapshot = build_snapshot(self.tally, alpha=self.alpha, init_theta=self._last_theta)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(snapshot_key(self.prefix), snapshot.model_dump_json())
        pipe.publish(snapshot_channel(self.prefix), repr(snapshot.generated_at))
        pipe.execute()
        if snapshot.method != "elo":
            self._last_theta = dict(zip(snapshot.models, snapshot.theta))
        self._new_votes = False
        self._last_refit = time.monotonic()
        # A slow fit (Plackett-Luce is O(number of K-wise votes)) must not crowd out consuming:
        # keep refits to at most about a fifth of the time.
        self._refit_wait = max(self.refit_interval, 4.0 * (self._last_refit - started_monotonic))
        self.last_snapshot = snapshot
        self.stats.published += 1
        log.info("published leaderboard: %d votes, %d models, %s (%.3fs)", snapshot.total_votes,
                 len(snapshot.rows), snapshot.method, time.perf_counter() - started)
        return snapshot

    def _refit_due(self) -> bool:
        return self._new_votes and time.monotonic() - self._last_refit >= self._refit_wait

    def _block_ms(self) -> int:
        """Block no longer than the lease renewal period, nor past the next due refit."""
        limit = min(MAX_BLOCK_MS, self.lease.ttl_ms // 3)
        if self._new_votes:
            until_refit = self._last_refit + self._refit_wait - time.monotonic()
            limit = min(limit, max(1, int(until_refit * 1000)))
        return limit

    # -- the loop ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Consume and publish until ``stop`` is set; never raises (Redis outages are retried)."""
        outage_started: float | None = None
        backoff = INITIAL_BACKOFF_S
        standing_by = False
        archive_busy_logged = False
        log.info("leaderboard worker %s: stream %s, group %s, data dir %s", self.consumer, self.stream,
                 self.group, self.data_dir)
        try:
            while not stop.is_set():
                try:
                    self._lease_active = self.lease.hold()
                    if not self._lease_active:
                        if self._archive is not None:
                            log.warning("another worker took the refit lease %s; standing by", self.lease.key)
                            self._stop_consuming()
                        elif not standing_by:
                            log.info("standby: another worker holds the refit lease %s; taking over when it expires",
                                     self.lease.key)
                        standing_by = True
                        stop.wait(self.lease.ttl_ms / 3000)
                    else:
                        if standing_by:
                            log.info("holding the refit lease %s: consuming votes", self.lease.key)
                            standing_by = False
                        self.process_once(block_ms=self._block_ms())
                        if self._refit_due():
                            self.refit_and_publish()
                    if outage_started is not None:
                        log.info("Redis is answering again after %.1fs; resuming", time.monotonic() - outage_started)
                        outage_started = None
                    backoff = INITIAL_BACKOFF_S
                    archive_busy_logged = False
                except REDIS_DOWN_ERRORS as error:
                    if outage_started is None:
                        outage_started = time.monotonic()
                        log.error("Redis is not answering (%s); votes wait safely in the stream; "
                                  "retrying with backoff up to %.0fs", error, MAX_BACKOFF_S)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                except redis.exceptions.ResponseError as error:
                    if "NOGROUP" in str(error):  # the stream or group vanished (Redis lost its data)
                        log.warning("consumer group %s is gone; creating it again", self.group)
                        self._group_ready = False
                        continue
                    log.exception("leaderboard worker step failed; retrying in %.1fs", backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                except LeaseLostError as error:
                    log.warning("%s; standing by", error)
                    self._lease_active = False
                    self._stop_consuming()
                    standing_by = True
                except ArchiveBusyError as error:
                    if not archive_busy_logged:
                        log.warning("%s; retrying", error)
                        archive_busy_logged = True
                    stop.wait(1.0)
                except Exception:  # never let the thread die; the votes stay pending meanwhile
                    log.exception("leaderboard worker step failed; retrying in %.1fs", backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            self._lease_active = False
            self.close()


def _stream_entries(reply) -> list:
    """The entries of a one-stream XREADGROUP reply (RESP2: [[key, entries]]; RESP3: {key: [entries]})."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (entries,) = reply.values()
        return entries[0] if entries and isinstance(entries[0], list) else entries
    return reply[0][1]


def _event_field(fields: dict):
    return fields.get(b"event", fields.get("event"))


def _validation_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"not a valid VoteEvent: {where + ': ' if where else ''}{first['msg']}{more}"


# ---------------------------------------------------------------------------------------------
# Command line: python -m leaderboard worker ...


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard worker",
        description="Consume accepted votes from Redis into the vote archive and publish leaderboard snapshots.",
    )
    parser.add_argument("--redis-url", default=env.get("REDIS_URL"), help="Redis to read votes from [REDIS_URL]")
    parser.add_argument("--data-dir", type=Path, default=Path(env.get("ARENA_DATA_DIR", "data")),
                        help="directory of the vote archive votes.jsonl [ARENA_DATA_DIR, default ./data]")
    parser.add_argument("--prefix", default=env.get("ARENA_PREFIX", DEFAULT_PREFIX), help="Redis key prefix [ARENA_PREFIX]")
    parser.add_argument("--refit-interval", type=float, default=2.0, help="seconds between refits (default 2)")
    parser.add_argument("--consumer", default=None, help="consumer name in the group (default <hostname>-<pid>)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.redis_url:
        print("leaderboard worker: no Redis given: pass --redis-url redis://HOST:PORT/0 or set REDIS_URL", file=sys.stderr)
        return 2
    try:
        client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=3.0, socket_timeout=30.0,
                                      health_check_interval=30)
        client.ping()
    except (redis.exceptions.RedisError, ValueError, OSError) as error:
        print(f"leaderboard worker: cannot reach Redis at {redact_url(args.redis_url)}: {error}. "
              "Start Redis or pass the right --redis-url / REDIS_URL.", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("settings: redis_url=%s data_dir=%s prefix=%s refit_interval=%s", redact_url(args.redis_url),
             args.data_dir, args.prefix, args.refit_interval)
    worker = VoteWorker(client, args.data_dir, prefix=args.prefix, consumer=args.consumer,
                        refit_interval=args.refit_interval)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker.run_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
