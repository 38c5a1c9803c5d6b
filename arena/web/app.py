"""The ASGI app: the JSON API routers with the Gradio page mounted at ``/``."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from arena.web.api import router
from arena.web.context import ArenaContext
from arena.web.ui import build_page


def create_app(context: ArenaContext) -> FastAPI:
    app = FastAPI(title="Arena", summary="Anonymous model battles and a live rating leaderboard",
                  docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.arena = context
    app.include_router(router)
    return gr.mount_gradio_app(app, build_page(context), path="/", show_error=True, footer_links=["api"])
