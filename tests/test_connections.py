"""Connections cannot exhaust the web process (issue 26, item 6).

Before: 19,800 idle connections held the process at 19,938 open files and ``/healthz`` failed;
1,500 requests sending their body slowly were never closed. Scaled here to 2,000 idle connections
from one address (every 127.0.0.0/8 address is this machine's loopback, so each client below binds
its own source address: the flood 127.0.0.2, the health check 127.0.0.3, the slow body 127.0.0.4).
The web process runs apart, so its open files are counted from /proc.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import subprocess
import sys
import time

import httpx

from arena.ops.redis_server import free_port
from tests.helpers import PROJECT_ROOT, wait_until
from tests.serve_support import serve_env, stop, wait_healthy

IDLE_CONNECTIONS = 2_000
PER_CLIENT = 64
REQUEST_TIMEOUT = 2.0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connect_from(source: str, port: int) -> socket.socket:
    connection = socket.socket()
    connection.bind((source, 0))
    connection.connect(("127.0.0.1", port))
    return connection


SEEN: dict[int, bytes] = {}      # per socket (fileno), what the server sent before closing it
PARTIAL: dict[int, bytes] = {}   # per socket, what arrived so far


def closed_by_server(connection: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is still open."""
    if connection.fileno() in SEEN:
        return SEEN[connection.fileno()]
    connection.setblocking(False)
    try:
        while chunk := connection.recv(65536):
            PARTIAL[connection.fileno()] = PARTIAL.get(connection.fileno(), b"") + chunk
    except BlockingIOError:
        return None
    except ConnectionResetError:
        pass
    SEEN[connection.fileno()] = PARTIAL.pop(connection.fileno(), b"")
    return SEEN[connection.fileno()]


def test_idle_connections_from_one_address_leave_healthz_answering_and_slow_bodies_are_cut(redis_url, tmp_path):
    SEEN.clear()
    PARTIAL.clear()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE_CONNECTIONS + 500
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "the test process cannot open enough files"
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    web = subprocess.Popen([sys.executable, "-m", "arena", "serve", "--no-worker", "--redis-url", redis_url,
                            "--data-dir", str(tmp_path / "data"), "--port", str(port),
                            "--max-connections-per-client", str(PER_CLIENT), "--request-timeout", str(REQUEST_TIMEOUT)],
                           cwd=PROJECT_ROOT, env=serve_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    idle: list[socket.socket] = []
    try:
        wait_healthy(url, web)
        baseline = open_files(web.pid)
        for _ in range(IDLE_CONNECTIONS):
            idle.append(connect_from("127.0.0.2", port))
        # every connection past the first PER_CLIENT is answered 503 and closed at once
        refused = wait_until(lambda count: count >= IDLE_CONNECTIONS - PER_CLIENT,
                             observe=lambda: sum(1 for c in idle[PER_CLIENT:] if closed_by_server(c) is not None),
                             what="the connections past the per-client cap to be closed")
        held = open_files(web.pid) - baseline

        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=10) as other:
            started = time.monotonic()
            health = other.get(f"{url}/healthz")
            health_seconds = time.monotonic() - started

        # the held ones sent nothing: each is closed once its request timeout passes
        started = time.monotonic()
        wait_until(lambda: all(closed_by_server(c) is not None for c in idle[:PER_CLIENT]), interval=0.05,
                   what="the idle connections within the cap to be closed after the request timeout")
        idle_closed_seconds = time.monotonic() - started

        # a request whose body trickles in (one byte each half second) is cut off at the timeout
        slow = connect_from("127.0.0.4", port)
        slow.sendall(b"POST /api/battles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{")
        started = time.monotonic()
        trickled = 0
        poller = select.poll()  # not select(): the test holds file descriptors past 1024
        poller.register(slow, select.POLLIN)
        while trickled < 200:
            readable = poller.poll(500)
            if readable:
                break
            slow.send(b" ")
            trickled += 1
        slow_cut_seconds = time.monotonic() - started
        assert readable and closed_by_server(slow) is not None
        slow.close()
        print(f"connections: {IDLE_CONNECTIONS} idle from one address: {refused} refused at once, the process "
              f"held {held} more open files; /healthz from another address {health.status_code} in "
              f"{health_seconds * 1000:.0f} ms; idle ones closed {idle_closed_seconds:.1f} s later; a trickling "
              f"body cut after {slow_cut_seconds:.1f} s ({trickled} bytes; timeout {REQUEST_TIMEOUT} s)")
        assert closed_by_server(idle[-1]).startswith(b"HTTP/1.1 503")
        assert held <= PER_CLIENT + 16
        assert health.status_code == 200 and health_seconds < 1.0
        assert slow_cut_seconds <= REQUEST_TIMEOUT + 1.0
    finally:
        for connection in idle:
            connection.close()
        stop(web)
        log.close()


def test_connections_past_the_overall_cap_are_answered_503_and_closed(redis_url, tmp_path):
    total, opened = 100, 150
    SEEN.clear()  # file numbers of the previous test's sockets come round again
    PARTIAL.clear()
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    web = subprocess.Popen([sys.executable, "-m", "arena", "serve", "--no-worker", "--redis-url", redis_url,
                            "--data-dir", str(tmp_path / "data"), "--port", str(port), "--max-connections", str(total),
                            "--max-connections-per-client", "0"],
                           cwd=PROJECT_ROOT, env=serve_env(), stdout=log, stderr=subprocess.STDOUT)
    connections: list[socket.socket] = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}", web)
        # from many addresses, so only the overall cap can refuse them
        connections = [connect_from(f"127.0.1.{n % 250 + 1}", port) for n in range(opened)]
        refused = wait_until(lambda count: count >= opened - total,
                             observe=lambda: sum(1 for c in connections if (closed_by_server(c) or b"").startswith(
                                 b"HTTP/1.1 503")),
                             what="the connections past the overall cap to be answered 503")
    finally:
        for connection in connections:
            connection.close()
        stop(web)
        log.close()
    print(f"connections: {opened} from 150 addresses with --max-connections {total}: {refused} answered 503")
    assert opened - total <= refused <= opened - total + 5
