"""The checks every answer passes as it streams, in battles and at registration alike (both read
answers through ``EndpointPool.stream``, which runs them):

- **size**: at most ``max_chars`` characters are kept (``--max-answer-chars``); past them the
  stream is cut (the connection closed, nothing more read) and the answer marked truncated;
- **the model's own key**: its API key, in the exact, base64 (any alignment, standard or
  url-safe alphabet) and reversed forms, is replaced by ``[key removed]`` before any text leaves
  the check, also when it arrives split over several chunks (the last characters that could
  still begin a key are held back until the next chunk, or the end, settles them);
- **identity**: whether the answer names its own model (arena.trust.self_identification).

``AnswerReport`` is what the checks found; ``AnswerGuard`` runs them on one answer.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from arena.trust.self_identification import ModelIdentity, names_itself

DEFAULT_MAX_ANSWER_CHARS = 20000
KEY_REMOVED = "[key removed]"
# A key shorter than this is no secret worth scrubbing (and scrubbing it would mangle ordinary text).
MIN_SCRUBBED_KEY_CHARS = 8
# A key form cut off at the end of an answer is removed too from this many characters on.
MIN_PARTIAL_FORM_CHARS = 6


@dataclass
class AnswerReport:
    """What the checks found in one answer: ``chars`` kept, ``truncated`` (``"chars"`` past the size
    cap, ``"seconds"`` past the time limit, else None), ``keys_removed`` (forms of the model's key
    replaced) and ``names_itself`` (the answer names its own model)."""

    chars: int = 0
    truncated: str | None = None
    keys_removed: int = 0
    names_itself: bool = False

    def cut_note(self) -> str:
        """The cut in words, for the owner and the breaker (no model name: the owner knows which)."""
        if self.truncated == "chars":
            return f"answer cut at {self.chars} characters, the limit (--max-answer-chars): the endpoint ignored " \
                   "max_tokens"
        if self.truncated == "seconds":
            return f"answer cut at {self.chars} characters: it took longer than the model's max_answer_seconds"
        return ""


def key_forms(api_key: str | None) -> list[str]:
    """The strings an answer must not show for ``api_key``: the key, reversed, and the parts of
    its base64 encodings that do not depend on the bytes around it (one per alignment, in the
    standard and url-safe alphabets). Longest first; none for a missing or short key."""
    if not api_key or len(api_key) < MIN_SCRUBBED_KEY_CHARS:
        return []
    forms = {api_key, api_key[::-1]}
    raw = api_key.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0").decode()
        # characters mixing in the bytes before (offset) or after the key are left out
        start = -(-offset * 4 // 3)
        end = (offset + len(raw)) * 4 // 3
        core = encoded[start:end]
        if len(core) >= MIN_SCRUBBED_KEY_CHARS:
            forms.update({core, core.replace("+", "-").replace("/", "_")})
    return sorted(forms, key=len, reverse=True)


class AnswerGuard:
    """Runs the checks on one answer: ``feed`` each delta and send on what it returns until
    ``full`` is set (then stop reading), then ``finish`` for the rest; ``report`` says what was found."""

    def __init__(self, max_chars: int, api_key: str | None = None, identity: ModelIdentity | None = None):
        self.max_chars = max_chars
        self.identity = identity
        self.report = AnswerReport()
        self._forms = key_forms(api_key)
        self._pattern = re.compile("|".join(re.escape(form) for form in self._forms)) if self._forms else None
        # an occurrence not yet complete begins within the last (longest form - 1) characters
        self._hold = max((len(form) for form in self._forms), default=1) - 1
        self._pending = ""
        self._shown: list[str] = []
        self.full = False

    def feed(self, delta: str) -> str:
        """The text of ``delta`` that may be shown now (scrubbed; never past the cap)."""
        if self.full:
            return ""
        room = self.max_chars - self.report.chars
        # read no further than the cap plus what could complete a key begun before it
        wanted = room + self._hold - len(self._pending)
        if len(delta) > wanted:
            self._pending += delta[:max(wanted, 0)]
            return self._release(last=True, past_cap=True)
        self._pending += delta
        return self._release(last=False)

    def finish(self) -> str:
        """The held-back rest, once the stream has ended."""
        text = "" if self.full else self._release(last=True)
        if self.identity is not None:
            self.report.names_itself = names_itself("".join(self._shown), self.identity)
        return text

    def cut_for_time(self) -> str:
        """The held-back rest, when the time limit cut the stream (an answer with text is then truncated)."""
        text = self.finish()
        if self.report.chars and self.report.truncated is None:
            self.report.truncated = "seconds"
        return text

    def _release(self, *, last: bool, past_cap: bool = False) -> str:
        """Scrub what is pending and release it: all of it when nothing more will be read (``last``),
        else all but the characters that could still begin a key; never past the cap."""
        self._scrub()
        if last:
            self._scrub_cut_form()
        upto = len(self._pending) if last else max(len(self._pending) - self._hold, 0)
        room = self.max_chars - self.report.chars
        if past_cap or upto > room:
            self.full = True
            self.report.truncated = "chars"
            upto = min(upto, room)
        text, self._pending = self._pending[:upto], ("" if self.full else self._pending[upto:])
        self.report.chars += len(text)
        self._shown.append(text)
        return text

    def _scrub(self) -> None:
        if self._pattern is None:
            return
        self._pending, count = self._pattern.subn(KEY_REMOVED, self._pending)
        self.report.keys_removed += count

    def _scrub_cut_form(self) -> None:
        """Remove a key form cut off by the end of what was read (its first characters would show)."""
        for length in range(min(self._hold, len(self._pending)), MIN_PARTIAL_FORM_CHARS - 1, -1):
            tail = self._pending[-length:]
            if any(form.startswith(tail) for form in self._forms):
                self._pending = self._pending[:-length] + KEY_REMOVED
                self.report.keys_removed += 1
                return
