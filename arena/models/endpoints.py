"""Streaming answers from model endpoints, through the official clients.

``EndpointPool`` builds one client per configured model at start-up (``openai.AsyncOpenAI``
for OpenAI-compatible servers such as vLLM, Ollama, llama.cpp or OpenAI itself;
``huggingface_hub.AsyncInferenceClient`` for Hugging Face endpoints: arena.models.endpoint_clients)
and turns every failure into an ``EndpointError`` that names the model and says what went wrong
in plain words (arena.models.endpoint_failures).
API keys come from the environment variables named in the config and never appear in a
message or repr.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import fields
from typing import Any

from arena.models.answer_checks import DEFAULT_MAX_ANSWER_CHARS, AnswerGuard, AnswerReport
from arena.models.config import ModelSpec
from arena.models.endpoint_clients import Backend, make_backend
from arena.models.endpoint_failures import EndpointError, describe_failure, display_url
from arena.trust.self_identification import ModelIdentity

# Sent when a model has no api_key_env. Passing it explicitly stops the clients from falling
# back to keys in the environment (OPENAI_API_KEY, a saved Hugging Face token), which would
# otherwise be sent to whatever endpoint the config names. vLLM's docs use the same value.
NO_API_KEY = "EMPTY"


class EndpointPool:
    """One client per model; ``stream``/``complete`` ask a model by its display name."""

    def __init__(self, specs: Sequence[ModelSpec]):
        self._backends: dict[str, Backend] = {}
        self._closing = False
        for spec in specs:
            if spec.name in self._backends:
                raise ValueError(f"duplicate model name {spec.name!r}: display names must be unique")
            api_key = spec.api_key() or NO_API_KEY  # raises ModelConfigError naming an unset variable
            self._backends[spec.name] = make_backend(spec, api_key)

    def add(self, spec: ModelSpec, api_key: str | None, guard=None) -> None:
        """Serve one more model (a registered owner's): its key is given, not read from the
        environment, and with ``guard`` (an arena.trust.ssrf.EndpointGuard) every connection its client
        opens is checked against the guard first."""
        if spec.name in self._backends:
            raise ValueError(f"duplicate model name {spec.name!r}: display names must be unique")
        self._backends[spec.name] = make_backend(spec, api_key or NO_API_KEY, guard)

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

    async def seated(self, models: Sequence[str], named: bool = False) -> None:
        """Told the models of each new battle, and whether the voter named them (the catalog counts
        owners' daily quotas, and the named battles' share of them)."""
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

    def _backend(self, name: str) -> Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise KeyError(f"unknown model {name!r}; configured: {', '.join(self._backends) or 'none'}") from None

    async def stream(self, name: str, messages: list[dict[str, Any]], *, report: AnswerReport | None = None,
                     max_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> AsyncIterator[str]:
        """Yield the answer's text deltas as they arrive; raise EndpointError on any failure.

        ``messages`` are chat messages (``{"role": ..., "content": ...}``); the model's
        system prompt, if configured, is put first. An answer with no text is an error. Every
        delta has passed the answer checks (arena.models.answer_checks: the model's own key
        removed, at most ``max_chars`` characters). With ``report``, an answer cut by the size
        cap or by ``max_answer_seconds`` ends normally, marked truncated in ``report``; without
        one, the cut is an EndpointError ("oversized", or "timeout" as ever).
        """
        backend = self._backend(name)
        spec = backend.spec
        if self._closing:
            # a closed Hugging Face client would quietly open a new connection pool; refuse instead
            raise EndpointError(spec.name, "closed", "the endpoint clients are closed (the arena is shutting down)")
        if spec.system_prompt:
            messages = [{"role": "system", "content": spec.system_prompt}, *messages]
        guard = AnswerGuard(max_chars, backend.api_key if backend.api_key != NO_API_KEY else None,
                            ModelIdentity.of(spec))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.max_answer_seconds
        try:
            async with contextlib.aclosing(backend.open_stream(messages)) as deltas:
                while not guard.full:  # past the cap nothing more is read: leaving closes the response
                    try:
                        # Per-chunk waits are bounded by the client's timeout; this bounds the whole answer.
                        async with asyncio.timeout_at(deadline):
                            delta = await anext(deltas)
                    except StopAsyncIteration:
                        break
                    text = guard.feed(delta)
                    if text:
                        yield text
        except Exception as exc:
            if isinstance(exc, TimeoutError) and loop.time() >= deadline:
                rest = guard.cut_for_time()
                if report is None or not guard.report.chars:
                    raise EndpointError(
                        spec.name, "timeout", f"timed out: the answer took longer than {spec.max_answer_seconds:g}s"
                    ) from None
                if rest:
                    yield rest
                _copy_report(guard.report, report)
                return
            # "from None": the clients' exceptions can carry an endpoint's echo of the key
            # (OpenAI repeats part of a wrong one), which a logged traceback would print.
            raise _redact(describe_failure(spec, exc), backend.api_key) from None
        rest = guard.finish()
        if rest:
            yield rest
        if not guard.report.chars:
            raise EndpointError(spec.name, "empty", f"returned an empty answer ({display_url(spec.base_url)})")
        if report is not None:
            _copy_report(guard.report, report)
        elif guard.report.truncated:
            raise EndpointError(spec.name, "oversized", guard.report.cut_note())

    async def complete(self, name: str, messages: list[dict[str, Any]]) -> str:
        """The whole answer (streamed and joined); an answer cut by a limit is an EndpointError."""
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


def _copy_report(found: AnswerReport, report: AnswerReport) -> None:
    for field in fields(AnswerReport):
        setattr(report, field.name, getattr(found, field.name))


def _redact(error: EndpointError, api_key: str) -> EndpointError:
    """The error with the key blanked out of its message, in case an endpoint echoed it."""
    message = str(error)
    if api_key and api_key != NO_API_KEY and api_key in message:
        return EndpointError(error.model, error.kind, error.detail.replace(api_key, "***"), error.status_code)
    return error
