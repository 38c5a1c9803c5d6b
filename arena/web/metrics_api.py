"""``GET /metrics``: Prometheus exposition of arena.metrics, behind an optional bearer token
(``ARENA_METRICS_TOKEN``)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from arena.metrics import CONTENT_TYPE, redis_gauges

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    context = request.app.state.arena
    token = context.settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return Response("metrics need 'Authorization: Bearer <ARENA_METRICS_TOKEN>'\n", status_code=401,
                            media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})
    gauges = await redis_gauges(context.redis, context.settings.prefix)
    return Response(context.metrics.render(gauges), media_type=CONTENT_TYPE)
