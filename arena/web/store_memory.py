"""The memory alarm: with ``maxmemory`` and ``noeviction`` a full Redis refuses writes (votes get a
503, none is evicted), so the operator has to hear about it before it is full."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Share of maxmemory at which /healthz warns (and the web process logs it).
MEMORY_WARNING = 0.9


async def store_memory(redis_client) -> dict:
    """``{"store_memory_used": share}`` (plus a ``warning`` past MEMORY_WARNING) when Redis has a
    maxmemory, else nothing."""
    memory = await redis_client.info("memory")
    limit = int(memory.get("maxmemory", 0) or 0)
    if not limit:
        return {}
    share = int(memory.get("used_memory", 0)) / limit
    report = {"store_memory_used": round(share, 3)}
    if share >= MEMORY_WARNING:
        report["warning"] = (f"Redis uses {share:.0%} of its maxmemory; when full it refuses new votes (503): "
                             "raise --redis-maxmemory (or maxmemory) or free memory")
        log.warning(report["warning"])
    return report
