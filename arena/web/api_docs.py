"""The ReDoc page at /redoc, offline.

ReDoc's script comes from the pinned fastapi-offline package (its static folder is also mounted by
create_app, for Swagger UI). That bundle links its "API docs by Redocly" logo from Redocly's CDN,
so the page is served a copy of the script with that one address emptied (an <img> without a
source fetches nothing; ReDoc then drops the image), and a Content-Security-Policy that keeps
every other fetch on this host."""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

REDOC_BUNDLE = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

# images, fonts and fetches from this host only; ReDoc's inline styles and its search worker allowed
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; font-src 'self' data:; "
                           "style-src 'self' 'unsafe-inline'; script-src 'self' blob:; worker-src 'self' blob:; "
                           "connect-src 'self'")

_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>{title}</title>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="shortcut icon" href="{favicon}">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc needs JavaScript to show the API documentation; the OpenAPI document is at {spec}.</noscript>
<redoc spec-url="{spec}"></redoc>
<script src="{script}"></script>
</body>
</html>
"""


def add_redoc(app: FastAPI, url: str, assets_url: str) -> None:
    """Serve ReDoc for ``app.openapi_url`` at ``url``; its script at ``url``/redoc.js, the favicon
    from ``assets_url`` (the mounted fastapi-offline static folder)."""
    bundle = REDOC_BUNDLE.read_text(encoding="utf-8")
    if REDOCLY_LOGO not in bundle:  # a new fastapi-offline: check the bundle for other remote addresses
        raise RuntimeError(f"{REDOC_BUNDLE} no longer links {REDOCLY_LOGO}; review it before upgrading")
    script = bundle.replace(REDOCLY_LOGO, "").encode("utf-8")

    @app.get(f"{url}/redoc.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(script, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    @app.get(url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = _PAGE.format(title=html.escape(f"{app.title} - ReDoc"), spec=html.escape(f"{root}{app.openapi_url}"),
                            script=html.escape(f"{root}{url}/redoc.js"),
                            favicon=html.escape(f"{root}{assets_url}/favicon.png"))
        return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})
