"""Pseudonymous voter ids and sessions. Raw IPs are hashed here and go nowhere else.

Sessions are issued by the server, never chosen by the client: a JSON API session is 128 random
bits kept in Redis (:class:`ApiSessions`, so every web process knows it), a page session 128 random
bits signed with a key of this process (:class:`PageSessions`, kept in an HttpOnly cookie; a page
stays on one process, as Gradio's event queue needs). A battle belongs to the session that started it.

The voter-id key never lives in Redis (where the votes are): a leaked Redis, AOF or export then
cannot be brute-forced back to addresses (an IPv4 address has only 2^32 values, so anyone holding
the key could hash them all). The key comes from ``ARENA_VOTER_SECRET`` or from a 0600 file in the
data directory (``<data_dir>/secrets/``), and changes every rotation period (see
:class:`VoterSecret`): ids change at each boundary, which is the price of a key worth less once it
has been rotated away.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from arena.keys import api_session_key, voter_secret_key
from leaderboard.data.private_files import create_exclusively

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400
SECRET_DIR = "secrets"
KEY_BYTES = 32


class VoterSecret:
    """The voter-id HMAC key of each rotation period.

    ``rotation_days`` > 0: period ``n`` is ``floor(unix_time / (rotation_days days))``, the same
    in every process. With ``configured`` (``ARENA_VOTER_SECRET``, for several machines) the key
    of period ``n`` is ``HMAC-SHA256(configured, "voter-id period n")``: every process derives the
    same key, but the configured value unlocks every period, so keep it out of anything the
    votes are stored with. Without it, each period's key is 32 random bytes in
    ``<data_dir>/secrets/voter-id-<n>.key`` (mode 0600, created atomically so processes sharing
    the data directory agree), and the files of earlier periods are deleted: once a period is
    over, nobody (not even the operator) can map its ids back to addresses.
    ``rotation_days`` 0: one key forever (the configured value itself, or ``voter-id.key``).
    """

    def __init__(self, *, configured: str | None, data_dir: Path | str, rotation_days: float = 0.0,
                 clock: Callable[[], float] = time.time):
        if configured is not None and len(configured.encode()) < 16:
            raise ValueError("ARENA_VOTER_SECRET must be at least 16 bytes (32 random bytes, hex, is a good choice)")
        if rotation_days < 0:
            raise ValueError(f"the voter-id rotation period must be >= 0 days, got {rotation_days}")
        self._configured = configured.encode() if configured is not None else None
        self.directory = Path(data_dir) / SECRET_DIR
        self.rotation_seconds = rotation_days * SECONDS_PER_DAY
        self.clock = clock
        self._cached: tuple[int, bytes] | None = None

    @property
    def source(self) -> str:
        return "ARENA_VOTER_SECRET" if self._configured is not None else str(self.directory)

    def period(self, now: float | None = None) -> int:
        if not self.rotation_seconds:
            return 0
        return int((self.clock() if now is None else now) // self.rotation_seconds)

    def next_rotation(self, now: float | None = None) -> float | None:
        """Unix time the current key is replaced (None: never)."""
        if not self.rotation_seconds:
            return None
        return (self.period(now) + 1) * self.rotation_seconds

    def key(self, now: float | None = None) -> bytes:
        period = self.period(now)
        if self._cached is None or self._cached[0] != period:
            self._cached = (period, self._derived(period) if self._configured is not None else self._from_file(period))
        return self._cached[1]

    def _derived(self, period: int) -> bytes:
        if not self.rotation_seconds:
            return self._configured
        return hmac.new(self._configured, f"voter-id period {period}".encode(), hashlib.sha256).digest()

    def file_for(self, period: int) -> Path:
        return self.directory / ("voter-id.key" if not self.rotation_seconds else f"voter-id-{period}.key")

    def _from_file(self, period: int) -> bytes:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.file_for(period)
        if not path.exists():
            create_exclusively(path, secrets.token_bytes(KEY_BYTES))
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ValueError(f"{path}: a voter-id key file holds {KEY_BYTES} bytes, this one {len(key)}; "
                             "delete it to start a new key (voter ids will change)")
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        self._forget_earlier(period)
        return key

    def _forget_earlier(self, period: int) -> None:
        if not self.rotation_seconds:
            return
        for old in self.directory.glob("voter-id-*.key"):
            try:
                if int(old.stem.removeprefix("voter-id-")) < period:
                    old.unlink(missing_ok=True)
            except ValueError:
                continue

    def __repr__(self) -> str:
        return f"VoterSecret(source={self.source!r}, rotation_days={self.rotation_seconds / SECONDS_PER_DAY:g})"



class VoterIdentity:
    """voter id = HMAC-SHA256(key of the current period, client address), truncated: stable per
    voter within a rotation period, not reversible without the key, identical across web
    processes that share the secret (or the data directory)."""

    def __init__(self, secret: bytes | VoterSecret):
        if isinstance(secret, bytes) and len(secret) < 16:
            raise ValueError("the voter-id secret must be at least 16 bytes")
        self._secret = secret

    def voter_id(self, client_address: str | None, now: float | None = None) -> str:
        key = self._secret if isinstance(self._secret, bytes) else self._secret.key(now)
        digest = hmac.new(key, (client_address or "unknown").encode(), hashlib.sha256).hexdigest()
        return "v_" + digest[:20]

    def __repr__(self) -> str:
        return "VoterIdentity(secret=***)"


SESSION_BYTES = 16


def new_session_id() -> str:
    """A JSON API session's id (the page's are ``ui:`` + a PageSessions id)."""
    return secrets.token_hex(SESSION_BYTES)


def is_api_session(session: str) -> bool:
    """Whether ``session`` has the shape new_session_id gives (32 lowercase hex digits)."""
    return len(session) == 2 * SESSION_BYTES and all(c in "0123456789abcdef" for c in session)


class ApiSessions:
    """The JSON API's sessions: issued here and kept in Redis for ``ttl`` seconds after their last
    new battle. A session the client made up (``000...0``), or one unused for ``ttl``, is not
    adopted: ``session_for`` gives a new one instead. Turns and votes need no look-up: a battle
    only ever belongs to an issued session, so a made-up one matches none."""

    def __init__(self, redis_client, prefix: str, ttl: int):
        self.redis = redis_client  # redis.asyncio
        self.prefix = prefix
        self.ttl = int(ttl)

    async def issue(self) -> str:
        session = new_session_id()
        await self.redis.set(api_session_key(self.prefix, session), 1, ex=self.ttl)
        return session

    async def renew(self, session: str) -> bool:
        """Whether ``session`` was issued (and is still kept); if so, kept another ``ttl`` seconds."""
        return is_api_session(session) and bool(await self.redis.expire(api_session_key(self.prefix, session),
                                                                         self.ttl))

    async def session_for(self, offered: str | None) -> str:
        """``offered`` if this arena issued it, else a new session."""
        if offered is not None and await self.renew(offered):
            return offered
        return await self.issue()


class PageSessions:
    """The page's sessions: a random id and its HMAC under a key of this process, ``<id>.<tag>``.
    Gradio's session hash is the browser's choice, so the page binds its battles to this instead.
    The key lives only in this process: a restart issues new sessions, as it loses the page's
    server-side state anyway."""

    def __init__(self, key: bytes | None = None):
        self._key = key if key is not None else secrets.token_bytes(KEY_BYTES)

    def _tag(self, session: str) -> str:
        return hmac.new(self._key, f"page session {session}".encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        session = new_session_id()
        return f"{session}.{self._tag(session)}"

    def verified(self, signed: str | None) -> str | None:
        """The session id in ``signed`` if this process issued it, else None."""
        session, _, tag = (signed or "").partition(".")
        if not is_api_session(session) or not hmac.compare_digest(tag.encode(), self._tag(session).encode()):
            return None
        return session

    def __repr__(self) -> str:
        return "PageSessions(key=***)"



def forget_secret_in_redis(redis_client, prefix: str) -> bool:
    """Delete the voter-id key that earlier versions kept in Redis, and ask Redis to rewrite its
    append-only file so the old key leaves the disk too. Returns whether there was one."""
    if not redis_client.delete(voter_secret_key(prefix)):
        return False
    log.warning("removed the voter-id secret earlier versions kept in Redis (%s); voter ids change once",
                voter_secret_key(prefix))
    try:
        redis_client.bgrewriteaof()
    except Exception as exc:  # a managed Redis may refuse it: say so, the key is gone from memory anyway
        log.warning("could not rewrite the Redis append-only file (%s): the old secret stays in it until "
                    "the next rewrite", exc)
    return True
