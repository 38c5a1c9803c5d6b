"""Demo endpoints: a small OpenAI-compatible chat server with a few deterministic "models".

Each demo model answers in its own recognisable style (terse, structured markdown, friendly
with bold, numbered steps, a weak one that mostly echoes), built from the words of the prompt
and the turns before it, so different prompts get different answers, the same conversation
always gets the same answer, and votes between them mean something.

It speaks the chat-completions protocol the way OpenAI does, including server-sent-event
streaming, so the real ``openai`` and ``huggingface_hub`` clients talk to it unchanged.
Delays are ``asyncio.sleep`` so one process serves many slow streams at once.

Run alone: ``python -m arena.demo_server --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from arena.model_config import ModelSpec

# ---------------------------------------------------------------------------------------
# The demo models: pure functions from a conversation to an answer.


@dataclass(frozen=True)
class Conversation:
    """What a demo model looks at: the latest user message, its topic words, and the history."""

    messages: tuple[tuple[str, str], ...]  # (role, text) in order
    prompt: str  # the latest user message
    topic_words: tuple[str, ...]  # distinctive words of the prompt, in order of appearance
    earlier_topic_words: tuple[str, ...]  # distinctive words of the previous user message
    user_turn: int  # 1 for the first user message
    digest: int  # stable hash of the whole conversation, to choose between phrasings

    def pick(self, options: Sequence[str], salt: str) -> str:
        """One of ``options``, chosen by the conversation (stable across runs and processes)."""
        mixed = hashlib.sha256(f"{salt}:{self.digest}".encode()).digest()
        return options[int.from_bytes(mixed[:4], "big") % len(options)]


AnswerFunction = Callable[[Conversation], str]

_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my no nor not now
    of off on once only or other our out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours please tell explain give make know want need like
    get using use write show best way ways""".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'\-]*")


def topic_words(text: str, limit: int = 4) -> tuple[str, ...]:
    """The first ``limit`` distinct, non-stopword words of ``text``, lower-cased."""
    seen: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group().lower().strip("'-")
        if len(word) > 2 and word not in _STOPWORDS and word not in seen:
            seen.append(word)
            if len(seen) == limit:
                break
    return tuple(seen)


def make_conversation(messages: Sequence[tuple[str, str]]) -> Conversation:
    user_texts = [text for role, text in messages if role == "user"]
    prompt = user_texts[-1] if user_texts else (messages[-1][1] if messages else "")
    earlier = user_texts[-2] if len(user_texts) > 1 else ""
    encoded = json.dumps([list(message) for message in messages], ensure_ascii=False).encode()
    return Conversation(
        messages=tuple(messages),
        prompt=prompt,
        topic_words=topic_words(prompt),
        earlier_topic_words=topic_words(earlier),
        user_turn=max(1, len(user_texts)),
        digest=int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big"),
    )


def _words(conversation: Conversation, fallback: Sequence[str] = ("this", "the details", "the context")) -> list[str]:
    words = list(conversation.topic_words)
    return words + list(fallback[len(words):])


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def answer_terse(conversation: Conversation) -> str:
    first, second = _words(conversation)[:2]
    opening = conversation.pick(
        [
            "Short answer: {a} comes down to {b}.",
            "{A}: focus on {b} first.",
            "It depends on {b}; start with {a}.",
            "Yes. {A}, then {b}.",
            "Mostly {b}. The rest of {a} follows.",
        ],
        "terse",
    )
    text = opening.format(a=first, A=first.capitalize(), b=second)
    if conversation.earlier_topic_words:
        text += f" Same as before with {conversation.earlier_topic_words[0]}."
    return text


def answer_verbose(conversation: Conversation) -> str:
    words = _words(conversation)
    first = words[0]
    lines = [f"## Overview: {first}", "", f"You asked: \"{_quote(conversation.prompt)}\". Here is a structured answer.", ""]
    if conversation.earlier_topic_words:
        lines += ["### Context", "", f"This builds on your earlier question about {', '.join(conversation.earlier_topic_words)}.", ""]
    lines += ["### Key points", ""]
    point_styles = [
        "**{w}**: the central idea; get this right and the rest is easier.",
        "**{w}**: worth checking against a concrete example.",
        "**{w}**: often overlooked, but it changes the outcome.",
        "**{w}**: compare a few options before committing.",
    ]
    for index, word in enumerate(words):
        lines.append("- " + point_styles[index % len(point_styles)].format(w=word))
    lines += [
        "",
        "### Details",
        "",
        conversation.pick(
            [
                "Start small, measure, and only then generalise.",
                "Write the simplest version first and keep notes on what surprised you.",
                "Most difficulties come from unstated assumptions, so list them explicitly.",
            ],
            "verbose-details",
        )
        + f" In the case of {first}, that means looking at {words[-1]} early.",
        "",
        "### Summary",
        "",
        f"In short: {', '.join(words[:-1])} and {words[-1]} together answer the question.",
    ]
    return "\n".join(lines)


def answer_friendly(conversation: Conversation) -> str:
    first, second = _words(conversation)[:2]
    greeting = conversation.pick(
        ["Great question!", "Oh, I love this one!", "Happy to help!", "What a fun thing to ask!"], "friendly"
    )
    text = (
        f"{greeting} When it comes to **{first}**, the thing that matters most is **{second}**. "
        f"Take it one step at a time and you'll be fine. "
    )
    if conversation.earlier_topic_words:
        text += f"And nice follow-up to your question about **{conversation.earlier_topic_words[0]}**! "
    text += "Let me know if you'd like more detail, I'm always glad to chat."
    return text


def answer_steps(conversation: Conversation) -> str:
    words = _words(conversation)
    verbs = ["Define", "Check", "Compare", "Test", "Review"]
    offset = conversation.digest % len(verbs)
    lines = [f"Here is how to approach {words[0]}:", ""]
    for index, word in enumerate(words):
        lines.append(f"{index + 1}. {verbs[(offset + index) % len(verbs)]} {word}.")
    lines.append(f"{len(words) + 1}. Repeat until the result is clear.")
    if conversation.user_turn > 1:
        lines += ["", f"(Step plan for follow-up number {conversation.user_turn - 1}.)"]
    return "\n".join(lines)


def answer_echo(conversation: Conversation) -> str:
    hedge = conversation.pick(["I am not sure.", "Hard to say.", "Maybe?", "I don't know much about that."], "echo")
    return f"You said: {_quote(conversation.prompt, 120)} {hedge}"


DEMO_MODELS: Mapping[str, AnswerFunction] = {
    "demo-terse": answer_terse,
    "demo-verbose": answer_verbose,
    "demo-friendly": answer_friendly,
    "demo-steps": answer_steps,
    "demo-echo": answer_echo,
}

DEMO_DESCRIPTIONS: Mapping[str, str] = {
    "demo-terse": "Demo model: one or two short sentences.",
    "demo-verbose": "Demo model: structured markdown with headers and bullet lists.",
    "demo-friendly": "Demo model: warm tone with bold highlights.",
    "demo-steps": "Demo model: numbered step-by-step plans.",
    "demo-echo": "Demo model: deliberately weak; mostly repeats the prompt.",
}


def demo_model_specs(base_url: str) -> list[ModelSpec]:
    """ModelSpecs for the demo models served at ``base_url`` (ending in /v1)."""
    return [
        ModelSpec(
            name=name,
            provider="openai",
            base_url=base_url,
            model_id=name,
            max_tokens=512,
            timeout=30.0,
            description=DEMO_DESCRIPTIONS.get(name, ""),
        )
        for name in DEMO_MODELS
    ]


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
    # Sampling parameters the demo models do not use (temperature, top_p, seed...) are accepted and ignored.
    model_config = ConfigDict(extra="allow")
    model: str
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
        conversation = make_conversation([(message.role, message.text()) for message in body.messages])
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

    def start(self, timeout: float = 10.0) -> "DemoServer":
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

    def __enter__(self) -> "DemoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m arena.demo_server",
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
