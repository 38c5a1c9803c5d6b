"""Draining a web process before it stops: refuse new work, let the answers in flight finish.

When ``serve`` is told to stop (SIGTERM from systemd, Docker or Kubernetes; Ctrl-C), its
:class:`Drain` closes: new battles and new turns are refused with 503 (a load balancer retries
them on another process, and ``/healthz`` answers 503 so it stops sending more), votes are still
taken (they are one atomic write), and the turns streaming right now may finish. Whatever is
still streaming when the grace period ends is cancelled: the battle engine then stores that turn
as failed, so the battle can no longer be voted on, and the request ends with a 503 saying so
(the voter starts a new round); nothing is left half-written. A regeneration cut off the same way
hands its battle back with the previous answer, still votable, and its 503 says so.

The web server runs on its own event loop thread; the stopping thread waits on a
``threading.Event``, so the count is kept under a lock and cancelling goes through the loop.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

from arena.errors import BattleError


class ShuttingDown(BattleError):
    """This web process is stopping; the request may be sent again (another process takes it)."""

    status = 503


class TurnEnded(ShuttingDown):
    """The process stopped before this turn's answers finished; the battle is stored as failed."""


TURN_ENDED = ("this arena process stopped before the answers finished, so this battle cannot be voted on: "
              "start a new round")
# a regeneration cut short hands the battle back with its previous answer
REGENERATION_ENDED = ("this arena process stopped before the new answer finished; the previous answer is kept "
                      "and the battle can still be voted on")


class Drain:
    """Counts the turns in flight in this process and refuses new ones once closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[asyncio.Task, asyncio.AbstractEventLoop] = {}
        self._ended: set[asyncio.Task] = set()  # turns this drain cancelled
        self._since_close = {"finished": 0, "ended": 0}  # turns done after close(): by themselves, or cancelled
        self._closed = threading.Event()
        self.idle = threading.Event()
        self.idle.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def check_open(self) -> None:
        if self._closed.is_set():
            raise ShuttingDown("this arena process is shutting down: new battles go to another process; "
                               "try again in a moment")

    @contextmanager
    def turn(self, ended_message: str = TURN_ENDED):
        """Around one streamed turn (in its asyncio task): refused once closed, counted while it
        runs. If the drain ends it, the cancellation comes out as :class:`TurnEnded` saying ``ended_message``."""
        self.check_open()
        task = asyncio.current_task()
        with self._lock:
            self._turns[task] = asyncio.get_running_loop()
            self.idle.clear()
        try:
            yield
        except asyncio.CancelledError:
            with self._lock:
                ended = task in self._ended
            if not ended:
                raise
            task.uncancel()  # our cancellation, answered here: the request ends with a clear 503
            raise TurnEnded(ended_message) from None
        finally:
            with self._lock:
                self._turns.pop(task, None)
                if self._closed.is_set():
                    self._since_close["ended" if task in self._ended else "finished"] += 1
                self._ended.discard(task)
                if not self._turns:
                    self.idle.set()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._turns)

    def since_close(self) -> tuple[int, int]:
        """(finished, ended): the turns done since :meth:`close`, by themselves or cancelled by this drain."""
        with self._lock:
            return self._since_close["finished"], self._since_close["ended"]

    def close(self) -> int:
        """Refuse new battles and turns from now on; returns how many are in flight."""
        with self._lock:
            self._closed.set()
            return len(self._turns)

    def wait_idle(self, timeout: float) -> bool:
        """Wait (in a thread other than the server's loop) until no turn is in flight; False if
        ``timeout`` passed first."""
        return self.idle.wait(timeout)

    def cancel_in_flight(self) -> int:
        """Cancel every turn still streaming (the grace period is over); returns how many."""
        with self._lock:
            turns = list(self._turns.items())
            self._ended.update(task for task, _ in turns)
        for task, loop in turns:
            loop.call_soon_threadsafe(task.cancel)
        return len(turns)
