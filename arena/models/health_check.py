"""The live check of an endpoint an owner registers: one short prompt, through the same client
and SSRF guard that battles use, reporting the latency to the first token and the first tokens,
or exactly what went wrong (``error_class``):

``dns`` (the host name does not resolve), ``refused`` (nothing listens there), ``tls`` (the TLS
handshake failed), ``blocked`` (the SSRF guard refused the address; nothing was sent),
``unreachable`` (any other connection failure), ``timeout``, ``auth`` (HTTP 401/403: the key),
``model_not_found`` (HTTP 404: usually a wrong ``model_id``), ``http`` (any other HTTP error),
``broken_stream`` (the connection dropped mid-answer), ``malformed_stream`` (not the
chat-completions streaming format), ``stream_error`` (the endpoint reported an error inside the
stream), ``empty`` (no text).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointError, EndpointPool

HEALTH_PROMPT = "Say hello in five words."
HEALTH_MAX_TOKENS = 32
FIRST_TOKENS_CHARS = 120


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    checked_at: float
    first_token_ms: float | None = None
    total_ms: float | None = None
    first_tokens: str = ""
    error_class: str | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if self.ok:
            return f"healthy: first token after {self.first_token_ms:.0f} ms: {self.first_tokens[:60]!r}"
        return f"health check failed ({self.error_class}): {self.error}"


def error_class(error: EndpointError) -> str:
    if error.kind == "unreachable":
        return error.cause or "unreachable"
    if error.kind == "http":
        return "model_not_found" if error.status_code == 404 else "http"
    return {"disconnected": "broken_stream", "protocol": "malformed_stream", "error": "stream_error"}.get(
        error.kind, error.kind)


async def check_endpoint(spec: ModelSpec, api_key: str | None, guard, *, prompt: str = HEALTH_PROMPT) -> HealthReport:
    """Ask ``spec``'s endpoint one short question through a fresh, guarded client."""
    spec = spec.model_copy(update={"max_tokens": min(spec.max_tokens, HEALTH_MAX_TOKENS), "max_retries": 0,
                                   "max_answer_seconds": spec.timeout * 2})
    pool = EndpointPool([])
    pool.add(spec, api_key, guard)
    started = time.monotonic()
    first_token_at = None
    answer = ""
    try:
        async for delta in pool.stream(spec.name, [{"role": "user", "content": prompt}]):
            if first_token_at is None:
                first_token_at = time.monotonic()
            answer += delta
    except EndpointError as error:
        return HealthReport(ok=False, checked_at=time.time(), error_class=error_class(error), error=error.detail,
                            first_tokens=answer[:FIRST_TOKENS_CHARS])
    finally:
        await pool.aclose()
    finished = time.monotonic()
    return HealthReport(ok=True, checked_at=time.time(), first_token_ms=round((first_token_at - started) * 1000, 1),
                        total_ms=round((finished - started) * 1000, 1), first_tokens=answer[:FIRST_TOKENS_CHARS])
