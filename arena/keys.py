"""Names of the Redis keys the live arena owns (the leaderboard's are in leaderboard.redis_keys)."""


def battle_key(prefix: str, battle_id: str) -> str:
    """Hash: the battle's fixed facts, its turns, its state and, once voted, the vote id."""
    return f"{prefix}:battle:{battle_id}"


def voter_secret_key(prefix: str) -> str:
    """The HMAC key for pseudonymous voter ids, generated once and shared by every web process."""
    return f"{prefix}:secret:voter"


def paused_models_key(prefix: str) -> str:
    """Set of models the operator paused (out of every new battle, in every process at once; see
    arena.availability). Named ``matchmaker:excluded`` since before availability had its own module:
    kept, so pauses made before an upgrade still hold."""
    return f"{prefix}:matchmaker:excluded"


def model_failing_key(prefix: str, model: str) -> str:
    """Set (with a TTL) while a model's endpoint is failing; new battles leave it out (arena.availability)."""
    return f"{prefix}:model:{model}:failing"


def model_inflight_key(prefix: str, model: str) -> str:
    """Counter of answers the model is generating right now, across processes (capacity); it
    expires on its own if a process dies mid-answer."""
    return f"{prefix}:model:{model}:inflight"


def rate_limit_key(prefix: str, action: str, bucket: str) -> str:
    """Hash: one rate limit's sliding window, slice number -> actions counted in that slice
    (arena.rate_limit); it expires once its newest slice has left the window."""
    return f"{prefix}:rate:{action.replace(' ', '-')}:{bucket}"


def configured_models_key(prefix: str) -> str:
    """Hash: model name -> when a web process last started with it configured (epoch seconds), so
    operator commands that run outside any web process know which names exist (arena.model_names)."""
    return f"{prefix}:models:configured"
