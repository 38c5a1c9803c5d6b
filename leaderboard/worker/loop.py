"""The worker's loop: hold the lease, consume, refit when due; ride out Redis outages.

Redis outages: the loop logs one line, retries with exponential backoff, and resumes; nothing is
acknowledged that is not archived, so no vote is lost. Any other failure of a step is logged and
retried the same way: the thread never dies, and the votes wait in the stream meanwhile.

The loop drives a :class:`Consumer`: what it needs of one, declared here, so that this module needs
nothing of :mod:`leaderboard.worker.consumer`, whose ``VoteWorker.run_forever`` starts the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis

from leaderboard.data.archive import ArchiveBusyError
from leaderboard.worker.lease import RefitLease
from leaderboard.worker.state import ConsumerState, Lease, Phase

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
ARCHIVE_BUSY_RETRY_S = 1.0
# Errors that mean "Redis is not answering right now" (restart, network, still loading its AOF).
REDIS_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


class Consumer(Protocol):
    """What the loop drives (a :class:`~leaderboard.worker.consumer.VoteWorker`)."""

    consumer: str  # its name in the consumer group
    stream: str
    group: str
    data_dir: Path
    state: ConsumerState
    lease: RefitLease

    def process_once(self, block_ms: int = 1000) -> int: ...

    def block_ms(self) -> int: ...

    def refit_due(self) -> bool: ...

    def refit_and_publish(self) -> object: ...

    def let_go(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class LoopState:
    """What the loop remembers between steps, so that each condition is logged once."""

    outage_started: float | None = None  # monotonic time of the first failed step of an outage
    backoff: float = INITIAL_BACKOFF_S
    archive_busy_logged: bool = False

    def step_succeeded(self) -> float | None:
        """Back to normal; returns how long the outage lasted, if there was one."""
        lasted = None if self.outage_started is None else time.monotonic() - self.outage_started
        self.outage_started = None
        self.backoff = INITIAL_BACKOFF_S
        self.archive_busy_logged = False
        return lasted

    def next_backoff(self) -> float:
        wait = self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)
        return wait


def run_forever(worker: Consumer, stop: threading.Event) -> None:
    """Consume and publish until ``stop`` is set; never raises (Redis outages are retried)."""
    loop = LoopState()
    log.info("leaderboard worker %s: stream %s, group %s, data dir %s", worker.consumer, worker.stream,
             worker.group, worker.data_dir)
    try:
        while not stop.is_set():
            try:
                _step(worker, stop)
                lasted = loop.step_succeeded()
                if lasted is not None:
                    log.info("Redis is answering again after %.1fs; resuming", lasted)
            except REDIS_DOWN_ERRORS as error:
                if loop.outage_started is None:
                    loop.outage_started = time.monotonic()
                    log.error("Redis is not answering (%s); votes wait safely in the stream; "
                              "retrying with backoff up to %.0fs", error, MAX_BACKOFF_S)
                stop.wait(loop.next_backoff())
            except redis.exceptions.ResponseError as error:
                if "NOGROUP" in str(error):  # the stream or group vanished (Redis lost its data)
                    log.warning("consumer group %s is gone; creating it again", worker.group)
                    worker.state.group_lost()
                    continue
                log.exception("leaderboard worker step failed; retrying in %.1fs", loop.backoff)
                stop.wait(loop.next_backoff())
            except ArchiveBusyError as error:
                if not loop.archive_busy_logged:
                    log.warning("%s; retrying", error)
                    loop.archive_busy_logged = True
                stop.wait(ARCHIVE_BUSY_RETRY_S)
            except Exception:  # never let the thread die; the votes stay pending meanwhile
                log.exception("leaderboard worker step failed; retrying in %.1fs", loop.backoff)
                stop.wait(loop.next_backoff())
    finally:
        worker.state.lease_not_needed()
        worker.close()


def _step(worker: Consumer, stop: threading.Event) -> None:
    """One turn: stand by while another worker holds the lease; otherwise one batch, and a refit if due."""
    was_standing_by = worker.state.lease is Lease.LOST
    if not worker.lease.hold():
        worker.state.lease_lost()
        if worker.state.phase is not Phase.CLOSED:
            log.warning("another worker took the refit lease %s; standing by", worker.lease.key)
            worker.let_go()
        elif not was_standing_by:
            log.info("standby: another worker holds the refit lease %s; taking over when it expires",
                     worker.lease.key)
        stop.wait(worker.lease.poll_seconds)
        return
    worker.state.lease_held()
    if was_standing_by:
        log.info("holding the refit lease %s: consuming votes", worker.lease.key)
    worker.process_once(block_ms=worker.block_ms())
    if worker.state.lease is not Lease.LOST and worker.refit_due():  # LOST: it let go while starting
        worker.refit_and_publish()
