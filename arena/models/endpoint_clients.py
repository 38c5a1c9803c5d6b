"""The official clients behind each model: ``openai.AsyncOpenAI`` for OpenAI-compatible servers
(vLLM, Ollama, llama.cpp, OpenAI itself) and ``huggingface_hub.AsyncInferenceClient`` for Hugging
Face endpoints, each wrapped as a ``Backend`` that opens a stream of text deltas. With an SSRF
guard (arena.trust.ssrf.EndpointGuard) every connection a client opens is checked first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from huggingface_hub import AsyncInferenceClient

from arena.models.config import ModelSpec

# AsyncInferenceClient keeps every streamed response on its exit stack until close(), so one
# long-lived client grows by a few kilobytes per answer; we replace it after this many answers.
HUGGINGFACE_STREAMS_PER_CLIENT = 200


@dataclass
class Backend:
    spec: ModelSpec
    api_key: str = field(repr=False)
    open_stream: Callable[[list[dict[str, Any]]], AsyncIterator[str]]
    close: Callable[[], Any]
    is_closed: Callable[[], bool]



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


def make_backend(spec: ModelSpec, api_key: str, guard=None) -> Backend:
    if spec.provider == "openai":
        return _openai_backend(spec, api_key, guard)
    if spec.provider == "huggingface":
        return _huggingface_backend(spec, api_key, guard)
    # ModelSpec only admits the providers above; this guards a future addition
    raise ValueError(f"model {spec.name!r}: no client for provider {spec.provider!r}")


def _openai_backend(spec: ModelSpec, api_key: str, guard=None) -> Backend:
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

    return Backend(spec=spec, api_key=api_key, open_stream=open_stream, close=client.close,
                    is_closed=client.is_closed)


class RecyclingInferenceClient:
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


class GuardedInferenceClient(AsyncInferenceClient):
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


def _huggingface_backend(spec: ModelSpec, api_key: str, guard=None) -> Backend:
    def make_client() -> AsyncInferenceClient:
        if guard is None:
            return AsyncInferenceClient(base_url=spec.base_url, token=api_key, timeout=spec.timeout)
        return GuardedInferenceClient(base_url=spec.base_url, token=api_key, timeout=spec.timeout, guard=guard)

    clients = RecyclingInferenceClient(make_client, HUGGINGFACE_STREAMS_PER_CLIENT)
    sampling = _sampling(spec)

    async def open_stream(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        async with clients.lease() as client:
            chunks = await client.chat_completion(messages, model=spec.model_id, stream=True, **sampling)
            async with contextlib.aclosing(chunks):
                async for text in _text_deltas(chunks):
                    yield text

    return Backend(spec=spec, api_key=api_key, open_stream=open_stream, close=clients.close,
                    is_closed=clients.is_closed)

