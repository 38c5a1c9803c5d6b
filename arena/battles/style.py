"""Style features of an answer (the covariates of style control), counted the way LMArena does,
and the category tags of a conversation's prompts."""

from __future__ import annotations

import re

from arena.battles.prompt_profile import HARD_PROMPT_TAG, is_hard_prompt
from arena.battles.text_measures import count_tokens, has_code, without_code_blocks
from leaderboard.data.events import StyleFeatures

_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_MATH = re.compile(r"\d\s*[-+*/^=]\s*\d|\b(solve|integral|derivative|equation|prove)\b", re.IGNORECASE)


def style_features(answers: list[str]) -> StyleFeatures:
    """Features of one model's side of a conversation: all its answers, summed."""
    text = "\n".join(answers)
    prose = without_code_blocks(text)
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
    if has_code(joined):
        tags.append("code")
    if count_tokens(joined) > 500:
        tags.append("long_prompt")
    if len(prompts) > 1:
        tags.append("multi_turn")
    if _MATH.search(joined):
        tags.append("math")
    if is_hard_prompt(prompts):
        tags.append(HARD_PROMPT_TAG)
    return tags
