"""Names of the vote pipeline's Redis keys: the vote stream, its dead letters and consumer group, the
worker's lease and refit figures, the latest snapshot and its channel, and the voter watch.

Each key is built by one function, never spelled inline, so a prefix change (several arenas on one
Redis, or tests sharing a server) is one argument. The published views' keys (one snapshot, stats
and history per view, and their index) are built beside the documents they hold, in
:mod:`leaderboard.views.published`.
"""

DEFAULT_PREFIX = "arena"


def vote_stream_key(prefix: str = DEFAULT_PREFIX) -> str:
    """The stream every accepted vote is XADDed to (one field, ``event``: the VoteEvent JSON)."""
    return f"{prefix}:votes"


def dead_letter_stream_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Stream entries the worker could not read as a VoteEvent, with the reason (fields:
    ``entry_id``, ``reason``, ``event`` (the raw value), ``consumer``, ``dead_at``)."""
    return f"{prefix}:votes:dead"


def vote_consumer_group(prefix: str = DEFAULT_PREFIX) -> str:
    """The consumer group the leaderboard worker reads the vote stream with."""
    return f"{prefix}:leaderboard-workers"


def snapshot_key(prefix: str = DEFAULT_PREFIX) -> str:
    """The latest published leaderboard Snapshot (JSON string)."""
    return f"{prefix}:leaderboard:snapshot"


def snapshot_channel(prefix: str = DEFAULT_PREFIX) -> str:
    """Pub/sub channel announcing a new snapshot (payload: its ``Snapshot.id``)."""
    return f"{prefix}:leaderboard:updates"


def worker_lock_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Lease held by the worker that currently refits and publishes snapshots."""
    return f"{prefix}:leaderboard:refit-lock"


def voter_evidence_key(prefix: str, voter_id: str) -> str:
    """Hash: one voter's anomaly evidence (leaderboard.trust.voter_anomaly): ``m:<model>`` -> log-products
    per delta, ``votes``. Expires when the voter has been quiet for a while."""
    return f"{prefix}:voters:evidence:{voter_id}"


def flagged_voters_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Hash: flagged voter id -> JSON {flagged_at, model, delta, log_evidence, threshold, votes}."""
    return f"{prefix}:voters:flagged"


# The field of refit_stats_key counting the stream entries ever refused for a missing or wrong signature.
REFUSED_SIGNATURE_FIELD = "refused_signature"


def refit_stats_key(prefix: str = DEFAULT_PREFIX) -> str:
    """Hash: the worker's last refit (``duration_seconds``, ``finished_at`` unix time, ``votes``), for metrics,
    and ``refused_signature`` (REFUSED_SIGNATURE_FIELD: forged entries dead-lettered, ever)."""
    return f"{prefix}:leaderboard:refit-stats"
