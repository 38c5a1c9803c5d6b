"""Owners' API keys encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The server key is ``ARENA_SECRET_KEY`` (a Fernet key: 32 url-safe base64 bytes, e.g. from
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``)
or else generated once into ``DATA_DIR/secret.key`` with mode 0600. Every web process that
serves owner models needs the same key (same environment, or the same data dir). Redis only
ever holds the ciphertext, so a leaked Redis or AOF does not leak the keys.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The server key is unusable (wrong format, unreadable file, or not the key that encrypted)."""


def mask_key(api_key: str | None) -> str:
    """How a key is shown anywhere: a hint of its start and its last four characters, ``sk-…abcd``."""
    if not api_key:
        return "(none)"
    head = api_key[:3] if len(api_key) >= 12 else ""
    return f"{head}…{api_key[-4:]}" if len(api_key) >= 8 else "…"


class SecretBox:
    """Encrypts and decrypts owners' API keys with the server key; its repr shows no key."""

    def __init__(self, key: bytes):
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError("the server key (ARENA_SECRET_KEY or secret.key) must be a Fernet key: "
                                 "32 url-safe base64-encoded bytes") from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError("an owner's stored API key does not decrypt with this server key: every web "
                                 "process must use the same ARENA_SECRET_KEY (or data dir)") from None

    def __repr__(self) -> str:
        return "SecretBox(key=***)"


def load_secret_box(data_dir: str | Path, configured: str | None = None) -> SecretBox:
    """The box for the configured key, else for the key in ``data_dir/secret.key`` (created 0600
    on first use, atomically, so two processes starting together agree on one key)."""
    if configured:
        return SecretBox(configured.encode())
    path = Path(data_dir) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # written in full under a temporary name, then linked into place: a process that loses
        # the race reads the winner's complete key, never a half-written file
        temporary = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the server key {path}: {exc.strerror or exc}") from None
    if not key:
        raise SecretKeyError(f"{path} is empty; delete it to generate a new key (stored owner keys are then lost)")
    return SecretBox(key)
