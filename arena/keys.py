"""Names of the Redis keys the live arena owns (the leaderboard's are in leaderboard.store.redis_keys).

May import: nothing of arena (a leaf).
"""


def battle_key(prefix: str, battle_id: str) -> str:
    """Hash: the battle's fixed facts, its turns, its state and, once voted, the vote id."""
    return f"{prefix}:battle:{battle_id}"


def api_session_key(prefix: str, session: str) -> str:
    """A JSON API session this arena issued (arena.trust.identity.ApiSessions); it expires when unused
    for --battle-ttl seconds."""
    return f"{prefix}:session:{session}"


def voter_secret_key(prefix: str) -> str:
    """The HMAC key for pseudonymous voter ids, generated once and shared by every web process."""
    return f"{prefix}:secret:voter"


def paused_models_key(prefix: str) -> str:
    """Set of models the operator paused (out of every new battle, in every process at once; see
    arena.models.availability). Named ``matchmaker:excluded`` since before availability had its own module:
    kept, so pauses made before an upgrade still hold."""
    return f"{prefix}:matchmaker:excluded"


def model_inflight_key(prefix: str, model: str) -> str:
    """Counter of answers the model is generating right now, across processes (capacity); it
    expires on its own if a process dies mid-answer."""
    return f"{prefix}:model:{model}:inflight"


def rate_limit_key(prefix: str, action: str, bucket: str) -> str:
    """Hash: one rate limit's sliding window, slice number -> actions counted in that slice
    (arena.trust.rate_limit); it expires once its newest slice has left the window."""
    return f"{prefix}:rate:{action.replace(' ', '-')}:{bucket}"


def configured_models_key(prefix: str) -> str:
    """Hash: model name -> when a web process last started with it configured (epoch seconds), so
    operator commands that run outside any web process know which names exist (arena.models.names)."""
    return f"{prefix}:models:configured"


# -- model owners (arena.owners.store) and model health (arena.models.health) ----------------------

def owners_key(prefix: str) -> str:
    """Hash: owner name -> the account as JSON (with the hash of its token, never the token)."""
    return f"{prefix}:owners"


def owner_token_key(prefix: str, token_hash: str) -> str:
    """String: the owner a token (by its SHA-256) belongs to; deleted when the token is revoked."""
    return f"{prefix}:owner-token:{token_hash}"


def owner_models_key(prefix: str) -> str:
    """Hash: model name -> an owner-registered model as JSON (its API key only as ciphertext)."""
    return f"{prefix}:owner-models"


def owner_model_contenders_key(prefix: str) -> str:
    """Hash: ``owner/name`` -> a pending (or rejected) registration whose name another owner's
    unapproved model already holds in ``owner_models_key``: both wait, the operator approves one."""
    return f"{prefix}:owner-models:contenders"


def owner_models_version_key(prefix: str) -> str:
    """Counter bumped on every change to ``owner_models_key`` or its contenders: web processes reload when it moves."""
    return f"{prefix}:owner-models:version"


def model_benched_key(prefix: str, model: str) -> str:
    """Hash while the circuit breaker has benched a model: reason, since, next probe, probes so far."""
    return f"{prefix}:model:{model}:benched"


def model_failures_key(prefix: str, model: str) -> str:
    """Sorted set: the failures that count towards benching, scored by time (the breaker's window)."""
    return f"{prefix}:model:{model}:failures"


def model_errors_key(prefix: str, model: str) -> str:
    """List: the model's most recent errors as JSON (time, kind, reason), newest first."""
    return f"{prefix}:model:{model}:errors"


def model_answered_key(prefix: str, model: str) -> str:
    """String: when the model last finished an answer (unix time); the breaker's streak starts after it."""
    return f"{prefix}:model:{model}:answered-at"


def model_latency_key(prefix: str, model: str) -> str:
    """List: the model's most recent latencies to the first token, in milliseconds, newest first."""
    return f"{prefix}:model:{model}:latency"


def model_daily_battles_key(prefix: str, model: str, day: str) -> str:
    """Counter: battles the model was seated in on ``day`` (UTC, YYYY-MM-DD), for its daily quota."""
    return f"{prefix}:model:{model}:battles:{day}"


def model_daily_named_battles_key(prefix: str, model: str, day: str) -> str:
    """Counter: of those, the named battles (voters picked the model): they may take only a share."""
    return f"{prefix}:model:{model}:named-battles:{day}"


def model_probe_lock_key(prefix: str, model: str) -> str:
    """String with a TTL while one process probes a benched model (so only one does)."""
    return f"{prefix}:model:{model}:probing"
