"""The ASGI app: the JSON API routers with the Gradio page mounted at ``/``."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from arena.owners.store import OwnerError
from arena.web.api import router
from arena.web.api_docs import add_redoc
from arena.web.body_limit import BodyLimitMiddleware
from arena.web.context import ArenaContext
from arena.web.errors import install_error_handlers
from arena.web.flood_guard import FloodGuardMiddleware
from arena.web.leaderboard_api import router as leaderboard_router
from arena.web.leaderboard_tab import PAGE_CSS as LEADERBOARD_CSS
from arena.web.metrics_api import MonitoringGuard
from arena.web.metrics_api import router as metrics_router
from arena.web.operator_api import router as operator_router
from arena.web.owner_api import owner_errors
from arena.web.owner_api import router as owner_router
from arena.web.page_assets import PAGE_CSS, page_head
from arena.web.page_session import PageSessionMiddleware
from arena.web.queue_guard import QueueGuard
from arena.web.security import SecurityHeaders
from arena.web.strict_json import StrictJSONMiddleware
from arena.web.ui import build_page
from arena.web.votes_api import router as votes_router

DOCS_ASSETS_URL = "/api/docs-assets"


def create_app(context: ArenaContext) -> FastAPI:
    settings = context.settings
    # API docs (Swagger UI at /api/docs, ReDoc at /redoc) from assets shipped in the pinned
    # fastapi-offline package, served under /api/docs-assets: the pages work with no internet
    app = FastAPIOffline(title="Arena", summary="Anonymous model battles and a live rating leaderboard",
                         docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json",
                         static_url=DOCS_ASSETS_URL)
    add_redoc(app, "/redoc", DOCS_ASSETS_URL)
    app.state.arena = context
    app.include_router(router)
    app.include_router(leaderboard_router)
    app.include_router(votes_router)
    app.include_router(metrics_router)
    app.include_router(operator_router)
    app.include_router(owner_router)
    app.add_middleware(PageSessionMiddleware, sessions=context.page_sessions)  # the page's session cookie
    app.add_middleware(StrictJSONMiddleware, skip_prefix="/api/")
    # Gradio's /monitoring pages (event counts and latencies) take the same token as /metrics
    app.add_middleware(MonitoringGuard, token=settings.metrics_token)
    page = build_page(context)
    # The page's queue refuses a flood of joins and streams instead of stopping (inside the body limit: it reads
    # a join's body for its session)
    app.add_middleware(QueueGuard, gradio_queue=lambda: page._queue, redis_client=context.redis,
                       prefix=settings.prefix, joins_per_minute=settings.page_joins_per_minute,
                       streams_per_client=settings.page_streams_per_client, max_sessions=settings.page_queue_size)
    # Bodies are capped before anything reads them...
    app.add_middleware(BodyLimitMiddleware, api_bytes=settings.max_body_bytes, page_bytes=settings.max_page_body_bytes)
    # ...and, outside those (only the security headers wrap it), a client whose requests keep being refused is held off.
    app.add_middleware(FloodGuardMiddleware, refusals=settings.flood_refusals)
    app.add_middleware(SecurityHeaders)  # CSP: the page fetches nothing from any other origin (also on refusals)
    install_error_handlers(app)
    app.add_exception_handler(OwnerError, owner_errors)
    return gr.mount_gradio_app(app, page, path="/", show_error=True, footer_links=[],
                               css=LEADERBOARD_CSS + "\n" + PAGE_CSS, head=page_head())
