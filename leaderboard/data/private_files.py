"""Files only the arena's own user may read: everything in a data directory is 0600 (files) and
0700 (directories).

The data directory holds the vote archive (pseudonymous voter ids, feedback), the embedded Redis's
append-only file (battles, prompts, owners' encrypted keys), its password and URL, and the keys
that sign votes and derive voter ids: none of it is for other local users.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path | str) -> Path:
    """``path`` (and any missing parents) as a directory of mode 0700."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def open_private(path: Path | str, flags: int) -> int:
    """``os.open`` of ``path`` creating it 0600; an existing file of a looser mode is tightened."""
    descriptor = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    if stat.S_IMODE(os.fstat(descriptor).st_mode) != PRIVATE_FILE:
        os.fchmod(descriptor, PRIVATE_FILE)
    return descriptor


def write_private(path: Path | str, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, as a 0600 file (never readable by others, even briefly)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def create_exclusively(path: Path | str, content: bytes) -> None:
    """Write ``content`` to ``path`` (0600, fsynced) unless another process created it first (then
    keep theirs): how a key generated once is shared by processes that start together."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic, and fails if the file exists: the first writer wins
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def make_private(root: Path | str) -> int:
    """Tighten everything under ``root`` (and ``root``) to 0600 / 0700, as a data dir written by an
    older version may need; symbolic links are left alone. Returns how many modes changed."""
    changed = 0
    for directory, dirnames, filenames in os.walk(root):
        for name, mode in [(directory, PRIVATE_DIR), *((os.path.join(directory, d), PRIVATE_DIR) for d in dirnames),
                           *((os.path.join(directory, f), PRIVATE_FILE) for f in filenames)]:
            try:
                info = os.lstat(name)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
                continue
            os.chmod(name, mode)
            changed += 1
    return changed
