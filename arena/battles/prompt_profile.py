"""What a prompt is like, decided cheaply at vote time: its language and whether it is a hard prompt.

Both go into the vote event (``VoteEvent.language``; the ``hard_prompt`` tag in
``VoteEvent.categories``), because the prompt text itself never reaches the rating engine or
the public export unless the operator releases it. The leaderboard's category views
(:mod:`leaderboard.views.categories`) are derived from these fields.

Language: py3langid (a pretrained naive-Bayes identifier shipped inside the package, ~10 us per
prompt once loaded) over the prompts joined; an ISO 639-1 code, or None when the text is too
short to tell (fewer than ``MIN_LETTERS`` letters) or the identifier is less than
``MIN_LANGUAGE_PROBABILITY`` sure.

Hard prompt: LMArena labels a prompt "hard" with an LLM judge over seven criteria (specificity,
domain knowledge, complexity, problem-solving, creativity, technical accuracy, real-world
application). Ours is a documented, reproducible stand-in with no model call: a prompt (all
turns joined) is hard when it meets at least ``HARD_PROMPT_MIN_CRITERIA`` of these five:

1. specific: at least 40 tokens;
2. technical: code (arena.battles.text_measures.has_code: a fence or a programming keyword), a
   technical term (regex, SQL, API, algorithm, complexity) or mathematics (an equation, a formula word);
3. constrained: at least two explicit requirements ("must", "should", "at least", "without",
   "exactly", "no more than", "only", "make sure", "ensure");
4. problem-solving: asks to solve, prove, derive, design, implement, optimise, debug, analyse,
   compare, calculate or explain why;
5. multi-part: at least two questions, or at least two list items / numbered steps.
"""

from __future__ import annotations

import functools
import re

from arena.battles.text_measures import count_tokens, has_code

MIN_LETTERS = 12
MIN_LANGUAGE_PROBABILITY = 0.5
HARD_PROMPT_MIN_CRITERIA = 3
HARD_PROMPT_TAG = "hard_prompt"

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# Technical beyond code (arena.battles.text_measures.has_code): terms and mathematics.
_TECHNICAL_TERMS = re.compile(
    r"\b(regex|SQL|API|algorithm|complexity)\b"
    r"|\d\s*[-+*/^=]\s*\d|\b(integral|derivative|equation|matrix|probability|theorem|polynomial)\b", re.IGNORECASE)
_CONSTRAINT = re.compile(r"\b(must|should|at least|at most|without|exactly|no more than|only|make sure|ensure)\b",
                         re.IGNORECASE)
_PROBLEM = re.compile(r"\b(solve|prove|derive|design|implement|optimi[sz]e|debug|analy[sz]e|compare|calculate|"
                      r"explain why|step by step)\b", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)


@functools.cache
def load_language_identifier():
    """The language identifier, loaded once per process on first use (about half a second)."""
    # imported on first use, not at start-up: it loads numpy and the model (serve preloads it on purpose)
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def prompt_language(prompts: list[str]) -> str | None:
    """ISO 639-1 code of the prompts' language, or None when too short or unsure (see the module docstring)."""
    text = "\n".join(prompts)
    if len(_LETTER.findall(text)) < MIN_LETTERS:
        return None
    language, probability = load_language_identifier().classify(text)
    return str(language) if probability >= MIN_LANGUAGE_PROBABILITY else None


def hard_prompt_criteria(prompts: list[str]) -> int:
    """How many of the five hard-prompt criteria the prompts meet (see the module docstring)."""
    text = "\n".join(prompts)
    return sum((
        count_tokens(text) >= 40,
        has_code(text) or _TECHNICAL_TERMS.search(text) is not None,
        len(_CONSTRAINT.findall(text)) >= 2,
        bool(_PROBLEM.search(text)),
        text.count("?") >= 2 or len(_LIST_ITEM.findall(text)) >= 2,
    ))


def is_hard_prompt(prompts: list[str]) -> bool:
    return hard_prompt_criteria(prompts) >= HARD_PROMPT_MIN_CRITERIA
