"""The live check of an endpoint an owner registers: one short prompt drawn at random from a pool,
through the same client, SSRF guard, sampling and answer checks (arena.models.answer_checks: size
cap, the endpoint's own key removed, self-naming noted) that battles use, reporting the latency
to the first token and the first tokens, or exactly what went wrong (``error_class``):

``dns`` (the host name does not resolve), ``refused`` (nothing listens there), ``tls`` (the TLS
handshake failed), ``blocked`` (the SSRF guard refused the address; nothing was sent),
``unreachable`` (any other connection failure), ``timeout``, ``auth`` (HTTP 401/403: the key),
``model_not_found`` (HTTP 404: usually a wrong ``model_id``), ``http`` (any other HTTP error),
``broken_stream`` (the connection dropped mid-answer), ``malformed_stream`` (not the
chat-completions streaming format), ``stream_error`` (the endpoint reported an error inside the
stream), ``empty`` (no text), ``oversized`` (the answer went past the size cap: the endpoint
ignores ``max_tokens``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass

from arena.models.answer_checks import DEFAULT_MAX_ANSWER_CHARS, AnswerReport
from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointError, EndpointPool

# The probe's prompt is drawn at random from these (an endpoint that recognised one fixed prompt
# could behave for the check and misbehave in battles); each asks for a short, ordinary answer.
HEALTH_PROMPTS = (
    "Say hello in five words.",
    "Name three colours of the rainbow.",
    "What is the capital of France? Answer in one sentence.",
    "Give me one tip for staying focused.",
    "Write a haiku about the sea.",
    "What is 12 times 7?",
    "Suggest a name for a grey cat.",
    "In one sentence, why is the sky blue?",
    "List two fruits that are yellow.",
    "Translate 'good morning' into Spanish.",
    "Describe a bicycle in one sentence.",
    "What day comes after Tuesday?",
)
FIRST_TOKENS_CHARS = 120


def probe_prompt() -> str:
    """A prompt for a health check or a benched model's probe, drawn at random (not predictable)."""
    return secrets.choice(HEALTH_PROMPTS)


@dataclass(frozen=True)
class HealthReport:
    """The check's result. Beside the latency and the first tokens: what the answer checks found
    (arena.models.answer_checks, the same as in battles): ``truncated`` ("chars": the answer went
    past the size cap, which fails the check; "seconds": past the time limit), ``keys_removed``
    (forms of the endpoint's own key taken out of the answer) and ``names_itself``."""

    ok: bool
    checked_at: float
    first_token_ms: float | None = None
    total_ms: float | None = None
    first_tokens: str = ""
    error_class: str | None = None
    error: str | None = None
    truncated: str | None = None
    keys_removed: int = 0
    names_itself: bool = False

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


async def check_endpoint(spec: ModelSpec, api_key: str | None, guard, *, prompt: str | None = None,
                         max_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> HealthReport:
    """Ask ``spec``'s endpoint one short question (``prompt``, else one drawn from HEALTH_PROMPTS)
    through a fresh, guarded client, with the sampling battles use, and the answer checks battles
    apply (at most ``max_chars`` characters: past them the check fails as ``oversized``)."""
    spec = spec.model_copy(update={"max_retries": 0, "max_answer_seconds": spec.timeout * 2})
    prompt = prompt or probe_prompt()
    pool = EndpointPool([])
    pool.add(spec, api_key, guard)
    started = time.monotonic()
    first_token_at = None
    answer = ""
    found = AnswerReport()
    try:
        async for delta in pool.stream(spec.name, [{"role": "user", "content": prompt}], report=found,
                                       max_chars=max_chars):
            if first_token_at is None:
                first_token_at = time.monotonic()
            if len(answer) < FIRST_TOKENS_CHARS:
                answer += delta[:FIRST_TOKENS_CHARS]
    except EndpointError as error:
        return HealthReport(ok=False, checked_at=time.time(), error_class=error_class(error), error=error.detail,
                            first_tokens=answer[:FIRST_TOKENS_CHARS])
    finally:
        await pool.aclose()
    finished = time.monotonic()
    checks = dict(truncated=found.truncated, keys_removed=found.keys_removed, names_itself=found.names_itself)
    if found.truncated:
        return HealthReport(ok=False, checked_at=time.time(), first_tokens=answer[:FIRST_TOKENS_CHARS],
                            error_class="oversized" if found.truncated == "chars" else "timeout",
                            error=found.cut_note(), **checks)
    return HealthReport(ok=True, checked_at=time.time(), first_token_ms=round((first_token_at - started) * 1000, 1),
                        total_ms=round((finished - started) * 1000, 1), first_tokens=answer[:FIRST_TOKENS_CHARS],
                        **checks)
