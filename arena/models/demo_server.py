"""Demo endpoints: a small OpenAI-compatible chat server with a few deterministic "models".

Asked the same conversation again at a temperature above 0 (a regeneration, say), a model's
answer ends with another closing sentence (:func:`arena.models.demo_models.closing`), as a sampled
model's would differ; at temperature 0 or none given, the same conversation gets the same answer.

The demo models themselves (one style each) are in :mod:`arena.models.demo_models`.

It speaks the chat-completions protocol the way OpenAI does, including server-sent-event
streaming, so the real ``openai`` and ``huggingface_hub`` clients talk to it unchanged.
Delays are ``asyncio.sleep`` so one process serves many slow streams at once.

Run alone: ``python -m arena.models.demo_server --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from arena.models.demo_models import DEMO_MODELS, AnswerFunction, make_conversation

_TOKEN = re.compile(r"\s*\S+|\s+")


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces (each word with the whitespace before it) that join back to ``text``."""
    return _TOKEN.findall(text)


# ---------------------------------------------------------------------------------------
# The HTTP API (OpenAI chat-completions shape).


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Sampling parameters the demo models do not use (top_p, seed...) are accepted and ignored;
    # temperature only says whether a repeated conversation may get a varied answer.
    model_config = ConfigDict(extra="allow")
    model: str
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    n: int | None = Field(default=None, ge=1, le=1)


def _error(status: int, message: str, error_type: str, code: str | None, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": error_type, "param": param, "code": code}},
    )


@dataclass
class DemoSettings:
    token_delay: float = 0.02
    first_token_delay: float = 0.0
    api_key: str | None = None


class AskCounter:
    """How often each (model, conversation) was asked at a temperature above 0: the variant of
    the next answer. Remembers the ``limit`` most recent conversations (a long-running demo
    server stays small; a forgotten one starts again at its canonical answer)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._asked: OrderedDict[tuple[str, int], int] = OrderedDict()

    def next_variant(self, model: str, digest: int) -> int:
        key = (model, digest)
        variant = self._asked.pop(key, 0)
        self._asked[key] = variant + 1
        while len(self._asked) > self.limit:
            self._asked.popitem(last=False)
        return variant


class RequestLog:
    """What the server saw most recently, for tests (e.g. that a configured API key was sent)."""

    def __init__(self) -> None:
        self.last_headers: dict[str, str] = {}
        self.chat_requests = 0

    @property
    def last_authorization(self) -> str | None:
        return self.last_headers.get("authorization")


def build_demo_app(
    settings: DemoSettings,
    models: Mapping[str, AnswerFunction] = DEMO_MODELS,
    request_log: RequestLog | None = None,
) -> FastAPI:
    """The FastAPI app serving ``models`` with OpenAI's /v1/models and /v1/chat/completions."""
    request_log = request_log or RequestLog()
    asked = AskCounter()
    app = FastAPI(title="Arena demo endpoints", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return _error(400, "Invalid request: the body is not valid JSON", "invalid_request_error", None)
        param = ".".join(str(part) for part in first["loc"] if part != "body") or None
        return _error(400, f"Invalid request: {param or 'body'}: {first['msg']}", "invalid_request_error", None, param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "invalid_request_error", None)

    def refuse_unauthorized(request: Request) -> JSONResponse | None:
        request_log.last_headers = {name.lower(): value for name, value in request.headers.items()}
        authorization = request.headers.get("authorization")
        if settings.api_key is not None and authorization != f"Bearer {settings.api_key}":
            # Unlike OpenAI, never echo any part of the key that was sent.
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return None

    @app.get("/v1/models")
    async def list_models(request: Request):
        if refusal := refuse_unauthorized(request):
            return refusal
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "arena-demo"} for name in models],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        if refusal := refuse_unauthorized(request):
            return refusal
        request_log.chat_requests += 1
        answer_function = models.get(body.model)
        if answer_function is None:
            return _error(
                404,
                f"The model '{body.model}' does not exist; this server has {', '.join(models)}",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
        messages = [(message.role, message.text()) for message in body.messages]
        conversation = make_conversation(messages)
        if body.temperature:  # sampled: asked again, the answer varies (the first time it is the canonical one)
            conversation = make_conversation(messages, variant=asked.next_variant(body.model, conversation.digest))
        tokens = split_tokens(answer_function(conversation))
        limit = body.max_completion_tokens or body.max_tokens
        finish_reason = "stop"
        if limit is not None and len(tokens) > limit:
            tokens, finish_reason = tokens[:limit], "length"

        def usage() -> dict[str, int]:  # counting the whole history is skipped when nobody asked for it
            prompt_tokens = sum(len(split_tokens(text)) for _, text in conversation.messages)
            return {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            }

        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = _sse_events(
                completion_id, created, body.model, tokens, finish_reason, usage() if include_usage else None, settings
            )
            return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        await asyncio.sleep(settings.first_token_delay + settings.token_delay * len(tokens))
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage(),
        }

    return app


async def _sse_events(
    completion_id: str,
    created: int,
    model: str,
    tokens: list[str],
    finish_reason: str,
    usage: dict[str, int] | None,
    settings: DemoSettings,
) -> AsyncIterator[str]:
    """The chat.completion.chunk events OpenAI sends: role, content deltas, finish, [usage], [DONE]."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    # With include_usage, OpenAI puts "usage": null on every chunk, then the numbers on one
    # last chunk whose choices list is empty.
    usage_field = {"usage": None} if usage is not None else {}
    yield event(choice({"role": "assistant", "content": "", "refusal": None}), **usage_field)
    # Only the content changes from one token's event to the next, so the rest is encoded once,
    # around the empty string's encoding (strings inside id/model are escaped, so it occurs once).
    token_prefix, _, token_suffix = event(choice({"content": ""}), **usage_field).partition('{"content": ""}')
    token_prefix += '{"content": '
    token_suffix = "}" + token_suffix
    await asyncio.sleep(settings.first_token_delay)
    for index, token in enumerate(tokens):
        if index:
            await asyncio.sleep(settings.token_delay)
        yield token_prefix + json.dumps(token, ensure_ascii=False) + token_suffix
    yield event(choice({}, finish_reason), **usage_field)
    if usage is not None:
        yield event([], usage=usage)
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------------------------------
# Running it: in a background thread (tests, `arena serve --demo`) or in the foreground.


class DemoServer:
    """The demo app under uvicorn in a background thread on ``host`` (loopback by default).

    ``port=0`` picks a free port. With ``api_key`` set, requests without
    ``Authorization: Bearer <api_key>`` get OpenAI's 401 error. ``models`` replaces the demo
    models (a mapping of model name to a function of a Conversation), e.g. for tests.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token_delay: float = 0.02,
        first_token_delay: float = 0.0,
        api_key: str | None = None,
        models: Mapping[str, AnswerFunction] = DEMO_MODELS,
    ):
        if token_delay < 0 or first_token_delay < 0:
            raise ValueError("token_delay and first_token_delay must be >= 0 seconds")
        self.host = host
        self.port = port
        self.settings = DemoSettings(token_delay=token_delay, first_token_delay=first_token_delay, api_key=api_key)
        self.request_log = RequestLog()
        self.model_names: list[str] = list(models)
        self._app = build_demo_app(self.settings, models, self.request_log)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> DemoServer:
        # Bind here rather than in uvicorn so port 0 is resolved before start() returns.
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(1024)
        self._socket = listener
        self.port = listener.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name=f"demo-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"demo server on {self.host}:{self.port} did not start within {timeout}s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        server, thread, listener = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        if listener is not None:
            listener.close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m arena.models.demo_server",
        description="Serve the deterministic demo models over an OpenAI-compatible API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds between streamed tokens")
    parser.add_argument("--first-token-delay", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="require the API key held in this environment variable (a key on the command line would show in ps)",
    )
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"environment variable {args.api_key_env} is not set")
    settings = DemoSettings(token_delay=args.token_delay, first_token_delay=args.first_token_delay, api_key=api_key)
    print(f"demo endpoints at http://{args.host}:{args.port}/v1: {', '.join(DEMO_MODELS)} (Ctrl-C to stop)", flush=True)
    uvicorn.run(build_demo_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
