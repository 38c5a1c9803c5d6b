"""Input hygiene shared by the API and the battle engine: quoting user input in error messages
without echoing it whole, and telling text that cannot be stored or sent from text that can."""

from __future__ import annotations

# An error message quotes at most this many characters of what the user sent.
QUOTE_CHARS = 80


def quoted(value, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` for a short value; a long one cut to ``limit`` characters and its length said."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) > limit + 2:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def lone_surrogate_at(text: str) -> int | None:
    """Index of the first lone UTF-16 surrogate in ``text`` (JSON can carry one as "\\ud800"; no
    UTF-8 encoder, Redis client or model endpoint can), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None
