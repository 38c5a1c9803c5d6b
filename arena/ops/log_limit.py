"""Repeated log lines limited, so a flood cannot fill the disk with one message.

At open-file exhaustion the log grew 411 MB: about 930,000 "Too many open files" lines, the same
message from the same logger again and again. ``RepeatLimit`` is a logging filter that lets the
same message (same logger, level and format string, whatever its arguments) through at most
``burst`` times per ``interval`` seconds; the first of those lines after some were held back says
how many (``[930 similar lines suppressed before this one]``). It sits on the handlers, so every
logger that writes through them is limited, including uvicorn's (which have handlers of their own).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

# The loggers whose handlers get the filter: ours, uvicorn's (its own handlers, not propagating),
# asyncio's (it logs each failed accept), and the root (everything else propagates to it).
LIMITED_LOGGERS = ("", "arena", "leaderboard", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")

BURST = 10
INTERVAL_SECONDS = 60.0
# Distinct messages remembered; past it the oldest is forgotten (a forgotten one starts afresh).
MAX_MESSAGES = 1000


class RepeatLimit(logging.Filter):
    """At most ``burst`` records of one message per ``interval`` seconds; see the module."""

    def __init__(self, burst: int = BURST, interval: float = INTERVAL_SECONDS, clock=time.monotonic):
        super().__init__()
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        # (logger, level, format) -> [window start, lines let through in it, lines held back in it]
        self._seen: OrderedDict[tuple, list] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        # a record passes every handler of its loggers: count it once, give each handler the same verdict
        verdict = record.__dict__.get("_repeat_limit")
        if verdict is not None and verdict[0] is self:
            return verdict[1]
        allowed = self._allow(record)
        record._repeat_limit = (self, allowed)
        return allowed

    def _allow(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            state = self._seen.get(key)
            if state is None:
                state = self._seen[key] = [now, 0, 0]
                if len(self._seen) > MAX_MESSAGES:
                    self._seen.popitem(last=False)
            else:
                self._seen.move_to_end(key)
            held_back = 0
            if now - state[0] >= self.interval:
                held_back = state[2]
                state[:] = [now, 0, 0]
            if state[1] >= self.burst:
                state[2] += 1
                return False
            state[1] += 1
        if held_back:
            record.msg = f"{record.getMessage()} [{held_back} similar lines suppressed before this one]"
            record.args = None
        return True


def limit_repeated_lines(limit: RepeatLimit | None = None, loggers=LIMITED_LOGGERS) -> RepeatLimit:
    """Put one RepeatLimit on every handler of ``loggers`` (once each); call it after logging and
    uvicorn have set up their handlers. Returns the filter."""
    limit = limit or RepeatLimit()
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, RepeatLimit) for existing in handler.filters):
                handler.addFilter(limit)
    return limit
