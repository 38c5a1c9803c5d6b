"""JSON bodies read strictly: a duplicate key, a lone UTF-16 surrogate or bytes that are not
UTF-8 are a 400 naming the problem, never "last key wins", never a 500 further on.

The JSON API reads its bodies through ``StrictJSONRoute`` (FastAPI's custom route class); the
page's Gradio endpoints through ``StrictJSONMiddleware``. Both sit inside the body-size limits
(FastAPI's ``max_body_size``), so what is parsed here is already bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arena.battles.text_checks import lone_surrogate_at, quoted


class StrictJSONError(json.JSONDecodeError):
    """A body that is JSON to a lenient parser but not to us; a JSONDecodeError so that FastAPI
    reports it as its own ``json_invalid`` error (422) with our message."""

    def __init__(self, message: str, document: str = "", position: int = 0):
        super().__init__(message, document, position)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise StrictJSONError(f"duplicate key {quoted(key)} in a JSON object: send each field once")
        seen[key] = value
    return seen


def _check_text(value, where: str = "body") -> None:
    if isinstance(value, str):
        position = lone_surrogate_at(value)
        if position is not None:
            raise StrictJSONError(f"{where} has a lone UTF-16 surrogate at position {position}: send valid Unicode")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, "a key")
            _check_text(item, f"field {quoted(key)}")
    elif isinstance(value, list):
        for item in value:
            _check_text(item, where)


def strict_loads(body: bytes):
    """``json.loads`` that refuses duplicate keys, lone surrogates and bytes that are not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StrictJSONError(f"the body is not UTF-8 (invalid byte at offset {error.start})") from None
    value = json.loads(text, object_pairs_hook=_no_duplicates)
    _check_text(value)
    return value


class _StrictJSONRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An API route whose JSON body is parsed by ``strict_loads``."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict_handler(request: Request):
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


class StrictJSONMiddleware:
    """For requests outside ``skip_prefix`` (the page's Gradio endpoints): read a JSON body, refuse
    it with a 400 if ``strict_loads`` does, else hand the same bytes on to the app."""

    def __init__(self, app: ASGIApp, skip_prefix: str = "/api/"):
        self.app = app
        self.skip_prefix = skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or not _is_json(scope) \
                or scope["path"].startswith(self.skip_prefix):
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                strict_loads(body)
            except json.JSONDecodeError as error:
                malformed = JSONResponse({"detail": f"the JSON body is malformed: {error.msg}"}, status_code=400)
                await malformed(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
