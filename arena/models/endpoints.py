"""Streaming answers from model endpoints, through the official clients.

``EndpointPool`` builds one client per configured model at start-up (``openai.AsyncOpenAI``
for OpenAI-compatible servers such as vLLM, Ollama, llama.cpp or OpenAI itself;
``huggingface_hub.AsyncInferenceClient`` for Hugging Face endpoints) and turns every failure
into an ``EndpointError`` that names the model and says what went wrong in plain words.
API keys come from the environment variables named in the config and never appear in a
message or repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
import pydantic
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError

from arena.models.config import ModelSpec
from arena.trust.ssrf import RefusedConnection

# Sent when a model has no api_key_env. Passing it explicitly stops the clients from falling
# back to keys in the environment (OPENAI_API_KEY, a saved Hugging Face token), which would
# otherwise be sent to whatever endpoint the config names. vLLM's docs use the same value.
NO_API_KEY = "EMPTY"

# AsyncInferenceClient keeps every streamed response on its exit stack until close(), so one
# long-lived client grows by a few kilobytes per answer; we replace it after this many answers.
HUGGINGFACE_STREAMS_PER_CLIENT = 200


class EndpointError(RuntimeError):
    """A model's endpoint failed; ``str()`` names the model and the problem, never the API key.

    ``kind`` is one of: "unreachable" (refused, unknown host), "disconnected" (connection lost
    mid-answer), "timeout", "auth" (HTTP 401/403), "http" (any other HTTP error status),
    "empty" (no text), "protocol" (not the chat-completions format), "closed" (the pool was
    closed: the arena is shutting down), "error" (anything else);
    ``status_code`` is the HTTP status when there was one; ``cause`` narrows "unreachable" down
    where the reason is known: "dns" (the name does not resolve), "refused" (nothing listens),
    "tls" (the TLS handshake failed), "blocked" (the SSRF guard refused the address, see
    arena.trust.ssrf). The message names the model, so show it to a voter only after the vote.
    """

    def __init__(self, model: str, kind: str, detail: str, status_code: int | None = None, cause: str | None = None):
        self.model = model
        self.kind = kind
        self.status_code = status_code
        self.detail = detail
        self.cause = cause
        super().__init__(f"model {model!r}: {detail}")


@dataclass
class _Backend:
    spec: ModelSpec
    api_key: str = field(repr=False)
    open_stream: Callable[[list[dict[str, Any]]], AsyncIterator[str]]
    close: Callable[[], Any]
    is_closed: Callable[[], bool]


class EndpointPool:
    """One client per model; ``stream``/``complete`` ask a model by its display name."""

    def __init__(self, specs: Sequence[ModelSpec]):
        self._backends: dict[str, _Backend] = {}
        self._closing = False
        for spec in specs:
            if spec.name in self._backends:
                raise ValueError(f"duplicate model name {spec.name!r}: display names must be unique")
            api_key = spec.api_key() or NO_API_KEY  # raises ModelConfigError naming an unset variable
            self._backends[spec.name] = _backend(spec, api_key)

    def add(self, spec: ModelSpec, api_key: str | None, guard=None) -> None:
        """Serve one more model (a registered owner's): its key is given, not read from the
        environment, and with ``guard`` (an arena.trust.ssrf.EndpointGuard) every connection its client
        opens is checked against the guard first."""
        if spec.name in self._backends:
            raise ValueError(f"duplicate model name {spec.name!r}: display names must be unique")
        self._backends[spec.name] = _backend(spec, api_key or NO_API_KEY, guard)

    async def remove(self, name: str) -> None:
        """Stop serving ``name`` and close its client (answers in flight on it may fail)."""
        backend = self._backends.pop(name, None)
        if backend is not None:
            with contextlib.suppress(Exception):
                await backend.close()

    async def refresh(self) -> dict:
        """Bring the served models up to date; return the lifecycle status of models that are
        known but not live (none here: every configured model is live; see arena.owners.catalog)."""
        return {}

    async def seated(self, models: Sequence[str]) -> None:
        """Told the models of each new battle (the catalog counts owners' daily quotas)."""
        return None

    def battle_eligible(self, name: str) -> bool:
        """May ``name`` be seated in anonymous battles (an owner may keep a model out of them)."""
        return True

    def daily_quotas(self) -> dict[str, int]:
        """Models with a daily battle quota: name -> battles a day (none for configured models)."""
        return {}

    @property
    def names(self) -> list[str]:
        return list(self._backends)

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` has run and every model's client reports itself closed."""
        return self._closing and all(backend.is_closed() for backend in self._backends.values())

    def spec(self, name: str) -> ModelSpec:
        return self._backend(name).spec

    def _backend(self, name: str) -> _Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}; configured: {', '.join(self._backends) or 'none'}") from None

    async def stream(self, name: str, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        """Yield the answer's text deltas as they arrive; raise EndpointError on any failure.

        ``messages`` are chat messages (``{"role": ..., "content": ...}``); the model's
        system prompt, if configured, is put first. An answer with no text is an error.
        """
        backend = self._backend(name)
        spec = backend.spec
        if self._closing:
            # a closed Hugging Face client would quietly open a new connection pool; refuse instead
            raise EndpointError(spec.name, "closed", "the endpoint clients are closed (the arena is shutting down)")
        if spec.system_prompt:
            messages = [{"role": "system", "content": spec.system_prompt}, *messages]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.max_answer_seconds
        produced_text = False
        try:
            async with contextlib.aclosing(backend.open_stream(messages)) as deltas:
                while True:
                    try:
                        # Per-chunk waits are bounded by the client's timeout; this bounds the whole answer.
                        async with asyncio.timeout_at(deadline):
                            delta = await anext(deltas)
                    except StopAsyncIteration:
                        break
                    produced_text = True  # _text_deltas yields only non-empty text
                    yield delta
        except Exception as exc:
            if isinstance(exc, TimeoutError) and loop.time() >= deadline:
                raise EndpointError(
                    spec.name, "timeout", f"timed out: the answer took longer than {spec.max_answer_seconds:g}s"
                ) from None
            # "from None": the clients' exceptions can carry an endpoint's echo of the key
            # (OpenAI repeats part of a wrong one), which a logged traceback would print.
            raise _redact(_describe_failure(spec, exc), backend.api_key) from None
        if not produced_text:
            raise EndpointError(spec.name, "empty", f"returned an empty answer ({_display_url(spec.base_url)})")

    async def complete(self, name: str, messages: list[dict[str, Any]]) -> str:
        """The whole answer (streamed and joined)."""
        return "".join([delta async for delta in self.stream(name, messages)])

    async def aclose(self) -> None:
        """Close every model's client (idempotent); after this, ``stream`` raises EndpointError."""
        if self._closing:
            return
        self._closing = True
        for backend in self._backends.values():
            with contextlib.suppress(Exception):
                await backend.close()

    async def __aenter__(self) -> EndpointPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"EndpointPool(models={self.names!r})"


# ---------------------------------------------------------------------------------------
# Clients


def _sampling(spec: ModelSpec) -> dict[str, Any]:
    options: dict[str, Any] = {"max_tokens": spec.max_tokens, "temperature": spec.temperature}
    if spec.top_p is not None:
        options["top_p"] = spec.top_p
    return options


async def _text_deltas(chunks: AsyncIterator[Any]) -> AsyncIterator[str]:
    """The non-empty text deltas of chat.completion.chunk objects (both clients' shapes agree)."""
    async for chunk in chunks:
        for choice in chunk.choices:
            if choice.delta is not None and choice.delta.content:
                yield choice.delta.content


def _backend(spec: ModelSpec, api_key: str, guard=None) -> _Backend:
    if spec.provider == "openai":
        return _openai_backend(spec, api_key, guard)
    if spec.provider == "huggingface":
        return _huggingface_backend(spec, api_key, guard)
    # ModelSpec only admits the providers above; this guards a future addition
    raise ValueError(f"model {spec.name!r}: no client for provider {spec.provider!r}")


def _openai_backend(spec: ModelSpec, api_key: str, guard=None) -> _Backend:
    sampling = _sampling(spec)
    guarded = {} if guard is None else {"http_client": openai.DefaultAsyncHttpxClient(
        transport=guard.transport(), trust_env=False)}
    client = openai.AsyncOpenAI(
        base_url=spec.base_url,
        api_key=api_key,
        timeout=spec.timeout,
        max_retries=spec.max_retries,
        # The client would add these from OPENAI_ORG_ID / OPENAI_PROJECT_ID, identifying the
        # operator's OpenAI account to every endpoint; a models file configures each endpoint alone.
        default_headers={"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},
        **guarded,
    )

    async def open_stream(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        chunks = await client.chat.completions.create(
            model=spec.model_id, messages=messages, stream=True, **sampling
        )
        async with chunks:  # closes the HTTP response even when the caller stops early
            async for text in _text_deltas(chunks):
                yield text

    return _Backend(spec=spec, api_key=api_key, open_stream=open_stream, close=client.close,
                    is_closed=client.is_closed)


class _RecyclingInferenceClient:
    """Hands out an AsyncInferenceClient, replacing it every ``streams_per_client`` answers.

    A retired client is closed (releasing the responses it kept) once its last answer ends.
    """

    def __init__(self, make_client: Callable[[], AsyncInferenceClient], streams_per_client: int):
        self._make_client = make_client
        self._streams_per_client = streams_per_client
        self._current = make_client()
        self._streams_on_current = 0
        self._in_flight: dict[int, int] = {}
        self._retired: dict[int, AsyncInferenceClient] = {}
        self._closed = False

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[AsyncInferenceClient]:
        client = self._current
        self._streams_on_current += 1
        if self._streams_on_current >= self._streams_per_client:
            self._retired[id(client)] = client
            self._current = self._make_client()
            self._streams_on_current = 0
        self._in_flight[id(client)] = self._in_flight.get(id(client), 0) + 1
        try:
            yield client
        finally:
            self._in_flight[id(client)] -= 1
            if self._in_flight[id(client)] == 0:
                del self._in_flight[id(client)]
                retired = self._retired.pop(id(client), None)
                if retired is not None:
                    await retired.close()

    async def close(self) -> None:
        self._closed = True
        for client in [self._current, *self._retired.values()]:
            await client.close()
        self._retired.clear()

    def is_closed(self) -> bool:
        # AsyncInferenceClient has no public "closed" flag; close() above closed every client made
        return self._closed


class _GuardedInferenceClient(AsyncInferenceClient):
    """AsyncInferenceClient whose HTTP client comes from an SSRF guard rather than
    huggingface_hub's process-wide factory (which every other client shares)."""

    def __init__(self, *args, guard, **kwargs):
        super().__init__(*args, **kwargs)
        self._guard = guard

    async def _get_async_client(self):
        if self._async_client is None:
            self._async_client = await self.exit_stack.enter_async_context(
                self._guard.http_client(follow_redirects=True, timeout=None))
        return self._async_client


def _huggingface_backend(spec: ModelSpec, api_key: str, guard=None) -> _Backend:
    def make_client() -> AsyncInferenceClient:
        if guard is None:
            return AsyncInferenceClient(base_url=spec.base_url, token=api_key, timeout=spec.timeout)
        return _GuardedInferenceClient(base_url=spec.base_url, token=api_key, timeout=spec.timeout, guard=guard)

    clients = _RecyclingInferenceClient(make_client, HUGGINGFACE_STREAMS_PER_CLIENT)
    sampling = _sampling(spec)

    async def open_stream(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        async with clients.lease() as client:
            chunks = await client.chat_completion(messages, model=spec.model_id, stream=True, **sampling)
            async with contextlib.aclosing(chunks):
                async for text in _text_deltas(chunks):
                    yield text

    return _Backend(spec=spec, api_key=api_key, open_stream=open_stream, close=clients.close,
                    is_closed=clients.is_closed)


# ---------------------------------------------------------------------------------------
# Failures in plain words


def _display_url(url: str) -> str:
    """The URL without query or fragment (where some services put keys)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _redact(error: EndpointError, api_key: str) -> EndpointError:
    """The error with the key blanked out of its message, in case an endpoint echoed it."""
    message = str(error)
    if api_key and api_key != NO_API_KEY and api_key in message:
        return EndpointError(error.model, error.kind, error.detail.replace(api_key, "***"), error.status_code)
    return error


def _describe_failure(spec: ModelSpec, exc: BaseException) -> EndpointError:
    url = _display_url(spec.base_url)
    if isinstance(exc, (openai.APITimeoutError, InferenceTimeoutError, httpx2.TimeoutException, TimeoutError)):
        return EndpointError(spec.name, "timeout", f"timed out: no response from {url} within {spec.timeout:g}s")

    status, server_message = _http_failure(exc)
    if status is not None:
        if status in (401, 403):
            hint = f"check the key in {spec.api_key_env}" if spec.api_key_env else "the endpoint needs a key: set api_key_env"
            return EndpointError(
                spec.name, "auth", f"authentication failed (HTTP {status}) at {url}: {server_message}; {hint}", status
            )
        return EndpointError(spec.name, "http", f"endpoint returned HTTP {status}: {server_message}", status)

    blocked = _find_cause(exc, RefusedConnection)
    if blocked is not None:
        return EndpointError(spec.name, "blocked", f"not contacted: {blocked.refusal}", cause="blocked")
    connection_error = _find_cause(exc, httpx2.TransportError)
    if isinstance(exc, openai.APIConnectionError) or connection_error is not None:
        reason = _plain_reason(connection_error or exc)
        if connection_error is None or isinstance(connection_error, httpx2.ConnectError):
            return EndpointError(spec.name, "unreachable", f"unreachable: cannot connect to {url} ({reason})",
                                 cause=_connect_cause(exc))
        return EndpointError(spec.name, "disconnected", f"connection to {url} was lost mid-answer ({reason})")

    if isinstance(exc, openai.APIError):  # e.g. an error event inside the stream
        return EndpointError(spec.name, "error", f"endpoint reported an error: {exc.message}")
    if isinstance(exc, TextGenerationError):  # huggingface_hub's form of an error event
        reported = exc.args[0] if exc.args else exc
        return EndpointError(spec.name, "error", f"endpoint reported an error: {_error_message(reported) or reported}")
    if isinstance(exc, (json.JSONDecodeError, pydantic.ValidationError, KeyError, TypeError, ValueError)):
        return EndpointError(
            spec.name, "protocol", f"sent a response that is not OpenAI chat-completions format ({type(exc).__name__})"
        )
    return EndpointError(spec.name, "error", f"request failed: {type(exc).__name__}: {exc}")


def _http_failure(exc: BaseException) -> tuple[int | None, str]:
    """(status, the endpoint's own error message) for an HTTP error answer, else (None, "")."""
    if isinstance(exc, openai.APIStatusError):
        response, body = exc.response, exc.body
    elif isinstance(exc, HfHubHTTPError) and exc.response is not None:
        response, body = exc.response, None
        with contextlib.suppress(Exception):
            body = response.json()
    else:
        return None, ""
    message = _error_message(body)
    if message is None:
        # Not an OpenAI error body (a proxy's HTML page, plain text): the status line and the start of the text.
        text = ""
        with contextlib.suppress(Exception):
            text = " ".join(re.sub(r"<[^>]+>", " ", response.text).split())
        message = f"{response.reason_phrase or 'error'}" + (f" ({text[:200]})" if text else "")
    return response.status_code, message


def _error_message(body: Any) -> str | None:
    """The "message" of an OpenAI-style error body ({"error": {"message": ...}} or the inner dict)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return None


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (explicitly or while handling), outermost first; stops at a cycle."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def _plain_reason(exc: BaseException) -> str:
    """The most specific reason in the cause chain, e.g. "Connection refused" rather than "Connection error."."""
    for current in _cause_chain(exc):
        if isinstance(current, socket.gaierror) and current.strerror:
            return current.strerror  # "Name or service not known"
        if isinstance(current, OSError) and current.errno and current.errno > 0:
            return os.strerror(current.errno)  # "Connection refused" rather than anyio's summary
    return str(exc) or type(exc).__name__


def _connect_cause(exc: BaseException) -> str | None:
    """Why a connection could not be made, when the cause chain tells: dns, tls or refused."""
    if _find_cause(exc, socket.gaierror) is not None:
        return "dns"
    if _find_cause(exc, ssl.SSLError) is not None:
        return "tls"
    if _find_cause(exc, ConnectionRefusedError) is not None:
        return "refused"
    for current in _cause_chain(exc):  # anyio and httpcore sometimes keep only the words
        words = str(current).lower()
        if "name or service not known" in words or "nodename nor servname" in words or "does not resolve" in words:
            return "dns"
        if "ssl" in words or "certificate" in words or "tls" in words:
            return "tls"
        if "connection refused" in words or "connect call failed" in words:
            return "refused"
    return None


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((current for current in _cause_chain(exc) if isinstance(current, kind)), None)
