"""What an owner sees of each of their models (``GET /api/owner/models`` and the "My models" tab):
status and why, the registration (key masked), votes, rating and interval, win rate against each
opponent, latency percentiles and recent errors. Read-only; built from Redis for any web process.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from arena.models.availability import ModelStatus
from arena.models.health import percentiles
from arena.owners.store import OwnerModel
from leaderboard.store.redis_keys import snapshot_key
from leaderboard.views.published import OVERALL, ViewStats, view_stats_key
from leaderboard.views.reader import parse_snapshot, parse_view_stats

REGISTRATION_FIELDS = ("provider", "model_id", "organisation", "license", "description", "anonymous", "max_tokens",
                       "temperature", "top_p", "timeout", "max_concurrent", "system_prompt", "created_at",
                       "updated_at", "approved_at", "retired_at", "health_check")


def shown_url(url: str) -> str:
    """The base URL without query or fragment (where some services put keys)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def model_views(battles, models: list[OwnerModel]) -> list[dict]:
    """One dict per model, for its owner's eyes only."""
    if not models:
        return []
    statuses = await battles.model_status()
    redis, prefix = battles.redis, battles.prefix
    raw_snapshot, raw_stats = await redis.mget(snapshot_key(prefix), view_stats_key(prefix, OVERALL))
    snapshot = parse_snapshot(raw_snapshot)
    rows = {row.model: row for row in snapshot.rows} if snapshot else {}
    stats = parse_view_stats(raw_stats)
    # What is kept under a name (status, rating, latencies, errors) is this model's only once it is
    # approved: before that another owner's registration may wait under the same name.
    benched = await battles.health.benched([m.name for m in models if m.published])
    views = []
    for model in models:
        status = statuses.get(model.name, ModelStatus.ACTIVE) if model.published and model.state == "active" \
            else ModelStatus(model.state)
        view = {"name": model.name, "status": str(status), "reason": _reason(model, status, benched.get(model.name)),
                "base_url": shown_url(model.base_url), "api_key": model.api_key_hint,
                **{field: getattr(model, field) for field in REGISTRATION_FIELDS}}
        row = rows.get(model.name) if model.published else None
        view.update(votes=row.votes if row else 0, rating=row.rating if row else None,
                    rating_lower=row.lower if row else None, rating_upper=row.upper if row else None,
                    rank=row.rank if row else None)
        view["win_rates"] = _win_rates(stats, model.name) if model.published else {}
        latencies = await battles.health.latencies_ms(model.name) if model.published else []
        view["latency_ms"] = {"answers": len(latencies), **percentiles(latencies)}
        view["recent_errors"] = await battles.health.recent_errors(model.name) if model.published else []
        views.append(view)
    return views


def _reason(model: OwnerModel, status: str, bench: dict | None) -> str | None:
    if status == ModelStatus.BENCHED:
        if bench:
            return f"{bench.get('reason', 'failing')}; next probe at {bench.get('next_probe', 0):.0f} (unix time)"
        return "its API key does not decrypt with this server's key: ask the operator"
    if status == ModelStatus.REJECTED:
        return model.rejected_reason
    if status == ModelStatus.PENDING:
        return "waiting for the operator's approval"
    if status == ModelStatus.PAUSED:
        return "paused by you" if model.paused else "paused by the operator"
    if status == ModelStatus.FULL:
        return "at its max_concurrent answers, or its daily battle quota is used up"
    return None


def _win_rates(stats: ViewStats | None, name: str) -> dict[str, dict]:
    """Against each opponent: comparisons, wins, ties and the win rate (ties count half)."""
    if stats is None or name not in stats.models:
        return {}
    i = stats.models.index(name)
    result = {}
    for j, opponent in enumerate(stats.models):
        battles = stats.battles[i][j]
        if j == i or not battles:
            continue
        wins, ties = stats.wins[i][j], stats.ties[i][j]
        result[opponent] = {"battles": battles, "wins": wins, "ties": ties,
                            "win_rate": round((wins + ties / 2) / battles, 4)}
    return result
