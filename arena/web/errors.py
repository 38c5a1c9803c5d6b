"""How refusals reach an API client: JSON ``{"detail": ...}`` with a short message that quotes at
most a bounded piece of the input, and ``Retry-After`` where waiting helps (429, 503)."""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from arena.battles.text_checks import QUOTE_CHARS, quoted
from arena.errors import BattleError

log = logging.getLogger(__name__)

# Seconds a client is told to wait before retrying while the store is unreachable.
STORE_RETRY_SECONDS = 5
_MESSAGE_CHARS = 240


def _retry_headers(seconds: int | None) -> dict[str, str] | None:
    return {"Retry-After": str(int(seconds))} if seconds else None


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "..."


def _location(loc) -> list:
    return [part if isinstance(part, int) or (isinstance(part, str) and len(part) <= QUOTE_CHARS) else quoted(part)
            for part in loc]


async def _validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 list, without the echoed input (a 10 MB field stays out of the reply)."""
    errors = []
    for error in exc.errors():
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid" and (error.get("ctx") or {}).get("error"):
            message = f"the JSON body is malformed: {error['ctx']['error']}"
        errors.append({"type": error.get("type"), "loc": _location(error.get("loc", ())), "msg": _short(message)})
    return JSONResponse(status_code=422, content={"detail": errors})


async def _battle_refused(request: Request, exc: BattleError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"detail": _short(str(exc))},
                        headers=_retry_headers(exc.retry_after))


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("Redis unreachable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=503, headers=_retry_headers(STORE_RETRY_SECONDS), content={
        "detail": "the arena's store (Redis) is unreachable right now, so nothing was recorded; retry in a few seconds"
    })


async def _redis_full(request: Request, exc: Exception) -> JSONResponse:
    # the memory alarm: with maxmemory and noeviction Redis refuses writes rather than drop votes
    log.error("Redis is at its maxmemory and refuses writes (%s %s): raise maxmemory or free memory",
              request.method, request.url.path)
    return JSONResponse(status_code=503, headers=_retry_headers(60), content={
        "detail": "the arena's store is full, so nothing was recorded; the operator has to make room; retry later"
    })


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(BattleError, _battle_refused)
    app.add_exception_handler(redis.exceptions.ConnectionError, _redis_unavailable)
    app.add_exception_handler(redis.exceptions.TimeoutError, _redis_unavailable)
    app.add_exception_handler(redis.exceptions.OutOfMemoryError, _redis_full)
