"""Pseudonymous voter ids and browser sessions. Raw IPs are hashed here and go nowhere else."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from arena.keys import voter_secret_key


class VoterIdentity:
    """voter id = HMAC-SHA256(secret, client address), truncated: stable per voter, not reversible
    without the secret, identical across web processes that share the secret."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the voter-id secret must be at least 16 bytes")
        self._secret = secret

    def voter_id(self, client_address: str | None) -> str:
        digest = hmac.new(self._secret, (client_address or "unknown").encode(), hashlib.sha256).hexdigest()
        return "v_" + digest[:20]

    def __repr__(self) -> str:
        return "VoterIdentity(secret=***)"


def new_session_id() -> str:
    """A JSON API session (the page's are ``ui:`` + Gradio's session hash)."""
    return secrets.token_hex(16)


def is_api_session(session: str) -> bool:
    """Whether ``session`` has the shape new_session_id gives (32 lowercase hex digits)."""
    return len(session) == 32 and all(c in "0123456789abcdef" for c in session)


def shared_voter_secret(redis_client, prefix: str, configured: str | None) -> bytes:
    """The configured secret, else one generated once and kept in Redis for every web process."""
    if configured:
        return configured.encode()
    key = voter_secret_key(prefix)
    redis_client.set(key, secrets.token_hex(32), nx=True)
    return redis_client.get(key)
