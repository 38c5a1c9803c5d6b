"""Signed vote events: the web process signs each vote it XADDs, the worker counts only signed ones.

Defence in depth behind Redis's own credentials: whoever can write to Redis (a leaked password, a
misconfigured ACL, another tenant of a shared server) still cannot add a vote to the board, because
the signature's key never lives in Redis. The key comes from ``ARENA_VOTE_KEY`` (several machines:
give the web processes and the worker the same one) or from ``<data_dir>/secrets/vote.key`` (32
random bytes, mode 0600, created once; a ``serve`` and its worker share the data dir).

A stream entry carries ``event`` (the VoteEvent JSON, unchanged), optionally ``text``, and
``sig``: ``v1:`` + HMAC-SHA256(key, event + NUL + text) in hex (text '' when the entry has none).
The archive and the export keep the event alone, as before: the signature guards the one place
anyone with Redis access could write, the stream. An entry whose ``sig`` is missing or wrong is
refused with a reason (the worker dead-letters it; see :func:`signature_refusal`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from leaderboard.data.private_files import create_exclusively, private_dir

SIGNATURE_FIELD = "sig"
SIGNATURE_VERSION = "v1:"
KEY_FILE = Path("secrets") / "vote.key"
KEY_BYTES = 32
MIN_CONFIGURED_BYTES = 16

UNSIGNED = "unsigned: the entry has no 'sig' field (not written by an arena web process)"
BAD_SIGNATURE = "bad signature: 'sig' does not match the event (forged, or signed with another ARENA_VOTE_KEY)"
SIGNATURE_REFUSALS = (UNSIGNED, BAD_SIGNATURE)


def _as_bytes(value) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


class VoteSigner:
    """Signs and checks vote stream entries with one key (see the module docstring)."""

    def __init__(self, key: bytes, source: str = "given"):
        if len(key) < MIN_CONFIGURED_BYTES:
            raise ValueError(f"a vote-signing key must be at least {MIN_CONFIGURED_BYTES} bytes")
        self._key = key
        self.source = source

    @classmethod
    def load(cls, data_dir: Path | str, configured: str | None = None) -> VoteSigner:
        """The key of ``ARENA_VOTE_KEY`` (``configured``) if given, else the data dir's key file
        (created, 0600, if there is none: the first process to create it wins)."""
        if configured:
            return cls(configured.encode(), "ARENA_VOTE_KEY")
        path = Path(data_dir) / KEY_FILE
        if not path.exists():
            private_dir(path.parent)
            create_exclusively(path, secrets.token_bytes(KEY_BYTES))
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ValueError(f"{path}: a vote-signing key file holds {KEY_BYTES} bytes, this one {len(key)}")
        return cls(key, str(path))

    def signature(self, event, text=None) -> str:
        """The ``sig`` field for an entry of ``event`` (and ``text``, if the entry has one)."""
        digest = hmac.new(self._key, _as_bytes(event) + b"\0" + _as_bytes(text), hashlib.sha256).hexdigest()
        return SIGNATURE_VERSION + digest

    def fields(self, event, text=None) -> dict:
        """A stream entry's fields for ``event`` (and ``text``), signed."""
        entry = {"event": event, SIGNATURE_FIELD: self.signature(event, text)}
        if text:
            entry["text"] = text
        return entry

    def refusal(self, fields: dict) -> str | None:
        """Why the entry's signature is refused (missing or wrong), or None when it is right."""
        signature = fields.get(SIGNATURE_FIELD.encode(), fields.get(SIGNATURE_FIELD))
        if signature is None:
            return UNSIGNED
        event = fields.get(b"event", fields.get("event"))
        text = fields.get(b"text", fields.get("text"))
        if not hmac.compare_digest(_as_bytes(signature), self.signature(event, text).encode()):
            return BAD_SIGNATURE
        return None

    def __repr__(self) -> str:
        return f"VoteSigner(source={self.source!r}, key=***)"

