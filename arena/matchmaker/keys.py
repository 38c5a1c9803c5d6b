"""Redis keys the matchmaker owns (the snapshot keys are leaderboard.store.redis_keys', the paused set
arena.keys')."""

from __future__ import annotations

PAIR_SEPARATOR = "\t"


def online_belief_key(prefix: str, snapshot_id: str) -> str:
    """The online belief since the snapshot whose ``Snapshot.id`` is ``snapshot_id`` (the id the
    worker announces on ``snapshot_channel``): a JSON string
    ``{"v": votes applied, "m": {model: [mean, variance, battles since the snapshot]}}``. Every
    process reading or moving the belief derives the key here, so they agree on it."""
    return f"{prefix}:matchmaker:online:{snapshot_id}"


def pair_battles_key(prefix: str) -> str:
    """Hash ``<model a>\\t<model b>`` (sorted names) -> battles that pair has had (ci-reduction)."""
    return f"{prefix}:matchmaker:pair-battles"


def pins_key(prefix: str) -> str:
    """Hash ``<model>\\t<model>...`` (sorted names) -> share of battles pinned to that set."""
    return f"{prefix}:matchmaker:pins"


def pair_field(models) -> str:
    return PAIR_SEPARATOR.join(sorted(models))
