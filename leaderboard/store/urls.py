"""URLs as they may appear in messages and logs, and where a running embedded Redis leaves its URL."""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def embedded_url_file(redis_dir: Path) -> Path:
    """Where a running embedded Redis (``arena.ops.redis_server``) leaves its address in its directory
    (``<data dir>/redis``), so commands on the same machine can find it."""
    return Path(redis_dir) / "redis.url"


def running_arena_redis_url(redis_url: str | None, data_dir: Path) -> str | None:
    """``redis_url`` when given, else the address the embedded Redis of a ``serve`` running on
    ``data_dir`` left there; None when there is neither."""
    if redis_url:
        return redis_url
    url_file = embedded_url_file(Path(data_dir) / "redis")
    try:
        return url_file.read_text().strip()
    except FileNotFoundError:
        return None


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
