"""The ASGI app: the JSON API routers with the Gradio page mounted at ``/``."""

from __future__ import annotations

import logging

import gradio as gr
import redis
from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.responses import JSONResponse

from arena.battle_types import BattleError
from arena.web.api import router
from arena.web.api_docs import add_redoc
from arena.web.votes_api import router as votes_router
from arena.web.context import ArenaContext
from arena.web.ui import build_page

log = logging.getLogger(__name__)

DOCS_ASSETS_URL = "/api/docs-assets"


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("Redis unreachable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=503, content={
        "detail": "the arena's store (Redis) is unreachable right now, so nothing was recorded; retry in a few seconds"
    })


async def _battle_refused(request: Request, exc: BattleError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"detail": str(exc)})


def create_app(context: ArenaContext) -> FastAPI:
    # API docs (Swagger UI at /api/docs, ReDoc at /redoc) from assets shipped in the pinned
    # fastapi-offline package, served under /api/docs-assets: the pages work with no internet
    app = FastAPIOffline(title="Arena", summary="Anonymous model battles and a live rating leaderboard",
                         docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json",
                         static_url=DOCS_ASSETS_URL)
    add_redoc(app, "/redoc", DOCS_ASSETS_URL)
    app.state.arena = context
    app.include_router(router)
    app.include_router(votes_router)
    app.add_exception_handler(BattleError, _battle_refused)
    app.add_exception_handler(redis.exceptions.ConnectionError, _redis_unavailable)
    app.add_exception_handler(redis.exceptions.TimeoutError, _redis_unavailable)
    return gr.mount_gradio_app(app, build_page(context), path="/", show_error=True, footer_links=[])
