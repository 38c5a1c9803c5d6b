"""``GET /metrics``: Prometheus exposition of arena.metrics, and Gradio's own monitoring paths
(``/monitoring``, ``/monitoring/summary``: per-event counts and latencies of the page), both behind
the same optional bearer token (``ARENA_METRICS_TOKEN``). Without a token both are open, as
``/metrics`` always was: an operator refuses them at the proxy or sets the token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from arena.metrics import CONTENT_TYPE, redis_gauges

router = APIRouter()

# Gradio registers these under the page's mount (here "/"): /monitoring, /monitoring/summary and
# /monitoring/{key} (its dashboard); the first segment is what the guard matches.
MONITORING_SEGMENT = "monitoring"


def bearer_refusal(authorization: str | None, token: str | None, what: str) -> Response | None:
    """A 401 unless ``authorization`` is ``Bearer <token>``; None when it is, or when there is no token."""
    if not token:
        return None
    if hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
        return None
    return Response(f"{what} need 'Authorization: Bearer <ARENA_METRICS_TOKEN>'\n", status_code=401,
                    media_type="text/plain", headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    context = request.app.state.arena
    refusal = bearer_refusal(request.headers.get("authorization"), context.settings.metrics_token, "metrics")
    if refusal is not None:
        return refusal
    gauges = await redis_gauges(context.redis, context.settings.prefix)
    return Response(context.metrics.render(gauges), media_type=CONTENT_TYPE)


def is_monitoring_path(path: str) -> bool:
    """Whether ``path`` (decoded, as routing sees it) could reach one of Gradio's monitoring routes:
    its first non-empty segment is ``monitoring``, whatever slashes or dot segments surround it."""
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    return bool(segments) and segments[0] == MONITORING_SEGMENT


class MonitoringGuard:
    """ASGI middleware: Gradio's monitoring paths answer only with the metrics token (when one is set)."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.token and is_monitoring_path(scope["path"]):
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            refusal = bearer_refusal(authorization, self.token, "Gradio's monitoring pages")
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
