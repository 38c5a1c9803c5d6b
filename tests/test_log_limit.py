"""Repeated log lines are limited (issue 27, item 10): at open-file exhaustion the log grew 411 MB,
about 930,000 lines of one message. Real logging throughout: a handler writing to a stream, and
``python -m arena serve`` writing its log to a file while a client sends it malformed requests
(uvicorn logs "Invalid HTTP request received." for each)."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys

from arena.ops.log_limit import BURST, RepeatLimit, limit_repeated_lines
from arena.ops.redis_server import free_port
from tests.helpers import PROJECT_ROOT
from tests.serve_support import serve_env, stop, wait_healthy

FLOOD_LINES = 100_000
MALFORMED_REQUESTS = 3_000


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_message_repeated_100000_times_writes_burst_lines_then_one_summary():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("arena.test-log-limit")
    logger.addHandler(handler)
    logger.propagate = False
    clock = Clock()
    try:
        limit_repeated_lines(RepeatLimit(burst=5, interval=60.0, clock=clock), loggers=[logger.name])
        for fd in range(FLOOD_LINES):
            logger.error("socket.accept() out of system resource: [Errno 24] Too many open files (fd %d)", fd)
            if fd == 50_000:
                logger.warning("another message, from the same logger")
        within_interval = stream.getvalue().splitlines()
        clock.now += 60.0
        logger.error("socket.accept() out of system resource: [Errno 24] Too many open files (fd %d)", -1)
        summary = stream.getvalue().splitlines()[-1]
    finally:
        logger.removeHandler(handler)
    print(f"log limit: {FLOOD_LINES} lines of one message -> {len(within_interval)} lines in the interval "
          f"({stream.tell()} bytes in all); then: {summary}")
    assert len([line for line in within_interval if "Too many open files" in line]) == 5
    assert "another message, from the same logger" in "\n".join(within_interval)
    assert summary.endswith(f"(fd -1) [{FLOOD_LINES - 5} similar lines suppressed before this one]")


def test_serve_logs_a_flood_of_malformed_requests_in_burst_lines(redis_url, tmp_path):
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = open(log_path, "w")
    web = subprocess.Popen([sys.executable, "-m", "arena", "serve", "--no-worker", "--redis-url", redis_url,
                            "--data-dir", str(tmp_path / "data"), "--port", str(port)],
                           cwd=PROJECT_ROOT, env=serve_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", web)
        answered = 0
        for _ in range(MALFORMED_REQUESTS):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                answered += connection.recv(64).startswith(b"HTTP/1.1 400")
    finally:
        stop(web)
        log.close()
    lines = log_path.read_text().splitlines()
    invalid = [line for line in lines if "Invalid HTTP request received." in line]
    print(f"log limit: {MALFORMED_REQUESTS} malformed requests ({answered} answered 400) -> {len(invalid)} log lines")
    assert answered == MALFORMED_REQUESTS
    assert 1 <= len(invalid) <= BURST
