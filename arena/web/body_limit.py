"""Request bodies capped before they are read: a declared ``Content-Length`` over the cap is
refused without reading a byte; a body without one (chunked) is counted as it arrives and refused
the moment it passes the cap. The refusal is a JSON 413 naming the cap. The JSON API has a tight
cap; the page's Gradio endpoints a looser one (each prompt carries the conversation back)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _message(limit: int) -> str:
    return (f"the request body is over this endpoint's limit of {limit} bytes: send a shorter prompt "
            "(nothing was recorded)")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body: an HTTPException, so FastAPI (and Gradio's app) pass it
    to their 413 handler instead of turning it into a 400 "error parsing the body"."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=_message(limit))


def too_large(limit: int) -> JSONResponse:
    return JSONResponse(status_code=413, content={"detail": _message(limit)})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, api_bytes: int, page_bytes: int, api_prefix: str = "/api/"):
        self.app = app
        self.api_bytes = api_bytes
        self.page_bytes = page_bytes
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.api_bytes if scope["path"].startswith(self.api_prefix) else self.page_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    return await too_large(limit)(scope, receive, send)
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large(limit)(scope, receive, send)
