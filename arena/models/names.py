"""Which model names an arena knows, for commands that run outside any web process.

Every web process announces its configured models when it starts (``announce_configured``);
the operator commands check a name against those, the models owners registered
(arena.owners.store) and the latest leaderboard (``known_models``),
so a typo in ``matchmaker pause`` is an error instead of a pause of nothing. A model dropped
from the configuration stays known (it may still be paused or pinned, and can be resumed).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from arena.keys import configured_models_key, owner_models_key
from leaderboard.store.redis_keys import snapshot_key
from leaderboard.store.stream import text
from leaderboard.views.reader import parse_snapshot


def announce_configured(client, prefix: str, names: Iterable[str]) -> None:
    """Record ``names`` as configured (sync client; one round trip)."""
    names = list(names)
    if names:
        now = repr(time.time())
        client.hset(configured_models_key(prefix), mapping={name: now for name in names})


def known_models(client, prefix: str) -> set[str]:
    """Names announced by a web process, registered by an owner or rated on the latest leaderboard."""
    pipe = client.pipeline(transaction=False)
    pipe.hkeys(configured_models_key(prefix))
    pipe.hkeys(owner_models_key(prefix))
    pipe.get(snapshot_key(prefix))
    configured, registered, raw = pipe.execute()
    snapshot = parse_snapshot(raw)
    rated = {row.model for row in snapshot.rows} if snapshot else set()
    return {text(name) for name in configured} | {text(name) for name in registered} | rated
