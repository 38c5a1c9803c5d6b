"""Style features of an answer (the covariates of style control), counted the way LMArena does."""

from __future__ import annotations

import re

from leaderboard.data.events import StyleFeatures

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def count_tokens(text: str) -> int:
    """Word pieces and punctuation marks: a tokenizer-free proxy for length in tokens."""
    return len(_TOKEN.findall(text))


def style_features(answers: list[str]) -> StyleFeatures:
    """Features of one model's side of a conversation: all its answers, summed."""
    text = "\n".join(answers)
    # Code blocks hold '#' comments and '*' operators that are not markdown.
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return StyleFeatures(
        tokens=count_tokens(text),
        headers=len(_HEADER.findall(prose)),
        list_items=len(_LIST_ITEM.findall(prose)),
        bold=len(_BOLD.findall(prose)),
    )


def prompt_categories(prompts: list[str]) -> list[str]:
    """Category tags for a conversation, from its prompts (used for category leaderboards)."""
    tags = []
    joined = "\n".join(prompts)
    if "```" in joined or re.search(r"\b(def|class|function|SELECT|#include|import)\b", joined):
        tags.append("code")
    if count_tokens(joined) > 500:
        tags.append("long_prompt")
    if len(prompts) > 1:
        tags.append("multi_turn")
    if re.search(r"\d\s*[-+*/^=]\s*\d|\b(solve|integral|derivative|equation|prove)\b", joined, re.IGNORECASE):
        tags.append("math")
    # imported here: arena.battles.prompt_profile builds on this module's token count
    from arena.battles.prompt_profile import HARD_PROMPT_TAG, is_hard_prompt

    if is_hard_prompt(prompts):
        tags.append(HARD_PROMPT_TAG)
    return tags
