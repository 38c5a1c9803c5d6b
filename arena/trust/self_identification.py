"""De-anonymisation: a battle in which a model may have given itself away.

Two signs, checked after every turn (``battle_flags``):

- ``prompt-asks-identity``: a prompt asks the models who they are, who made them, or what model
  they are (English phrasing; a determined voter can ask in other words, which is why the answers
  are checked too);
- ``names-itself:<label>``: the answer at that position names its own model: its display name,
  its ``model_id`` (and the part after the last ``/``), its ``organisation`` or one of its
  configured ``aliases`` (docs/models.md), as a whole word, ignoring case, with ``-``, ``_``,
  ``.`` and spaces treated alike ("GPT-4o" matches "gpt 4o").

A flagged battle's vote is kept and marked (``VoteEvent.identity_flags``), left out of the
anonymous leaderboard by default (``--rate-deanonymised``), and the voter is told after the vote.
The check is deliberately broad: an answer about its own organisation's products is flagged too
(a false alarm costs one unrated vote; a missed one, a vote cast knowing the names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ASKS_IDENTITY = "prompt-asks-identity"
NAMES_ITSELF = "names-itself:"

# Shorter terms (an organisation "AI", an alias "o1") would match ordinary text.
MIN_TERM_CHARS = 3

_YOU = r"(?:you|u|ya|yourself)"
_IDENTITY_QUESTIONS = [
    rf"\bwho\s+(?:are|r)\s+{_YOU}\b",
    rf"\bwho\s+(?:made|created|built|trained|developed|designed|programmed|owns|wrote)\s+{_YOU}\b",
    rf"\bwhat\s+(?:exactly\s+)?(?:are|r)\s+{_YOU}\s*(?:[?.!]|$|,?\s*(?:really|exactly))",
    rf"\b(?:what|which)\s+(?:ai\s+|language\s+|large\s+language\s+|llm\s+|chatbot\s+|base\s+)?"
    rf"(?:model|llm|version|ai|assistant|chatbot|company|organi[sz]ation|lab)\b[^.?!\n]{{0,40}}\b{_YOU}\b",
    r"\byour\s+(?:own\s+)?(?:name|model(?:\s+name)?|creator|creators|maker|developer|developers|company|"
    r"organi[sz]ation|training\s+cutoff|knowledge\s+cutoff|version|architecture|identity)\b",
    rf"\b(?:are|r)\s+{_YOU}\s+(?:a\s+|an\s+)?(?:gpt|chatgpt|claude|gemini|llama|mistral|qwen|deepseek|grok|"
    r"copilot|bard|phi|gemma|openai|anthropic|google|meta)",
    rf"\b(?:name|identify|introduce)\s+{_YOU}(?:rself)?\b",
    r"\bwhat(?:'s|\s+is)\s+your\s+name\b",
]
_ASKS_IDENTITY = re.compile("|".join(f"(?:{pattern})" for pattern in _IDENTITY_QUESTIONS), re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-_.]+")


@dataclass(frozen=True)
class ModelIdentity:
    """What would give a model away: its name, model id, organisation and aliases."""

    name: str
    model_id: str = ""
    organisation: str = ""
    aliases: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec) -> ModelIdentity:
        """From a ModelSpec (anything with name, model_id, organisation and aliases)."""
        return cls(name=spec.name, model_id=spec.model_id, organisation=getattr(spec, "organisation", "") or "",
                   aliases=tuple(getattr(spec, "aliases", ()) or ()))

    def terms(self) -> list[str]:
        model_ids = [self.model_id, self.model_id.rsplit("/", 1)[-1]] if self.model_id else []
        candidates = [self.name, *model_ids, self.organisation, *self.aliases]
        terms = []
        for term in candidates:
            term = term.strip()
            if len(re.sub(r"\W", "", term)) >= MIN_TERM_CHARS and term.lower() not in (t.lower() for t in terms):
                terms.append(term)
        return terms

    def pattern(self) -> re.Pattern | None:
        terms = self.terms()
        if not terms:
            return None
        alternatives = sorted({_term_pattern(term) for term in terms}, key=len, reverse=True)
        return re.compile(r"(?<![0-9A-Za-z])(?:" + "|".join(alternatives) + r")(?![0-9A-Za-z])", re.IGNORECASE)


def _term_pattern(term: str) -> str:
    pieces = [re.escape(piece) for piece in _SEPARATORS.split(term) if piece]
    return r"[\s\-_.]*".join(pieces)


def asks_identity(prompt: str) -> bool:
    return bool(_ASKS_IDENTITY.search(prompt or ""))


def names_itself(answer: str, identity: ModelIdentity) -> bool:
    pattern = identity.pattern()
    return bool(pattern and pattern.search(answer or ""))


def battle_flags(prompts: Iterable[str], answers_by_position: Sequence[Iterable[str]],
                 identities: Sequence[ModelIdentity], labels: Sequence[str]) -> list[str]:
    """The flags of a battle (sorted; empty when nothing gave a model away). ``answers_by_position``
    holds each position's answers over the turns, in the order of ``identities`` and ``labels``."""
    flags = set()
    if any(asks_identity(prompt) for prompt in prompts):
        flags.add(ASKS_IDENTITY)
    for answers, identity, label in zip(answers_by_position, identities, labels):
        if any(names_itself(answer, identity) for answer in answers):
            flags.add(NAMES_ITSELF + label)
    return sorted(flags)


def flags_explained(flags: Sequence[str]) -> str:
    """The flags in words, for the voter after the vote (the labels only: the names are shown anyway)."""
    reasons = []
    if ASKS_IDENTITY in flags:
        reasons.append("the prompt asked the models who they are")
    named = [flag.removeprefix(NAMES_ITSELF) for flag in flags if flag.startswith(NAMES_ITSELF)]
    if named:
        reasons.append(f"answer {' and '.join(named)} named its own model or maker")
    return "; ".join(reasons)
