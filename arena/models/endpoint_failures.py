"""Endpoint failures in plain words: ``EndpointError`` (what went wrong with a model's endpoint,
naming the model, never its key) and ``describe_failure``, which turns whatever the official
clients raise (openai, huggingface_hub, httpx, the SSRF guard) into one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
import pydantic
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, TextGenerationError

from arena.models.config import ModelSpec
from arena.trust.ssrf import RefusedConnection


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



def display_url(url: str) -> str:
    """The URL without query or fragment (where some services put keys)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def describe_failure(spec: ModelSpec, exc: BaseException) -> EndpointError:
    url = display_url(spec.base_url)
    if isinstance(exc, (openai.APITimeoutError, InferenceTimeoutError, httpx2.TimeoutException, TimeoutError)):
        return EndpointError(spec.name, "timeout", f"timed out: no response from {url} within {spec.timeout:g}s")

    status, server_message = _http_failure(exc)
    if status is not None:
        if status in (401, 403):
            hint = (f"check the key in {spec.api_key_env}" if spec.api_key_env
                    else "the endpoint needs a key: set api_key_env")
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
